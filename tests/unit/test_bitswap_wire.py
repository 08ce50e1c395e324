"""Bitswap wire format: round trips, a vector encoded by Helia's own code, strict rejection."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxnode.core.bitswap_wire import (
    CIDV0_PREFIX,
    MAX_BLOCK_SIZE,
    MAX_MESSAGE_SIZE,
    MAX_WANTLIST_ENTRIES,
    BitswapWireError,
    BlockPayload,
    BlockTooLarge,
    FrameDecoder,
    Message,
    MessageTooLarge,
    Presence,
    PresenceType,
    WantEntry,
    WantType,
    cid_for_block,
    cid_prefix,
    decode_message,
    encode_message,
    frame,
    uvarint,
)
from fluxnode.core.cid import DAG_PB, RAW, Cid
from fluxnode.core.errors import RemoteError

HELLO = b"hello world\n"
V0 = Cid.parse("QmZjTnYw2TFhn9Nn7tjmPSoTBoY7YRkwPzwSrSbabY24Kp")
V1 = Cid.parse("bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4")

# BitswapMessage.encode() from @helia/bitswap 4.0.19 (dist/src/pb/message.js) of:
#   wantlist: [{v0, prio 1, WantBlock, sendDontHave}, {v1, prio 5, WantHave},
#              {v1, prio -3, cancel}], full false
#   blocks: [{cidToPrefix(v0), "hello world\n"}, {cidToPrefix(v1), "hello world\n"}]
#   blockPresences: [{v1, DoNotHaveBlock}, {v0, HaveBlock}], pendingBytes 7
HELIA_VECTOR = bytes.fromhex(
    "0a8f010a2a0a221220a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a44710012000"
    "28010a2a0a2401551220a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447100520"
    "010a330a2401551220a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a44710fdffff"
    "ffffffffffff01180110001a140a0400701220120c68656c6c6f20776f726c640a1a140a0401551220120c6865"
    "6c6c6f20776f726c640a22280a2401551220a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d2"
    "99a192a447100122240a221220a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"
    "2807"
)
EXPECTED = Message(
    wantlist=(
        WantEntry(V0, 1, False, WantType.BLOCK, True),
        WantEntry(V1, 5, False, WantType.HAVE, False),
        WantEntry(V1, -3, True, WantType.BLOCK, False),
    ),
    blocks=(BlockPayload(CIDV0_PREFIX, HELLO), BlockPayload(b"\x01\x55\x12\x20", HELLO)),
    presences=(Presence(V1, PresenceType.DONT_HAVE), Presence(V0, PresenceType.HAVE)),
    pending_bytes=7,
)


def test_decodes_helias_encoding() -> None:
    assert decode_message(HELIA_VECTOR) == EXPECTED


def test_encoding_decodes_to_the_same_and_blocks_match_helia_bytes() -> None:
    ours = encode_message(EXPECTED)
    assert decode_message(ours) == EXPECTED
    # Payload and presence encodings are byte-identical to Helia's (it writes explicit
    # defaults in wantlist entries, we omit them: both decode the same).
    assert bytes.fromhex("1a140a0400701220120c68656c6c6f20776f726c640a") in ours
    assert bytes.fromhex("1a140a0401551220120c68656c6c6f20776f726c640a") in ours
    assert HELIA_VECTOR.endswith(ours[-(len(ours) - ours.index(b"\x22\x28")) :])


def test_prefixes() -> None:
    assert cid_prefix(V0) == b"\x00\x70\x12\x20" == CIDV0_PREFIX
    assert cid_prefix(V1) == b"\x01\x55\x12\x20"
    assert cid_for_block(CIDV0_PREFIX, HELLO) == V0
    assert cid_for_block(b"\x01\x55\x12\x20", HELLO) == V1
    v1pb = Cid.hash_block(HELLO, 1, DAG_PB)
    assert cid_for_block(cid_prefix(v1pb), HELLO) == v1pb
    # Rebuilding is verification: other data gives another CID.
    assert cid_for_block(CIDV0_PREFIX, HELLO + b"x") != V0


@pytest.mark.parametrize(
    "prefix",
    [
        b"",  # stock py-libp2p's CIDv0 prefix
        b"\x00\x55\x12\x20",  # v0 must be dag-pb
        b"\x02\x55\x12\x20",  # no CIDv2
        b"\x01\x55\x13\x40",  # sha2-512 unsupported
        b"\x01\x55\x12\x20\x00",  # trailing
        b"\x01\x55\x12",  # truncated
        b"\x01\x55\x12\x10",  # sha2-256 of 16 bytes
    ],
)
def test_bad_prefixes_rejected(prefix: bytes) -> None:
    with pytest.raises(BitswapWireError):
        cid_for_block(prefix, HELLO)


cids = st.builds(
    lambda data, v1, raw: Cid.hash_block(data, 1 if v1 or raw else 0, RAW if raw else DAG_PB),
    st.binary(max_size=64),
    st.booleans(),
    st.booleans(),
)
entries = st.builds(
    WantEntry,
    cids,
    st.integers(-(2**31), 2**31 - 1),
    st.booleans(),
    st.sampled_from(WantType),
    st.booleans(),
)
messages = st.builds(
    Message,
    st.lists(entries, max_size=20).map(tuple),
    st.booleans(),
    st.lists(
        st.builds(BlockPayload, st.sampled_from([CIDV0_PREFIX, b"\x01\x55\x12\x20"]), st.binary()),
        max_size=5,
    ).map(tuple),
    st.lists(st.builds(Presence, cids, st.sampled_from(PresenceType)), max_size=5).map(tuple),
    st.integers(0, 2**31 - 1),
)


@given(messages)
def test_round_trip(msg: Message) -> None:
    assert decode_message(encode_message(msg)) == msg


@given(st.lists(messages, max_size=4), st.integers(1, 50))
def test_framing_any_split(msgs: list[Message], step: int) -> None:
    stream = b"".join(frame(encode_message(m)) for m in msgs)
    dec = FrameDecoder()
    out = []
    for i in range(0, len(stream), step):
        out += dec.feed(stream[i : i + step])
    assert [decode_message(b) for b in out] == msgs
    assert dec.at_boundary()


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_garbage_fails_cleanly(data: bytes) -> None:
    with contextlib.suppress(RemoteError):
        decode_message(data)


@settings(max_examples=300)
@given(messages, st.integers(0, 10_000), st.integers(0, 255))
def test_mutations_fail_cleanly(msg: Message, where: int, byte: int) -> None:
    raw = bytearray(encode_message(msg))
    if raw:
        raw[where % len(raw)] = byte
    with contextlib.suppress(RemoteError):
        decode_message(bytes(raw))


def _ld(field_no: int, payload: bytes) -> bytes:
    return uvarint(field_no << 3 | 2) + uvarint(len(payload)) + payload


def test_limits() -> None:
    with pytest.raises(MessageTooLarge):
        decode_message(b"\x00" * (MAX_MESSAGE_SIZE + 1))
    with pytest.raises(MessageTooLarge):
        FrameDecoder().feed(uvarint(MAX_MESSAGE_SIZE + 1))
    with pytest.raises(BitswapWireError):
        FrameDecoder().feed(b"\xff" * 6)
    entry = _ld(1, _ld(1, V0.to_bytes()))
    too_many = _ld(1, entry * (MAX_WANTLIST_ENTRIES + 1))
    with pytest.raises(BitswapWireError, match="wantlist entries"):
        decode_message(too_many)
    assert len(decode_message(_ld(1, entry * MAX_WANTLIST_ENTRIES)).wantlist) == 1024
    big = _ld(3, _ld(1, CIDV0_PREFIX) + _ld(2, b"\0" * (MAX_BLOCK_SIZE + 1)))
    with pytest.raises(BlockTooLarge, match="exceeds"):
        decode_message(big)
    ok = _ld(3, _ld(1, CIDV0_PREFIX) + _ld(2, b"\0" * MAX_BLOCK_SIZE))
    assert len(decode_message(ok).blocks[0].data) == MAX_BLOCK_SIZE
    with pytest.raises(ValueError, match="wantlist entries"):
        encode_message(Message(wantlist=(WantEntry(V0),) * (MAX_WANTLIST_ENTRIES + 1)))


@pytest.mark.parametrize(
    "raw",
    [
        _ld(1, _ld(1, b"")),  # entry without a CID
        _ld(1, _ld(1, _ld(1, b"\x12\x20" + b"\0" * 31))),  # truncated CIDv0
        _ld(1, _ld(1, _ld(1, V0.to_bytes()) + b"\x20\x07")),  # unknown want type
        _ld(4, _ld(1, V0.to_bytes()) + b"\x10\x05"),  # unknown presence type
        _ld(4, b"\x10\x01"),  # presence without a CID
        b"\x0a\x05\x01",  # length runs past the end
        b"\x0b",  # group wire type
        b"\x08",  # truncated varint
        b"\x28" + b"\xff" * 11,  # overlong varint
        b"\x28\x80\x80\x80\x80\x10",  # pendingBytes beyond int32
        b"\x0a\x02\x10\x01",  # wantlist field 2 with wrong wire type... full is varint: ok
    ][:-1],
)
def test_malformed_rejected(raw: bytes) -> None:
    with pytest.raises(BitswapWireError):
        decode_message(raw)


def test_unknown_fields_skipped_and_v100_blocks() -> None:
    raw = b"\x30\x01" + b"\x39" + b"\0" * 8 + _ld(9, b"junk") + _ld(2, HELLO)
    msg = decode_message(raw)
    assert msg.blocks == (BlockPayload(CIDV0_PREFIX, HELLO),)
    assert cid_for_block(msg.blocks[0].prefix, msg.blocks[0].data) == V0
    assert encode_message(msg, v100=True) == _ld(2, HELLO)
    assert hashlib.sha256(msg.blocks[0].data).digest() == V0.digest
