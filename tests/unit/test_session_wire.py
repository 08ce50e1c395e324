"""Session frames: round trips, strict bounded decoding, fuzzing: only FrameInvalid escapes."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxnode.core.errors import FrameInvalid
from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.hlc import Hlc
from fluxnode.core.session.presence import Transform, ViewerFrame
from fluxnode.core.session.seat_messages import (
    ClaimKey,
    HandedSeat,
    Handover,
    SeatAck,
    SeatClaim,
    SeatNack,
    SeatRelease,
)
from fluxnode.core.session.state import OpKind, StateOp
from fluxnode.core.session.wire import (
    MAX_FRAME,
    Ack,
    Batch,
    Challenge,
    Denied,
    Error,
    Frame,
    Heartbeat,
    Hello,
    InstanceOps,
    Join,
    Joined,
    Leave,
    MemberJoin,
    RedirectTo,
    Report,
    Resync,
    SignedIn,
    StateSnapshot,
    StateSync,
    VisitorIn,
    VisitorOut,
    decode,
    encode,
)

KEY = ClaimKey(1_700_000_000_000, "node-a", 3)
T = Transform((1.5, 0.0, -2.25), (0.0, 0.0, 0.0, 1.0), "walk")
ALICE = "0x" + "a" * 40

SAMPLES: list[Frame] = [
    Hello("example.org wants you to sign in...", b"\x01" * 65, b"\x02" * 32, b"\x03" * 64),
    Join("land:7"),
    Join("land:7", "avatars/fox.glb", (1, 2, 3)),
    Joined("land:7", "0123456789abcdef", "node-a", 3),
    Denied("denied: no valid ticket for this world"),
    RedirectTo("node-b", ("/ip4/127.0.0.1/tcp/4001",), None),
    T,
    ViewerFrame(7, 5, {"bob": T, "carol": None}, ("dave",), {"bob": {"avatar": "fox"}}),
    ViewerFrame(1, None, {}, (), {}),
    Ack(7),
    Resync(),
    StateOp("door", OpKind.SET, "open", True, "onClick", Hlc(5, 1, "a"), ALICE, b"sig"),
    StateOp("crate", OpKind.MOVE, "position", [1.0, 2.0, 3.0], None, Hlc(5, 0, "a"), ALICE),
    ChatMessage("i1", ALICE, "hello ✨", 1_700_000_000_000, b"sig"),
    Heartbeat(),
    Leave(),
    SeatClaim("i1", 3, KEY, "visitor-1"),
    SeatAck("i1", 3, KEY, "node-b", ("node-a", "node-b")),
    SeatNack("i1", 3, KEY, "node-b"),
    SeatRelease("i1", 3, KEY),
    Handover("i1", "node-a", "node-b", (HandedSeat(3, KEY, "visitor-1"),)),
    Handover("i1", "node-a", None, ()),
    Challenge("node-a", "flux.example", 31337, "http://flux.example/", "n0nce1234", b"\x07" * 32),
    SignedIn("A" * 43, ALICE, 1_700_000_000_000),
    Error("op_rejected", "canModify is false for door"),
    Report("land:7", ALICE, "spamming the chat"),
    Report("land:7", None, "broken world"),
    StateSnapshot(
        "i1",
        (StateOp("door", OpKind.SET, "open", True, "onClick", Hlc(5, 1, "a"), ALICE, b"sig"),),
        (ChatMessage("i1", "v1", "hi", 1_700_000_000_000, b"s"),),
    ),
    MemberJoin("land:7", "i1", 100),
    VisitorIn("i1", "A" * 43, "siwe text", b"\x01" * 65, {"address": ALICE, "avatar": "fox"}, T),
    VisitorOut("i1", "A" * 43),
    Batch("i1", 12, {"A" * 43: T}),
    InstanceOps("i1", ()),
    StateSync("i1", (), ()),
]


@pytest.mark.parametrize("frame", SAMPLES, ids=lambda f: type(f).__name__)
def test_every_frame_type_round_trips(frame: Frame) -> None:
    data = encode(frame)
    assert decode(data) == frame


def test_transforms_are_compact() -> None:
    assert len(encode(T)) < 80


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xc1", "not one msgpack value"),
        (msgpack.packb([1]) + b"\x00", "not one msgpack value"),  # trailing bytes
        (msgpack.packb({"a": 1}), "array starting with its type code"),
        (msgpack.packb([]), "array starting with its type code"),
        (msgpack.packb([99]), "unknown frame type 99"),
        (msgpack.packb([2, "land:7", None, [], "extra"]), "has 3 fields, not 4"),
        (msgpack.packb([2, 7, None, []]), "world_id must be a string"),
        (msgpack.packb([10, [[0, 0, float("nan")], [0, 0, 0, 1], "idle"]]), "finite"),
        (msgpack.packb([10, [[0, 0], [0, 0, 0, 1], "idle"]]), "position must be 3 numbers"),
        (msgpack.packb([10, [[0, 0, True], [0, 0, 0, 1], "idle"]]), "finite number"),
        (msgpack.packb([12, -1]), "seq must be an integer"),
        (msgpack.packb([12, 2**64 - 1]), "seq must be an integer"),
        (msgpack.packb([20, "o", "teleport", "p", 1, None, 1, 0, "a", "x", b""]), "unknown op"),
        (msgpack.packb([20, "o", "set", "p", [[[[[[1]]]]]], None, 1, 0, "a", "x", b""]),
         "nested at most 4"),
        (msgpack.packb([50, "i", 100, [1, "n", 1], "v"]), "slot must be an integer in 0..99"),
        (msgpack.packb([2, "x" * 200, None, []]), "1..128 bytes"),
        (msgpack.packb([2, "w", None, list(range(17))]), "wearables must be a list of at most 16"),
        (msgpack.packb([2, "w", None, [-1]]), "wearable must be an integer"),
        (msgpack.packb([1, "p", "not-bytes", b"", b""], use_bin_type=True), "proof_signature"),
        (b"\x92\x02\xc7\x01\x05x", "not one msgpack value"),  # ext types are refused
        (b"\x91" * 5000 + b"\x0d", "not one msgpack value"),  # nested far too deep
    ],
)  # fmt: skip
def test_bad_frames_name_the_problem(data: bytes, reason: str) -> None:
    with pytest.raises(FrameInvalid, match=reason):
        decode(data)


def test_oversized_frame_is_refused_before_unpacking() -> None:
    with pytest.raises(FrameInvalid, match="over the 65536-byte limit"):
        decode(b"\x00" * (MAX_FRAME + 1))
    # A small frame cannot claim a huge container either.
    with pytest.raises(FrameInvalid, match="not one msgpack value"):
        decode(b"\xdd\xff\xff\xff\xff")


def _safe_decode(data: bytes) -> None:
    with contextlib.suppress(FrameInvalid):
        decode(data)


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_frame_invalid(data: bytes) -> None:
    _safe_decode(data)


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.floats()
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=4),
    max_leaves=30,
)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(code=st.sampled_from([1, 2, 3, 4, 5, 10, 11, 12, 13, 20, 30, 40, 41, 50, 51, 52, 53, 54]),
       fields=st.lists(msgpack_values, max_size=11))  # fmt: skip
def test_well_formed_msgpack_with_wrong_fields_only_raises_frame_invalid(
    code: int, fields: list[object]
) -> None:
    try:
        data = msgpack.packb([code, *fields], use_bin_type=True, strict_types=False)
    except (OverflowError, ValueError, TypeError):
        return  # not encodable (e.g. a map with mixed key types): nothing to decode
    _safe_decode(data)


@settings(max_examples=400, deadline=None)
@given(index=st.sampled_from(range(len(SAMPLES))), cut=st.integers(0, 200),
       flips=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4))  # fmt: skip
def test_mutated_valid_frames_decode_or_raise_frame_invalid(
    index: int, cut: int, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(encode(SAMPLES[index]))
    for pos, byte in flips:
        if data:
            data[pos % len(data)] = byte
    _safe_decode(bytes(data[: max(1, len(data) - cut % (len(data) + 1))]))
