"""The node's own WebRTC data channel to a visitor's client (aiortc), beside its WebSocket.

A seated visitor sends `Signal(NODE_PEER, "offer", sdp)` on its session WebSocket; the node
answers `Signal(NODE_PEER, "answer", sdp)` once its ICE gathering is complete (no trickled
candidates either way) and accepts the client's one data channel, `flux-transforms`
(unordered, no retransmissions). On it the client sends `Transform`, `Ack`, `Heartbeat` and
`Resync`, which go to the session service exactly as if they had come over the WebSocket (same
checks, same rate limits, same refusals, answered on the WebSocket); anything else, undecodable
or over `MAX_IN_FRAME` is counted and dropped, and a client that keeps sending such frames has
its channel closed. The node sends that visitor's `ViewerFrame`s over the channel while it is
open (a frame lost on the way is harmless: the next delta is against the last acknowledged one);
every other frame stays on the WebSocket, which remains the session.

Limits: `max_channels` peer connections per node (pending ones count), one per visitor (a new
offer replaces the old), a few offers a minute per connection, `connect_timeout_s` for ICE and
DTLS to bring the channel up. The WebSocket closing, the visitor leaving its instance and the
node stopping close the peer connection. ICE servers are the operator's explicit list: an empty
list means host candidates only (aiortc's public default STUN server is never used).

aiortc is imported on the first offer, so a node nobody asks for a channel never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

from fluxnode.core.errors import FrameInvalid
from fluxnode.core.session.frames import (
    NODE_PEER,
    Ack,
    Error,
    Frame,
    Heartbeat,
    IceServer,
    Resync,
    Signal,
)
from fluxnode.core.session.hub import SessionHub
from fluxnode.core.session.presence import Transform, ViewerFrame
from fluxnode.core.session.ratelimit import TokenBucket
from fluxnode.core.session.wire import decode, encode

if TYPE_CHECKING:
    from aiortc import RTCDataChannel, RTCPeerConnection

log = logging.getLogger("fluxnode.node.session_rtc")

CHANNEL_LABEL = "flux-transforms"
#: The frames a client may send over the channel; all others stay on the WebSocket.
CHANNEL_FRAMES = (Transform, Ack, Heartbeat, Resync)
#: Largest frame taken from the channel: those four are tens of bytes.
MAX_IN_FRAME = 1024
#: Frames not taken (undecodable, oversized, of another type) before the channel is closed.
MAX_BAD_FRAMES = 20
#: Frames from the channel waiting for the session service; beyond, the newest are dropped
#: (the channel is unreliable anyway; a client's next transform supersedes the last).
IN_QUEUE = 32
#: Largest ViewerFrame sent over the channel: an unreliable message of many SCTP fragments is
#: lost whenever one is, so a big full snapshot (a crowd arriving) goes over the WebSocket.
MAX_OUT_FRAME = 16 << 10
#: Bytes waiting in the channel's send buffer beyond which ViewerFrames are dropped, not
#: queued: late positions are worth nothing, and the viewer catches up from its last ack.
MAX_BUFFERED = 64 << 10
DEFAULT_MAX_CHANNELS = 200
CONNECT_TIMEOUT_S = 10.0
#: Offers one connection may make: each costs a certificate, ICE gathering and a handshake.
OFFER_RATE, OFFER_BURST = 0.2, 3.0
#: How often channels are checked against the sessions (left the instance, signed in elsewhere).
SWEEP_S = 1.0
REFUSED = "rtc_refused"


class ChannelOwner(Protocol):
    """The visitor's WebSocket connection a channel belongs to (`sessions._Connection`)."""

    @property
    def visitor(self) -> str | None: ...

    def send(self, frame: Frame) -> None: ...

    def refuse(self, code: str, message: str) -> None: ...


Deliver = Callable[[Any, Frame], Awaitable[None]]


@dataclass
class ChannelStats:
    offers: int = 0
    answered: int = 0
    opened: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    closed: Counter[str] = field(default_factory=Counter)
    frames_in: int = 0
    bad_frames: int = 0
    in_dropped: int = 0
    frames_out: int = 0
    out_dropped: int = 0
    out_too_big: int = 0
    #: Milliseconds from the offer to the channel's opening: the last one and the slowest.
    open_ms_last: float | None = None
    open_ms_max: float | None = None


