"""CIDs, dag-pb and UnixFS codecs: known vectors and strict rejection of malformed input."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxnode.core.cid import DAG_PB, RAW, Cid, InvalidCid
from fluxnode.core.dagpb import (
    DataType,
    InvalidBlock,
    decode_node,
    decode_unixfs,
    encode_link,
    encode_node,
)
from fluxnode.core.unixfs import FileBuilder, directory_node, import_bytes

HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"  # `echo "hello world" | ipfs add`


def test_well_known_kubo_cids() -> None:
    assert str(import_bytes(b"hello world\n")[1].cid) == HELLO_V0
    assert str(import_bytes(b"")[1].cid) == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    assert str(import_bytes(b"", 1)[1].cid) == (
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    )
    assert str(directory_node([], 0)[1].cid) == "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"


def test_cid_text_round_trips_and_v0_v1_share_the_multihash() -> None:
    v0 = Cid.parse(HELLO_V0)
    assert (v0.version, v0.codec) == (0, DAG_PB)
    v1 = v0.to_v1()
    assert str(v1).startswith("bafybei")
    assert Cid.parse(str(v1)) == v1
    assert v1.multihash == v0.multihash
    assert Cid.from_bytes(v1.to_bytes()) == v1
    raw = Cid.hash_block(b"x", 1, RAW)
    assert raw.verify(b"x")
    assert not raw.verify(b"y")
    assert raw.digest == hashlib.sha256(b"x").digest()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Qm" + "1" * 44,  # base58 that does not decode to a sha2-256 multihash
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5O",  # 'O' is not base58
        "bafy!!!",
        "x" + "a" * 50,  # unknown multibase
        "b" + "a" * 300,  # too long
        "zQmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",
        "bafkqaaa",  # identity CIDv1 with empty digest is fine... but truncated below
        "f0170",  # truncated multihash
        "../../etc/passwd",
    ],
)
def test_bad_cid_text_raises_invalid_cid(text: str) -> None:
    if text == "bafkqaaa":
        assert Cid.parse(text).digest == b""  # legitimately the empty identity CID
        return
    with pytest.raises(InvalidCid):
        Cid.parse(text)


@given(st.binary(max_size=80))
def test_random_bytes_never_crash_the_cid_parser(data: bytes) -> None:
    with contextlib.suppress(InvalidCid):
        Cid.from_bytes(data)


@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_dagpb_decoder(data: bytes) -> None:
    with contextlib.suppress(InvalidBlock):
        decode_unixfs(decode_node(data).data)


def test_dagpb_round_trip_and_canonical_order() -> None:
    child = Cid.parse(HELLO_V0)
    block = encode_node([encode_link(child.to_bytes(), "a.txt", 20)], b"\x08\x01")
    node = decode_node(block)
    assert node.links[0].cid == child
    assert node.links[0].name == "a.txt"
    assert node.links[0].tsize == 20
    assert decode_unixfs(node.data).type is DataType.DIRECTORY
    # Data before Links is not canonical dag-pb: refuse.
    with pytest.raises(InvalidBlock, match="before data"):
        decode_node(b"\x0a\x02\x08\x01" + encode_link(child.to_bytes(), "a", 1))


@pytest.mark.parametrize(
    ("block", "match"),
    [
        (b"\x0a\x05\x08", "overruns"),
        (b"\x1a\x00", "unexpected field 3"),
        (b"\x0d\x00\x00\x00\x00", "wire type 5"),
        (b"\x0a\x00\x0a\x00", "duplicate Data"),
        (b"\x12\x02\x18\x01", "without Hash"),
    ],
)
def test_malformed_dagpb_is_rejected(block: bytes, match: str) -> None:
    with pytest.raises(InvalidBlock, match=match):
        decode_node(block)


def test_unixfs_requires_type_and_known_fields() -> None:
    with pytest.raises(InvalidBlock, match="without Type"):
        decode_unixfs(b"\x18\x01")
    with pytest.raises(InvalidBlock, match="unknown UnixFS type"):
        decode_unixfs(b"\x08\x09")
    with pytest.raises(InvalidBlock, match="no UnixFS Data"):
        decode_unixfs(None)


def _tree_shape(chunks: int, max_links: int, version: int) -> tuple[int, list[int]]:
    """Import `chunks` one-byte chunks; return (block count, link counts of every parent)."""
    b = FileBuilder(version, chunk_size=1, max_links=max_links)
    blocks = b.write(b"x" * chunks)
    rest, _root = b.finish()
    parents = [
        len(decode_node(blk.data).links)
        for blk in blocks + rest
        if blk.cid.codec == DAG_PB and decode_node(blk.data).links
    ]
    return len(blocks + rest), parents


def test_balanced_layout_fills_left_to_right() -> None:
    # 4 links per node: 17 leaves -> parents of 4,4,4,4,1 -> parents of 4,1 -> root of 2
    count, parents = _tree_shape(17, 4, 1)
    assert sorted(parents) == sorted([4, 4, 4, 4, 1, 4, 1, 2])
    assert count == 17 + 8
    # exactly full: 16 leaves -> 4 parents -> one root, no extra level
    count, parents = _tree_shape(16, 4, 0)
    assert sorted(parents) == [4, 4, 4, 4, 4]
    assert count == 16 + 5


def test_writes_in_any_split_give_the_same_root() -> None:
    data = bytes(range(256)) * 5000
    whole = import_bytes(data)[1].cid
    b = FileBuilder(0)
    for i in range(0, len(data), 99_991):
        b.write(data[i : i + 99_991])
    assert b.finish()[1].cid == whole
