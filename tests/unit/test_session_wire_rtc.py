"""The WebRTC frames: exact round trips, and every bound refused with `FrameInvalid`."""

from __future__ import annotations

import msgpack
import pytest

from fluxnode.core.errors import FrameInvalid
from fluxnode.core.session import wire
from fluxnode.core.session.frames import (
    LINK_AUDIO,
    LINK_DATA,
    LINK_OFFER,
    NODE_PEER,
    IceServer,
    MeshPlan,
    MeshStatus,
    RtcConfig,
    Signal,
    SignalRelay,
    Silence,
)
from fluxnode.core.session.wire_rtc import MAX_SDP

V = "A" * 43
W = "B" * 43
FRAMES = [
    Signal(V, "offer", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"),
    Signal(NODE_PEER, "answer", "v=0\r\n"),
    Signal(V, "bye", ""),
    SignalRelay("inst-1", V, W, "failed", ""),
    MeshPlan(7, "mesh", {V: LINK_DATA | LINK_AUDIO | LINK_OFFER, W: LINK_DATA}, (W,)),
    MeshPlan(0, "relay", {}, ()),
    MeshStatus((V, W)),
    RtcConfig(()),
    RtcConfig((IceServer(("stun:stun.example.org:3478",)), IceServer(("turn:t:3478",), "u", "p"))),
    Silence("inst-1", V, True, 1_700_000_000_000, W, b"\x01" * 64),
]


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: type(f).__name__)
def test_round_trip(frame: object) -> None:
    assert wire.decode(wire.encode(frame)) == frame  # type: ignore[arg-type]


def raw(*fields: object) -> bytes:
    return msgpack.packb(list(fields), use_bin_type=True)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (raw(70, V, "hello", ""), "signal kind"),
        (raw(70, V, "offer", "x" * (MAX_SDP + 1)), "signal payload"),
        (raw(70, "", "offer", ""), "peer"),
        (raw(70, V, "offer"), "has 3 fields"),
        (raw(72, 1, "star", {}, []), "mesh mode"),
        (raw(72, 1, "mesh", {V: 8}, []), "link flags"),
        (raw(72, 1, "mesh", {f"v{i}": 1 for i in range(101)}, []), "links"),
        (raw(73, [V] * 101), "connected"),
        (raw(74, [[[], None, None]]), "at least one url"),
        (raw(74, [[["stun:x"]] * 9]), "ice server"),
        (raw(74, [[["stun:x"], None, None]] * 9), "ice servers"),
        (raw(75, "i", V, 1, 5, W, b""), "on must be"),
        (raw(75, "i", V, True, 5, W, b"x" * 129), "signature"),
    ],
)
def test_bad_frames_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(FrameInvalid, match=reason):
        wire.decode(data)


def test_silence_signing_bytes_name_every_field() -> None:
    a = Silence("inst-1", V, True, 5, W)
    assert a.signing_bytes() != Silence("inst-1", V, False, 5, W).signing_bytes()
    assert a.signing_bytes() != Silence("inst-2", V, True, 5, W).signing_bytes()
    assert a.signing_bytes().startswith(b'["flux-silence/1"')