class _Channel:
    """One visitor's peer connection to this node and the data channel on it."""

    def __init__(self, owner: ChannelOwner, visitor: str, now: float) -> None:
        self.owner, self.visitor, self.started = owner, visitor, now
        self.pc: RTCPeerConnection | None = None
        self.dc: RTCDataChannel | None = None
        self.bad = 0
        self.inbox: asyncio.Queue[Frame] = asyncio.Queue(IN_QUEUE)
        self.tasks: list[asyncio.Task[None]] = []
        self.timer: asyncio.TimerHandle | None = None

    @property
    def is_open(self) -> bool:
        return self.dc is not None and self.dc.readyState == "open"


def _aiortc() -> Any:
    from fluxnode.node.rtc_loopback import apply_test_loopback_ice

    apply_test_loopback_ice()  # before any RTCPeerConnection (tests only, see its docstring)
    import aiortc

    return aiortc


def offer_problem(sdp: str) -> str | None:
    """Why `sdp` is no offer the node takes (None: fine): one data (`application`) section."""
    from aiortc.sdp import SessionDescription

    try:
        parsed = SessionDescription.parse(sdp)
    except (ValueError, IndexError, KeyError) as exc:
        return f"unreadable SDP ({type(exc).__name__})"
    kinds = [m.kind for m in parsed.media]
    if kinds != ["application"]:
        return f"the offer must hold one data channel section and no media, not {kinds}"
    return None


