"""Decoders of the WebRTC frames (signalling, mesh plans, ICE config, silencing), merged into
`wire`'s table. Kept apart so each codec module stays small; the same field checks apply.

Type codes: 70 Signal, 71 SignalRelay, 72 MeshPlan, 73 MeshStatus, 74 RtcConfig, 75 Silence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from fluxnode.core.errors import FrameInvalid
from fluxnode.core.session.frames import (
    MESH_MODES,
    SIGNAL_KINDS,
    Frame,
    IceServer,
    MeshPlan,
    MeshStatus,
    RtcConfig,
    Signal,
    SignalRelay,
    Silence,
)
from fluxnode.core.session.wire_fields import _b, _i, _list, _opt_s, _s

#: An SDP offer with a few host candidates is 1-4 KB; room for many candidates, no more.
MAX_SDP: Final = 16 << 10
MAX_LINKS: Final = 100
MAX_ICE_SERVERS: Final = 8
LINK_FLAGS_MAX: Final = 7


def _kind(v: object) -> str:
    if v not in SIGNAL_KINDS:
        raise FrameInvalid(f"signal kind must be one of {', '.join(SIGNAL_KINDS)}")
    return str(v)


def _payload(v: object) -> str:
    if not isinstance(v, str) or len(v.encode("utf-8", "surrogatepass")) > MAX_SDP:
        raise FrameInvalid(f"signal payload must be a string of at most {MAX_SDP} bytes")
    return v


def _bool(v: object, what: str) -> bool:
    if type(v) is not bool:
        raise FrameInvalid(f"{what} must be true or false")
    return v


def _plan(f: list[Any]) -> MeshPlan:
    if f[1] not in MESH_MODES:
        raise FrameInvalid(f"mesh mode must be one of {', '.join(MESH_MODES)}")
    links_in = f[2]
    if not isinstance(links_in, dict) or len(links_in) > MAX_LINKS:
        raise FrameInvalid(f"links must be a map of at most {MAX_LINKS} visitors")
    links = {_s(k, "visitor"): _i(x, "link flags", 0, LINK_FLAGS_MAX) for k, x in links_in.items()}
    silenced = tuple(_s(x, "visitor") for x in _list(f[3], "silenced", MAX_LINKS))
    return MeshPlan(_i(f[0], "epoch"), str(f[1]), links, silenced)


def _ice_server(v: object) -> IceServer:
    f = _list(v, "ice server", 3)
    if len(f) != 3:
        raise FrameInvalid("ice server must be [urls, username, credential]")
    urls = tuple(_s(u, "ice url", 512) for u in _list(f[0], "ice urls", 4))
    if not urls:
        raise FrameInvalid("ice server needs at least one url")
    return IceServer(urls, _opt_s(f[1], "ice username"), _opt_s(f[2], "ice credential"))


DECODERS: Final[dict[int, tuple[int, Callable[[list[Any]], Frame]]]] = {
    70: (3, lambda f: Signal(_s(f[0], "peer"), _kind(f[1]), _payload(f[2]))),
    71: (5, lambda f: SignalRelay(_s(f[0], "instance"), _s(f[1], "source"), _s(f[2], "target"),
                                  _kind(f[3]), _payload(f[4]))),
    72: (4, _plan),
    73: (1, lambda f: MeshStatus(tuple(_s(x, "visitor") for x in _list(f[0], "connected",
                                                                         MAX_LINKS)))),
    74: (1, lambda f: RtcConfig(tuple(_ice_server(s) for s in _list(f[0], "ice servers",
                                                                     MAX_ICE_SERVERS)))),
    75: (6, lambda f: Silence(_s(f[0], "instance"), _s(f[1], "target"), _bool(f[2], "on"),
                              _i(f[3], "sent_ms"), _s(f[4], "author"), _b(f[5], "signature", 128))),
}  # fmt: skip

CODES: Final[dict[type, int]] = {
    Signal: 70, SignalRelay: 71, MeshPlan: 72, MeshStatus: 73, RtcConfig: 74, Silence: 75,
}  # fmt: skip
