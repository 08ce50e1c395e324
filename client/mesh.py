"""A visitor's WebRTC mesh: the direct links its node's `MeshPlan` names (aiortc).

What the node says, this module does (docs/session-protocol.md, "WebRTC"):

- `RtcConfig`: the ICE servers to use, kept as given (an empty list: host candidates only).
  No link is opened before it came: without it aiortc would fall back to a public STUN server.
- `MeshPlan`: the links to hold. Links named and not held are opened (we make the offer when
  the plan says `LINK_OFFER`; otherwise we wait for the peer's, and answer it); links held and
  no longer named are closed (`Signal(peer, "bye")`). An offer for a link not in our plan yet
  is kept for `PENDING_OFFER_SECONDS` (the peer's node may have sent its plan first). Without
  voice we offer no link that would carry audio only (it would hold nothing to connect). An
  offerer whose link lacks what the plan now asks for (relay-mode audio, now transforms too)
  offers a new one in its place; an answer to the old offer that comes after is ignored.
- A link not connected within `connect_timeout`, or whose ICE failed, is closed and reported
  (`Signal(peer, "failed")`); the node then relays that pair. It is not tried again until a
  plan leaves it out or `fail_for` seconds passed (`FAIL_FOR`, the rule's own spell): should
  the report not take effect, a plan still naming the peer is tried again then, and an offer
  the peer made meanwhile is answered if still fresh (`fluxnode.client.failed_peers`). A link
  the peer closed while the plan still names it is offered again after `REOPEN_PAUSE` (the
  peer may be starting over), at most `MAX_REOPENS` times a plan.
- Whenever the set of open data channels to peers with `LINK_DATA` changes, `MeshStatus` says
  which are open now: the node then leaves those peers out of our viewer frames.

Transforms (`move`): sent to every peer whose data channel is open, and to the node at full
rate unless every peer we know of (present in our replica, or named by the plan with
`LINK_DATA`) is such a peer; then at most one a `node_interval` (presence for late joiners,
the directory and fallback). Transforms a peer sends us become the same `PeerMoved` events as
relayed ones, with `direct=True`. Only a well-formed `Transform` is accepted from a peer; the
rest is counted (`stats["direct_bad"]`) and dropped.

With `node_channel=True` the visitor also offers its node a data channel (`NODE_PEER`) once
`RtcConfig` came; while it is open, transforms and acks to the node ride it (`via_channel`) and
frames the node sends on it go to the visitor's dispatch, as if they came on the WebSocket.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from aiortc import RTCIceServer

from fluxnode.client.events import Event, PeerMoved
from fluxnode.client.failed_peers import FailedPeers
from fluxnode.client.rtc_link import CONNECT_TIMEOUT, PeerLink
from fluxnode.client.voice import Voice
from fluxnode.core.errors import FrameInvalid, SessionLost
from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire
from fluxnode.core.session.geometry import DEFAULT_BOX
from fluxnode.core.session.mesh import FAIL_FOR
from fluxnode.core.session.presence import Transform, transform_problem

#: Frames the mesh handles (the visitor's dispatch hands these over).
RTC_FRAMES: Final = (fr.RtcConfig, fr.MeshPlan, fr.Signal)
NODE_INTERVAL: Final = 1.0
PENDING_OFFER_SECONDS: Final = 10.0
MAX_PENDING_OFFERS: Final = 16
#: Frames that may ride the node's data channel from us; everything else stays on the WebSocket.
CHANNEL_FRAMES: Final = (Transform, fr.Ack)
MAX_CHANNEL_BACKLOG: Final = 64
REOPEN_PAUSE: Final = 1.0
MAX_REOPENS: Final = 3

Send = Callable[[fr.Frame], Awaitable[None]]


class Mesh:
    """The direct links of one visitor; `send` puts a frame on the visitor's WebSocket."""

    def __init__(
        self,
        send: Send,
        emit: Callable[[Event], None],
        peers: Callable[[], Iterable[str]],
        address_of: Callable[[str], str | None],
        *,
        voice: bool = False,
        node_channel: bool = False,
        dispatch: Callable[[fr.Frame], Awaitable[object]] | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        node_interval: float = NODE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        fail_for: float = FAIL_FOR,
    ) -> None:
        self._send = send
        self._emit = emit
        self._peers = peers
        self._address_of = address_of
        self.voice: Voice | None = Voice() if voice else None
        self._want_node_channel = node_channel
        self._dispatch = dispatch
        self._connect_timeout = connect_timeout
        self._node_interval = node_interval
        self.ice_servers: tuple[RTCIceServer, ...] | None = None
        self.plan: fr.MeshPlan | None = None
        self.plan_at: float | None = None  # loop time the plan came (set-up figures)
        self.links: dict[str, PeerLink] = {}
        self.node_link: PeerLink | None = None
        # Links not tried again for now; when a mark ends, the plan is applied again.
        self.failed = FailedPeers(clock, fail_for, lambda: self._background(self.retry_failed()))
        self._pending: dict[str, tuple[str, float]] = {}  # offers before the plan named them
        self._reported: tuple[str, ...] | None = None
        self._reopened: collections.Counter[str] = collections.Counter()
        self._last_node_transform = -1e9
        self._latest: tuple[Transform, bytes] | None = None  # our last transform, encoded
        self._node_send: Send | None = None
        self._node_stale = False  # the node has not had our latest transform yet
        self._refresh: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._inbox: asyncio.Queue[fr.Frame] = asyncio.Queue(MAX_CHANNEL_BACKLOG)
        self._pump: asyncio.Task[None] | None = None
        self.stats: collections.Counter[str] = collections.Counter()

    # --- what the node says --------------------------------------------------------------

    async def receive(self, frame: fr.RtcConfig | fr.MeshPlan | fr.Signal) -> None:
        if isinstance(frame, fr.RtcConfig):
            self.ice_servers = tuple(
                RTCIceServer(list(s.urls), s.username, s.credential) for s in frame.ice_servers
            )
            if self._want_node_channel:
                await self._open_node_channel()
            if self.plan is not None:
                await self._apply_plan()
        elif isinstance(frame, fr.MeshPlan):
            # No epoch check: plans come in order on one WebSocket, and a node we reconnect
            # to numbers its own from 1 again.
            self.plan = frame
            self.plan_at = asyncio.get_running_loop().time()
            if self.ice_servers is not None:
                await self._apply_plan()
        elif frame.peer == fr.NODE_PEER:
            self._node_signal(frame)
        else:
            await self._peer_signal(frame)

    def _flags(self, peer: str) -> int:
        return self.plan.links.get(peer, 0) if self.plan is not None else 0

    def audio_allowed(self, peer: str) -> bool:
        """Audio may flow on the link to `peer`: the plan gives it `LINK_AUDIO` (it does not
        for a silenced visitor, whichever end)."""
        return (
            bool(self._flags(peer) & fr.LINK_AUDIO)
            and self.plan is not None
            and (peer not in self.plan.silenced)
        )

    async def _apply_plan(self, *, keep_reopens: bool = False) -> None:
        plan, servers = self.plan, self.ice_servers
        assert plan is not None and servers is not None
        if not keep_reopens:
            self._reopened.clear()
        now = asyncio.get_running_loop().time()
        self.failed.keep(plan.links.keys())
        for peer in [p for p in self.links if p not in plan.links]:
            await self._drop(peer, "bye")
        for peer, flags in plan.links.items():
            link = self.links.get(peer)
            if link is not None and self._renegotiate(link, flags):
                await self._drop(peer, None)  # our new offer replaces it on the peer's side
                link = None
            if link is not None or peer in self.failed or peer == fr.NODE_PEER:
                continue
            if flags & fr.LINK_OFFER:
                if self._carries(flags):
                    self._start(peer, flags, servers).post(self.links[peer].offer)
            elif (pending := self._pending.pop(peer, None)) and now - pending[1] < (
                PENDING_OFFER_SECONDS
            ):
                self._answer(peer, flags, pending[0], servers)
        if self.voice is not None:
            self.voice.notify()  # audio gates follow the plan's flags and silenced list
        await self._report()

    def _carries(self, flags: int) -> bool:
        """A link with `flags` would carry something of ours: transforms, or audio when we
        take part in voice. An offer for nothing (a voiceless visitor's relay-mode link) could
        never connect: it would time out, be reported failed, and keep the pair relayed."""
        audio = bool(flags & fr.LINK_AUDIO) and self.voice is not None
        return bool(flags & fr.LINK_DATA) or audio

    def _renegotiate(self, link: PeerLink, flags: int) -> bool:
        """An offerer whose link lacks what the plan now asks for re-offers it."""
        if not link.offerer or not flags & fr.LINK_OFFER:
            return False
        wants_audio = bool(flags & fr.LINK_AUDIO) and self.voice is not None
        return (bool(flags & fr.LINK_DATA) and not link.data) or (wants_audio and not link.audio)

    def _start(self, peer: str, flags: int, servers: Iterable[RTCIceServer]) -> PeerLink:
        offerer = bool(flags & fr.LINK_OFFER)
        link = PeerLink(self, peer, flags, offerer=offerer, ice_servers=list(servers),
                        connect_timeout=self._connect_timeout)  # fmt: skip
        self.links[peer] = link
        self.stats["links_opened"] += 1
        return link

    def _answer(self, peer: str, flags: int, sdp: str, servers: Iterable[RTCIceServer]) -> None:
        link = self._start(peer, flags, servers)
        link.post(lambda: link.answer(sdp))

    async def _peer_signal(self, frame: fr.Signal) -> None:
        peer, kind = frame.peer, frame.kind
        link = self.links.get(peer)
        flags = self._flags(peer)
        if kind == "offer":
            if flags & fr.LINK_OFFER:
                self.stats["signals_ignored"] += 1  # we offer on this link
                return
            # Not planned (yet), or failed here: kept a while, as our mark may end first.
            if self.ice_servers is None or not flags or peer in self.failed:
                if len(self._pending) >= MAX_PENDING_OFFERS:
                    self._pending.pop(next(iter(self._pending)))
                self._pending[peer] = (frame.payload, asyncio.get_running_loop().time())
                return
            if link is not None:  # the peer started over (a re-offer, or it reconnected)
                await self._drop(peer, None)
            self._answer(peer, flags, frame.payload, self.ice_servers)
        elif kind == "answer" and link is not None and link.offerer:
            link.post(lambda: self._accept(link, frame.payload))
        elif kind == "ice" and link is not None:
            link.post(lambda: link.candidate(frame.payload))
        elif kind in ("bye", "failed"):
            self._pending.pop(peer, None)
            if kind == "failed":
                self.failed.add(peer)
            if link is not None:
                await self._drop(peer, None)
                await self._report()
        else:
            self.stats["signals_ignored"] += 1

    async def _accept(self, link: PeerLink, sdp: str) -> None:
        if not await link.accept(sdp):
            self.stats["stale_answers"] += 1  # it answered the offer of the link we replaced

    async def signal(self, peer: str, kind: str, payload: str) -> None:
        self.stats[f"signal_{kind}"] += 1
        await self._send(fr.Signal(peer, kind, payload))

    async def _drop(self, peer: str, say: str | None) -> None:
        link = self.links.pop(peer, None)
        if link is None:
            return
        if say is not None:
            with contextlib.suppress(SessionLost):
                await self.signal(peer, say, "")
        self._close_later(link)

    def _close_later(self, link: PeerLink) -> None:
        """Close `link` in the background: aiortc's close waits on its transports, and the
        caller may be the visitor's reader (which must not stall) or one of the link's events."""
        task = asyncio.ensure_future(link.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _report(self) -> None:
        """Tell the node which data channels are open, when that changed."""
        connected = tuple(sorted(self.connected()))
        if connected == self._reported or self.plan is None:
            return
        self._reported = connected
        self.stats["status_sent"] += 1
        with contextlib.suppress(SessionLost):
            await self._send(fr.MeshStatus(connected))

    def connected(self) -> set[str]:
        """Peers with `LINK_DATA` in the plan whose data channel is open."""
        return {p for p, link in self.links.items()
                if link.channel_open and self._flags(p) & fr.LINK_DATA}  # fmt: skip

    # --- the links' events (LinkOwner) -------------------------------------------------------

    def link_changed(self, link: PeerLink) -> None:
        if link is self.node_link:
            return
        if self.links.get(link.peer) is link:
            # A channel that just opened gets where we stand now: the peer's node may already
            # leave us out of its frames.
            if link.channel_open and self._latest is not None and link.send(self._latest[1]):
                self.stats["direct_sent"] += 1
            self._background(self._report())

    def link_failed(self, link: PeerLink, why: str) -> None:
        if link is self.node_link:
            self.node_link = None
            self.stats["node_channel_failed"] += 1
            self._close_later(link)
            return
        if self.links.get(link.peer) is not link:
            return
        self.stats["links_failed"] += 1
        self.failed.add(link.peer)
        self.links.pop(link.peer)
        self._close_later(link)
        self._background(self._fail_and_report(link.peer))

    def link_ended(self, link: PeerLink) -> None:
        if link is self.node_link:
            self.node_link = None
            self._close_later(link)
            return
        if self.links.get(link.peer) is not link:
            return  # replaced already (the peer's new offer came first)
        self.stats["links_ended"] += 1
        self.links.pop(link.peer)
        self._close_later(link)
        self._background(self._reopen_later(link.peer))

    async def _reopen_later(self, peer: str) -> None:
        """The peer closed our link while the plan still names it: it may be starting over
        (a reconnect) without our plan changing, so the offerer offers again after a pause,
        a bounded number of times per plan (a peer that keeps closing gets relayed)."""
        await self._report()
        if not self._flags(peer) & fr.LINK_OFFER or self._reopened[peer] >= MAX_REOPENS:
            return
        self._reopened[peer] += 1
        await asyncio.sleep(REOPEN_PAUSE)
        if self.plan is not None and self.ice_servers is not None and peer not in self.links:
            await self._apply_plan(keep_reopens=True)

    async def retry_failed(self) -> None:
        """Forget the failure marks that ended: a plan still naming their peers is tried again
        (the node never took our report, or the peer's). Runs when the first mark ends."""
        if self.failed.expire() and self.plan is not None and self.ice_servers is not None:
            await self._apply_plan(keep_reopens=True)

    async def _fail_and_report(self, peer: str) -> None:
        with contextlib.suppress(SessionLost):
            await self.signal(peer, "failed", "")
        await self._report()

    def link_message(self, link: PeerLink, data: bytes) -> None:
        if link is self.node_link:
            self._from_node_channel(data)
            return
        try:
            frame = wire.decode(data)
        except FrameInvalid:
            frame = None
        if not isinstance(frame, Transform) or transform_problem(frame, DEFAULT_BOX):
            self.stats["direct_bad"] += 1
            return
        self.stats["direct_received"] += 1
        self._emit(PeerMoved(link.peer, self._address_of(link.peer), frame, direct=True))

    def _background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # --- transforms --------------------------------------------------------------------------

    async def move(self, transform: Transform, send: Send) -> None:
        """Send our transform to the peers directly, and to the node as the rule says."""
        data = wire.encode(transform)
        self._latest, self._node_send = (transform, data), send
        self._node_stale = True
        for peer in self.connected():
            if self.links[peer].send(data):
                self.stats["direct_sent"] += 1
        if self._refresh is None:
            self._refresh = asyncio.ensure_future(self._refresh_loop())
        now = asyncio.get_running_loop().time()
        if self.all_direct() and now - self._last_node_transform < self._node_interval:
            self.stats["node_transforms_skipped"] += 1
            return
        await self._to_node(transform, send, now)

    async def _to_node(self, transform: Transform, send: Send, now: float) -> None:
        self._last_node_transform = now
        self._node_stale = False
        self.stats["node_transforms"] += 1
        await send(transform)

    async def _refresh_loop(self) -> None:
        """Once a second, our latest transform again: to every open data channel (they are
        unreliable, and a peer's node leaves us out of its frames once the peer says our
        channel is open, so a lost last step would otherwise stay lost while we stand still)
        and to the node when the once-a-second rule held the latest one back."""
        while True:
            await asyncio.sleep(self._node_interval / 2)  # the node's copy: at most 1.5 s old
            if self._latest is None or self._node_send is None:
                continue
            transform, data = self._latest
            for peer in self.connected():
                if self.links[peer].send(data):
                    self.stats["direct_refreshed"] += 1
            now = asyncio.get_running_loop().time()
            if self._node_stale and now - self._last_node_transform >= self._node_interval:
                with contextlib.suppress(SessionLost):
                    await self._to_node(transform, self._node_send, now)

    def all_direct(self) -> bool:
        """Every peer we know of gets our transforms directly (the node then gets 1 a second)."""
        everyone = set(self._peers())
        if self.plan is not None:
            everyone |= {p for p in self.plan.links if self._flags(p) & fr.LINK_DATA}
        return bool(everyone) and everyone <= self.connected()

    # --- the node's own data channel -------------------------------------------------------------

    async def _open_node_channel(self) -> None:
        old, self.node_link = self.node_link, None
        if old is not None:
            self._close_later(old)
        assert self.ice_servers is not None
        link = self.node_link = PeerLink(self, fr.NODE_PEER, fr.LINK_DATA, offerer=True,
                                         ice_servers=list(self.ice_servers),
                                         connect_timeout=self._connect_timeout)  # fmt: skip
        link.post(link.offer)
        if self._pump is None and self._dispatch is not None:
            self._pump = asyncio.ensure_future(self._pump_node_frames(self._dispatch))

    def _node_signal(self, frame: fr.Signal) -> None:
        link = self.node_link
        if link is None:
            return
        if frame.kind == "answer":
            link.post(lambda: self._accept(link, frame.payload))
        elif frame.kind == "ice":
            link.post(lambda: link.candidate(frame.payload))
        elif frame.kind in ("bye", "failed"):
            self.node_link = None
            self._close_later(link)

    def via_channel(self, frame: fr.Frame) -> bool:
        """Send `frame` on the node's data channel if it may ride it and the channel is open."""
        link = self.node_link
        if link is None or not isinstance(frame, CHANNEL_FRAMES):
            return False
        if link.send(wire.encode(frame)):
            self.stats["channel_sent"] += 1
            self.stats[f"channel_sent_{type(frame).__name__}"] += 1
            return True
        return False

    @property
    def node_channel_open(self) -> bool:
        return self.node_link is not None and self.node_link.channel_open

    def _from_node_channel(self, data: bytes) -> None:
        try:
            frame = wire.decode(data)
        except FrameInvalid:
            self.stats["channel_bad"] += 1
            return
        try:
            self._inbox.put_nowait(frame)
        except asyncio.QueueFull:
            self.stats["channel_dropped"] += 1  # an unreliable channel: the next frame resyncs

    async def _pump_node_frames(self, dispatch: Callable[[fr.Frame], Awaitable[object]]) -> None:
        while True:
            frame = await self._inbox.get()
            try:
                problem = await dispatch(frame)
            except SessionLost:
                continue  # the WebSocket is gone (an ack could not go): the session ends there
            if problem:
                self.stats["channel_bad"] += 1

    # --- ending ------------------------------------------------------------------------------

    async def reset(self) -> None:
        """We left the world: close every link (with `bye`) and forget the plan."""
        for peer in list(self.links):
            await self._drop(peer, "bye")
        self.plan = None
        self.failed.clear()
        self._pending.clear()
        self._reported = None
        self._latest, self._node_stale = None, False

    async def close(self) -> None:
        """Close every link at once (no signals: the session is ending) and wait for them."""
        for link in [*self.links.values(), *([self.node_link] if self.node_link else [])]:
            self._close_later(link)
        self.links.clear()
        self.node_link = None
        self.failed.clear()  # and its timer
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh
            self._refresh = None
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        while self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)