class NodeChannels:
    """Every visitor's data channel to this node; see the module docstring."""

    def __init__(
        self,
        deliver: Deliver,
        hub: SessionHub,
        *,
        ice_servers: tuple[IceServer, ...] = (),
        max_channels: int = DEFAULT_MAX_CHANNELS,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self._deliver = deliver
        self._hub = hub
        self.ice_servers = ice_servers
        self.max_channels = max_channels
        self.connect_timeout_s = connect_timeout_s
        self.stats = ChannelStats()
        self._by_visitor: dict[str, _Channel] = {}
        self._offer_rates: weakref.WeakKeyDictionary[Any, TokenBucket] = weakref.WeakKeyDictionary()
        self._closing: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def configure(
        self, *, ice_servers: tuple[IceServer, ...], max_channels: int, connect_timeout_s: float
    ) -> None:
        self.ice_servers, self.max_channels = ice_servers, max_channels
        self.connect_timeout_s = connect_timeout_s

    # --- signalling (from the WebSocket) -----------------------------------------------------

    @staticmethod
    def takes(frame: Frame) -> TypeGuard[Signal]:
        """Whether `frame` is for this module: a `Signal` to the node itself."""
        return isinstance(frame, Signal) and frame.peer == NODE_PEER

    def _seated(self, visitor: str) -> bool:
        v = self._hub.visitors.get(visitor)
        return v is not None and v.connected and v.seated

    def signal(self, owner: ChannelOwner, frame: Signal) -> None:
        """A `Signal(NODE_PEER, ...)` from a signed-in client."""
        visitor = owner.visitor
        assert visitor is not None and frame.peer == NODE_PEER
        if frame.kind in ("bye", "failed"):
            self.close(owner, "bye" if frame.kind == "bye" else "client_failed")
            return
        if frame.kind != "offer":
            self._refuse(owner, "kind", f"the node takes offers only (not {frame.kind}); "
                         "send the offer once ICE gathering is complete", bad=True)  # fmt: skip
            return
        self.stats.offers += 1
        now = time.monotonic()
        if self.max_channels <= 0:
            self._refuse(owner, "disabled", "this node opens no WebRTC data channels")
            return
        if not self._seated(visitor):
            self._refuse(owner, "not_seated", "join a world before asking for a channel", bad=True)
            return
        rate = self._offer_rates.get(owner)
        if rate is None:
            rate = self._offer_rates[owner] = TokenBucket(OFFER_RATE, OFFER_BURST, now)
        if not rate.allow(now):
            self._refuse(owner, "rate", "too many offers: wait before the next", bad=True)
            return
        problem = offer_problem(frame.payload)
        if problem is not None:
            self._refuse(owner, "bad_offer", problem, bad=True)
            return
        old = self._by_visitor.get(visitor)
        if len(self._by_visitor) - (old is not None) >= self.max_channels:
            self._refuse(owner, "full", "this node has no room for another data channel")
            return
        if old is not None:
            self._drop(old, "replaced")
        ch = self._by_visitor[visitor] = _Channel(owner, visitor, now)
        loop = asyncio.get_running_loop()
        ch.timer = loop.call_later(self.connect_timeout_s, self._expire, ch)
        ch.tasks.append(loop.create_task(self._answer(ch, frame.payload)))
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = loop.create_task(self._sweep())

    def _refuse(self, owner: ChannelOwner, reason: str, message: str, bad: bool = False) -> None:
        self.stats.refused[reason] += 1
        if bad:  # the client's fault: it counts towards closing its WebSocket
            owner.refuse(REFUSED, message)
        else:
            owner.send(Error(REFUSED, message))

    async def _answer(self, ch: _Channel, offer: str) -> None:
        rtc = _aiortc()
        servers = [
            rtc.RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in self.ice_servers
        ]  # an explicit list, even empty: None would mean aiortc's public STUN server
        pc = ch.pc = rtc.RTCPeerConnection(rtc.RTCConfiguration(iceServers=servers))
        pc.on("datachannel", lambda dc: self._datachannel(ch, dc))
        pc.on("connectionstatechange", lambda: self._state_changed(ch))
        try:
            await pc.setRemoteDescription(rtc.RTCSessionDescription(offer, "offer"))
            await pc.setLocalDescription(await pc.createAnswer())  # gathers every candidate
        except Exception as exc:  # aiortc refuses bad offers with assorted exception types
            log.debug("offer from %s: %r", ch.visitor[:12], exc)
            if self._by_visitor.get(ch.visitor) is ch:
                self._refuse(ch.owner, "bad_offer", f"offer not accepted: {exc}"[:300], bad=True)
                self._drop(ch, "bad_offer")
            return
        if self._by_visitor.get(ch.visitor) is ch:
            self.stats.answered += 1
            ch.owner.send(Signal(NODE_PEER, "answer", pc.localDescription.sdp))

    # --- the channel ---------------------------------------------------------------------------

    def _datachannel(self, ch: _Channel, dc: RTCDataChannel) -> None:
        if self._by_visitor.get(ch.visitor) is not ch:
            dc.close()
            return
        if dc.label != CHANNEL_LABEL or dc.ordered or dc.maxRetransmits != 0 or ch.dc is not None:
            self.stats.refused["channel"] += 1
            ch.owner.send(Error(REFUSED, f"the node takes one data channel, {CHANNEL_LABEL!r}, "
                                "unordered with maxRetransmits 0"))  # fmt: skip
            dc.close()
            return
        ch.dc = dc
        dc.on("message", lambda data: self._message(ch, data))
        dc.on("close", lambda: self._drop(ch, "channel_closed"))
        if dc.readyState == "open":  # aiortc opens a remote channel before announcing it
            self._opened(ch)
        else:
            dc.on("open", lambda: self._opened(ch))

    def _opened(self, ch: _Channel) -> None:
        if self._by_visitor.get(ch.visitor) is not ch:
            return
        if ch.timer is not None:
            ch.timer.cancel()
            ch.timer = None
        ms = (time.monotonic() - ch.started) * 1000.0
        s = self.stats
        s.opened += 1
        s.open_ms_last, s.open_ms_max = ms, max(ms, s.open_ms_max or 0.0)
        ch.tasks.append(asyncio.get_running_loop().create_task(self._pump(ch)))
        log.debug("data channel of %s open after %.0f ms", ch.visitor[:12], ms)

    def _message(self, ch: _Channel, data: bytes | str) -> None:
        if self._by_visitor.get(ch.visitor) is not ch:
            return
        frame: Frame | None = None
        if isinstance(data, bytes) and len(data) <= MAX_IN_FRAME:
            with contextlib.suppress(FrameInvalid):
                frame = decode(data)
        if not isinstance(frame, CHANNEL_FRAMES):
            self.stats.bad_frames += 1
            ch.bad += 1
            if ch.bad > MAX_BAD_FRAMES:
                ch.owner.send(Error(REFUSED, "data channel closed: too many frames it does not "
                                    "carry (Transform, Ack, Heartbeat, Resync only)"))  # fmt: skip
                self._drop(ch, "bad_frames")
            return
        try:
            ch.inbox.put_nowait(frame)
        except asyncio.QueueFull:
            self.stats.in_dropped += 1

    async def _pump(self, ch: _Channel) -> None:
        """Hand the channel's frames to the session service one at a time, as the WebSocket
        does; the owner's checks decide whether the connection is still signed in."""
        while True:
            frame = await ch.inbox.get()
            self.stats.frames_in += 1
            await self._deliver(ch.owner, frame)

    def send(self, owner: ChannelOwner, frame: Frame) -> bool:
        """Send `frame` over `owner`'s channel if it belongs there and the channel is open;
        False: the caller sends it over the WebSocket."""
        if not isinstance(frame, ViewerFrame) or owner.visitor is None:
            return False
        ch = self._by_visitor.get(owner.visitor)
        if ch is None or ch.owner is not owner or not ch.is_open or ch.dc is None:
            return False
        data = encode(frame)
        if len(data) > MAX_OUT_FRAME:
            self.stats.out_too_big += 1
            return False
        if ch.dc.bufferedAmount > MAX_BUFFERED:
            self.stats.out_dropped += 1
            return True
        ch.dc.send(data)
        self.stats.frames_out += 1
        return True

    # --- ending --------------------------------------------------------------------------------

    def _state_changed(self, ch: _Channel) -> None:
        if ch.pc is not None and ch.pc.connectionState in ("failed", "closed"):
            self._drop(ch, f"ice_{ch.pc.connectionState}")

    def _expire(self, ch: _Channel) -> None:
        ch.timer = None
        if not ch.is_open:
            self._drop(ch, "timeout")

    def close(self, owner: ChannelOwner, reason: str = "websocket_closed") -> None:
        """Close `owner`'s channel, if it has one (its WebSocket closed, or the client asked)."""
        for ch in [c for c in self._by_visitor.values() if c.owner is owner]:
            self._drop(ch, reason)

    def _drop(self, ch: _Channel, reason: str) -> None:
        """Forget `ch` now (it no longer counts or carries anything); its peer connection
        closes in the background."""
        if self._by_visitor.get(ch.visitor) is not ch:
            return
        del self._by_visitor[ch.visitor]
        self.stats.closed[reason] += 1
        if ch.timer is not None:
            ch.timer.cancel()
        current = asyncio.current_task()
        for task in ch.tasks:
            if task is not current:
                task.cancel()
        pc, ch.pc, ch.dc = ch.pc, None, None
        if pc is not None:
            task = asyncio.get_running_loop().create_task(self._close_pc(pc))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_pc(pc: RTCPeerConnection) -> None:
        try:
            await pc.close()
        except Exception as exc:  # a half-built connection may fail to close; it is gone anyway
            log.debug("closing a peer connection: %r", exc)

    async def _sweep(self) -> None:
        """Close channels whose visitor left its instance or whose connection is no longer
        the visitor's; ends when there are none."""
        while self._by_visitor:
            await asyncio.sleep(SWEEP_S)
            for ch in list(self._by_visitor.values()):
                if ch.owner.visitor != ch.visitor or not self._seated(ch.visitor):
                    self._drop(ch, "left")

    async def aclose(self) -> None:
        """Close every peer connection (the node is stopping)."""
        for ch in list(self._by_visitor.values()):
            self._drop(ch, "node_stopping")
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=2.0)

    def statistics(self) -> dict[str, Any]:
        s = self.stats
        return {
            "peer_connections": len(self._by_visitor),
            "open": sum(1 for ch in self._by_visitor.values() if ch.is_open),
            "max": self.max_channels,
            **{k: (dict(v) if isinstance(v, Counter) else v) for k, v in vars(s).items()},
        }
