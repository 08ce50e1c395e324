"""HAMT-sharded directories: murmur3, the sharding rule, the builder and the readers.

Expected CIDs and blocks were produced by the JS reference (ipfs-unixfs-importer 17.1.1 with
@multiformats/murmur3 2.2.8 and hamt-sharding 3.0.8); tests/interop/test_hamt_reference.py
re-derives them against the live JS importer.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fluxnode.core import hamt
from fluxnode.core.cid import DAG_PB, RAW, Cid
from fluxnode.core.dagpb import (
    DataType,
    InvalidBlock,
    PBNode,
    UnixFSData,
    decode_node,
    decode_unixfs,
    encode_link,
    encode_node,
    encode_unixfs,
)
from fluxnode.core.hamt import (
    SHARD_SPLIT_THRESHOLD_BYTES,
    find_in_shard,
    hamt_directory,
    iter_shard_entries,
    murmur3_x64_64,
    murmur3_x64_128,
    should_shard,
)
from fluxnode.core.unixfs import Block, Link, import_bytes

# -- murmur3 -----------------------------------------------------------------------------------
#: (length n, JS murmur3128 digest = h1 || h2 big-endian) for the input bytes((37*i + n) & 0xFF
#: for i in range(n)): covers empty input, every tail length class and 1-2 full blocks.
JS_MURMUR3_128 = [
    (0, "00000000000000000000000000000000"),
    (1, "7ace5c908374fe16778867e4430e6785"),
    (2, "0b187117f36ecef9d3512f1491fa7841"),
    (3, "b31fd468a34b4c380fd260959e9cd54b"),
    (4, "46b2f1dbb55ca01e4a58998624d6c276"),
    (7, "ba2a5b4da4ef64bd2ab281b9bff8a98a"),
    (8, "81b4fe57550ef2c3fe4559e435dda6ff"),
    (9, "2ece911021513df592035305a659f9fe"),
    (15, "d287e69da5f5aa8a9159c06b95fb3465"),
    (16, "d8a587ce6919966373bbc008f2fa8a1e"),
    (17, "a028636779f48508cc202276a59bd6cf"),
    (24, "f9fe753b7955ab0476a6a10c9baf9926"),
    (31, "d865690eeea423492bdd0b7803b9f2dc"),
    (32, "4730e49a7a1a09830f92c12c819d6054"),
    (33, "3acc521a50111b48c1a26d0837a86fa3"),
    (40, "3045c47dd8428a16106b794944d867d6"),
]


@pytest.mark.parametrize(("n", "digest"), JS_MURMUR3_128)
def test_murmur3_matches_the_js_package(n: int, digest: str) -> None:
    data = bytes((37 * i + n) & 0xFF for i in range(n))
    h1, h2 = murmur3_x64_128(data)
    assert f"{h1:016x}{h2:016x}" == digest
    assert murmur3_x64_64(data).hex() == digest[:16]  # JS murmur364: the first 8 bytes


@pytest.mark.parametrize(
    ("text", "digest"),
    [
        ("hello", "cbd8a7b341bd9b025b1e906a48ae1d19"),
        # Published (Guava's murmur3_128 test, little-endian bytes 6c1b07bc7bbc4be3 47939ac4...)
        ("The quick brown fox jumps over the lazy dog", "e34bbc7bbc071b6c7a433ca9c49a9347"),
        ("file-0001.txt", "c6b80999e8fbb5986ca8e12871ef88d2"),
        ("ü名字", "cc43708f3fecb620483fb2731f28ad3a"),
    ],
)
def test_murmur3_text_vectors(text: str, digest: str) -> None:
    h1, h2 = murmur3_x64_128(text.encode())
    assert f"{h1:016x}{h2:016x}" == digest


# -- building ----------------------------------------------------------------------------------
def files(names: list[str], cid_version: int) -> list[tuple[str, Link]]:
    """Each name as a small file whose content is the name itself."""
    return [(n, import_bytes(n.encode(), cid_version)[1]) for n in names]


def reader(blocks: list[Block]) -> Callable[[Cid], PBNode]:
    by_cid = {b.cid: b.data for b in blocks}
    return lambda cid: decode_node(by_cid[cid])


def test_small_shard_is_byte_identical_to_js() -> None:
    # JS: importer([...'d/<name>'], {cidVersion: 0, rawLeaves: false, shardSplitThresholdBytes: 1})
    blocks, root = hamt_directory(files(["a", "b", "c", "hello"], 0), 0)
    assert len(blocks) == 1
    assert str(root.cid) == "Qma8ysxsxtfp3zgL3bLQDgDjUd6U4Bqk2sQm2GSyNrkbZ8"
    data_field = "0805121a08000000000000004020040000000000000000000000000000002822308002"
    assert blocks[0].data.hex().endswith("0a23" + data_field)
    node = decode_node(blocks[0].data)
    assert [link.name for link in node.links] == ["7Ab", "85a", "8Ec", "CBhello"]
    unixfs = decode_unixfs(node.data)
    assert (unixfs.type, unixfs.fanout, unixfs.hash_type) == (DataType.HAMT_SHARD, 256, 0x22)
    bitfield = int.from_bytes(unixfs.data or b"", "big")
    assert bitfield == (1 << 0x7A) | (1 << 0x85) | (1 << 0x8E) | (1 << 0xCB)
    assert root.tsize == len(blocks[0].data) + sum(link.tsize or 0 for link in node.links)
    assert root.filesize == 0


def test_colliding_names_make_nested_sub_shards_like_js() -> None:
    # These two names agree on the first 4 bytes of their hash: sub-shards 4 levels deep.
    names = ["deep-178212.bin", "deep-184251.bin", "a"]
    assert murmur3_x64_64(names[0].encode())[:4] == murmur3_x64_64(names[1].encode())[:4]
    blocks, root = hamt_directory(files(names, 0), 0)
    assert str(root.cid) == "QmUiKEn2oP5er1bzzxdtWLtd84btfGbYX6wyc5TbivH9DV"
    assert root.tsize == 574  # the size the JS importer reports for the directory
    assert len(blocks) == 5 and blocks[-1].cid == root.cid  # children first, root last
    levels = [decode_node(b.data) for b in blocks]
    assert [len(n.links) for n in levels] == [2, 1, 1, 1, 2]
    assert all(len(n.links[0].name or "") == 2 for n in levels[1:4])  # prefix-only sub-shards


def big_directory() -> list[str]:
    return [f"entry-{i:04d}-" + "x" * (i % 50) + ".dat" for i in range(4000)] + [
        "deep-178212.bin",
        "deep-184251.bin",
    ]


@pytest.mark.parametrize(
    ("cid_version", "expected"),
    [
        (0, "QmbyBQn1854R1C3iPSvaj9BF65VAAq2TE9c84VgFbVMCSm"),
        (1, "bafybeico6juswnemmuc5efznqvc7ea6jk4ly62ed662xhqsidq2bvc3gne"),
    ],
)
def test_large_directory_matches_js_importer(cid_version: int, expected: str) -> None:
    # JS: interop/unixfs-add.mjs --cid-version N over a directory of these files (Kubo defaults).
    entries = files(big_directory(), cid_version)
    assert should_shard(entries, cid_version)
    blocks, root = hamt_directory(entries, cid_version)
    assert str(root.cid) == expected
    # JS stored 4377 blocks: 4002 one-block files, these shards, and the empty directory it
    # writes for the directory entry before its contents arrive.
    assert len(blocks) == 4377 - 4002 - 1
    get = reader(blocks)
    root_node = get(root.cid)
    listed = list(iter_shard_entries(root_node, get))
    assert sorted(listed) == sorted((n, link.cid, link.tsize) for n, link in entries)
    for name, link in entries[::97]:
        assert find_in_shard(root_node, name, get) == link.cid
    assert find_in_shard(root_node, "entry-4000-.dat", get) is None
    assert find_in_shard(root_node, "", get) is None


#: Two valid UTF-8 names with the same MurmurHash3_x64_128 internal state after 32 bytes, so
#: every rehash (name + bytes([n])) collides too. Crafted in ~0.1 s: each 16-byte block's words
#: are invertible, so a second block can steer any state to any target. The JS importer never
#: finishes on these two (checked by hand: it was still running after 30 s).
COLLIDING = (
    b"y0cq65zt4wn6isigq8jtgev49gw1un94".decode(),
    b"s0t9hgpdtitkg5ed\x187\x0fs\xce\x8a1F8B$h&C\x03M".decode(),
)


def test_crafted_full_collision_is_refused_not_recursed() -> None:
    a, b = (name.encode() for name in COLLIDING)
    assert murmur3_x64_128(a) == murmur3_x64_128(b)
    assert murmur3_x64_64(a + b"\x01") == murmur3_x64_64(b + b"\x01")
    with pytest.raises(ValueError, match="deeper"):
        hamt_directory(files(list(COLLIDING), 0), 0)


def test_builder_rejects_duplicates_and_bad_fanout() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        hamt_directory(files(["a", "a"], 0), 0)
    with pytest.raises(ValueError, match="fanout"):
        hamt_directory(files(["a"], 0), 0, fanout=100)


def test_other_fanouts_round_trip() -> None:
    entries = files([f"n{i}" for i in range(300)], 1)
    for fanout in (8, 16, 1024):
        blocks, root = hamt_directory(entries, 1, fanout=fanout)
        get = reader(blocks)
        node = get(root.cid)
        assert decode_unixfs(node.data).fanout == fanout
        assert len(list(iter_shard_entries(node, get))) == 300
        assert all(find_in_shard(node, n, get) == link.cid for n, link in entries)


# -- when to shard -----------------------------------------------------------------------------
def sized(total: int, count: int, cid_version: int) -> list[tuple[str, Link]]:
    """Entries whose links-bytes estimate (name bytes + CID bytes) adds up to `total`."""
    cid_len = 34 if cid_version == 0 else 36
    base, extra = divmod(total - count * cid_len, count)
    names = [f"{i:04d}".ljust(base + (i < extra), "x") for i in range(count)]
    return files(names, cid_version)


@pytest.mark.parametrize("cid_version", [0, 1])
def test_threshold_is_strictly_greater(cid_version: int) -> None:
    at = sized(SHARD_SPLIT_THRESHOLD_BYTES, 1000, cid_version)
    over = sized(SHARD_SPLIT_THRESHOLD_BYTES + 1, 1000, cid_version)
    assert not should_shard(at, cid_version)
    assert should_shard(over, cid_version)
    assert should_shard(at, cid_version, threshold=SHARD_SPLIT_THRESHOLD_BYTES - 1)  # old boxo >=


def test_non_empty_subdirectory_counts_only_while_added() -> None:
    entries = sized(SHARD_SPLIT_THRESHOLD_BYTES - 10, 1000, 0)
    sub = import_bytes(b"stand-in for a directory", 0)[1]
    # Sorted first: counted when added (37 bytes), then it is filled and counts 0.
    assert not should_shard([("!sub", sub), *entries], 0, subdirectories={"!sub"})
    # Sorted last: added on top of all the files, it tips the estimate over for good.
    assert should_shard([*entries, ("~sub", sub)], 0, subdirectories={"~sub"})
    # Kubo counts sub-directories always; empty ones count like files in JS too.
    assert should_shard([("!sub", sub), *entries], 0)


def test_block_bytes_strategy_counts_encoded_links() -> None:
    entries = files(["a", "bb"], 1)
    exact = 4 + sum(len(encode_link(link.cid.to_bytes(), n, link.tsize)) for n, link in entries)
    assert not should_shard(entries, 1, strategy="block-bytes", threshold=exact)
    assert should_shard(entries, 1, strategy="block-bytes", threshold=exact - 1)


# -- reading malformed shards ------------------------------------------------------------------
def shard_node(
    links: list[tuple[str, Cid]],
    bitfield: int | None = None,
    *,
    fanout: int = 256,
    hash_type: int = 0x22,
    dtype: DataType = DataType.HAMT_SHARD,
) -> PBNode:
    if bitfield is None:
        bitfield = sum(1 << int(name[:2], 16) for name, _ in links)
    data = encode_unixfs(
        UnixFSData(
            dtype,
            data=bitfield.to_bytes((bitfield.bit_length() + 7) // 8, "big") or None,
            hash_type=hash_type,
            fanout=fanout,
        )
    )
    return decode_node(encode_node([encode_link(c.to_bytes(), n, 1) for n, c in links], data))


LEAF = Cid.hash_block(b"leaf", 1, RAW)


def _no_fetch(cid: Cid) -> PBNode:
    raise AssertionError(f"unexpected fetch of {cid}")


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (shard_node([("01a", LEAF)], dtype=DataType.DIRECTORY), "expected a HAMT shard"),
        (shard_node([("01a", LEAF)], hash_type=0x23), "hash type"),
        (shard_node([("01a", LEAF)], fanout=100), "fanout"),
        (shard_node([("01a", LEAF)], fanout=4096), "fanout"),
        (shard_node([("01a", LEAF)], bitfield=0b110), "bitfield"),
        (shard_node([("01a", LEAF)], bitfield=0), "bitfield"),
        (shard_node([("0Za", LEAF)], bitfield=1), "link name"),
        (shard_node([("1", LEAF)], bitfield=2), "link name"),
        (shard_node([("0aa", LEAF)], bitfield=1), "link name"),  # lowercase hex
        (shard_node([("02a", LEAF), ("01b", LEAF)]), "out of order"),
        (shard_node([("01a", LEAF), ("01b", LEAF)], bitfield=2), "out of order"),
        (shard_node([("01a", LEAF)], bitfield=1 << 256 | 2), "longer than the fanout"),
    ],
)
def test_malformed_shards_raise_invalid_block(node: PBNode, message: str) -> None:
    with pytest.raises(InvalidBlock, match=message):
        list(iter_shard_entries(node, _no_fetch))
    with pytest.raises(InvalidBlock, match=message):
        find_in_shard(node, "a", _no_fetch)


def test_sub_shard_must_be_dag_pb_and_share_the_fanout() -> None:
    raw_child = shard_node([("01", LEAF)])
    with pytest.raises(InvalidBlock, match="not dag-pb"):
        list(iter_shard_entries(raw_child, _no_fetch))

    child = shard_node([("00x", LEAF), ("01y", LEAF)], fanout=16)
    child_cid = Cid.hash_block(b"child", 0, DAG_PB)
    parent = shard_node([("01", child_cid)])
    with pytest.raises(InvalidBlock, match="fanout differs"):
        list(iter_shard_entries(parent, lambda cid: child))


def test_shared_sub_shard_is_refused() -> None:
    # One tiny block linked from every slot of every level would list 256**depth entries.
    child = shard_node([("00x", LEAF), ("01y", LEAF)])
    child_cid = Cid.hash_block(b"child", 0, DAG_PB)
    parent = shard_node([("00", child_cid), ("01", child_cid)])
    with pytest.raises(InvalidBlock, match="twice"):
        list(iter_shard_entries(parent, lambda cid: child))


def test_depth_is_bounded() -> None:
    """An endless chain of sub-shards on a name's hash path fails instead of recursing."""
    name = "victim"
    path = hamt._HashBits(name.encode())  # the slot of `name` at each level, past 64 bits too
    fetches: list[Cid] = []

    def endless(cid: Cid) -> PBNode:
        fetches.append(cid)
        level = len(fetches)  # sub-shard at this level
        prefix = f"{path.take(level * 8, 8):02X}"
        return shard_node([(prefix, Cid.hash_block(bytes([level % 256]), 0, DAG_PB))])

    root = shard_node([(f"{path.take(0, 8):02X}", Cid.hash_block(b"start", 0, DAG_PB))])
    with pytest.raises(InvalidBlock, match="too deep"):
        find_in_shard(root, name, endless)
    assert len(fetches) == hamt.MAX_HASH_BITS // 8 - 1
    fetches.clear()
    with pytest.raises(InvalidBlock, match="too deep"):
        list(iter_shard_entries(root, endless))
    assert len(fetches) == hamt.MAX_HASH_BITS // 8 - 1


def test_leaf_with_other_name_in_the_slot_is_absent() -> None:
    name = "present"
    prefix = f"{murmur3_x64_64(name.encode())[0]:02X}"
    node = shard_node([(prefix + "other", LEAF)])
    assert find_in_shard(node, name, _no_fetch) is None
    node = shard_node([(prefix + name, LEAF)])
    assert find_in_shard(node, name, _no_fetch) == LEAF
    assert list(iter_shard_entries(node, _no_fetch)) == [(name, LEAF, 1)]
