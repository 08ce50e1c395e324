"""Live sessions on a running node: visitors' WebSockets, member-node streams and the directory.

`SessionService` drives the sans-IO `SessionHub` (`fluxnode.core.session.hub`): it feeds it
what arrives (client frames from the gateway's `/session` WebSocket, frames from member nodes
on `/flux/session/1`, directory gossip on `INSTANCES_TOPIC`), wakes it at its timer, and moves
what it says to send. Everything that must wait — entry proofs, access decisions, manifests,
relayed visitors' proofs — happens here before the hub hears of it (`session_entry.Admission`).

Ordering: frames for one member node leave in the order the hub produced them (one sender task
per peer, each awaiting its sends in turn); one client's frames are handled one at a time (the
gateway awaits `receive`), so a client's `Hello` is settled before its `Join` is looked at.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from fluxnode.core.errors import EntryProofInvalid, FluxError, FrameInvalid
from fluxnode.core.session.frames import (
    Challenge,
    Denied,
    Error,
    Frame,
    Hello,
    Join,
    Report,
    SignedIn,
    VisitorIn,
)
from fluxnode.core.session.gate import SessionPeer, SessionSink
from fluxnode.core.session.hub import SessionHub
from fluxnode.core.session.presence import ViewerFrame
from fluxnode.core.session.visitors import WorldInfo
from fluxnode.core.session.wire import decode, encode
from fluxnode.core.world import JsonValue
from fluxnode.node.session_entry import (
    DENIED_MANIFEST,
    DENIED_NOT_SIGNED_IN,
    Admission,
    SignedInVisitor,
)
from fluxnode.node.session_rtc import NodeChannels
from fluxnode.p2p import HostClient

log = logging.getLogger("fluxnode.node.sessions")

INSTANCES_TOPIC = "flux/instances/1"
#: Undecodable or unexpected frames a client may send before it is disconnected.
MAX_BAD_FRAMES = 20
#: Frames queued for one member node before the oldest are dropped (about 3 s of ticks).
PEER_QUEUE = 64
#: WebSocket close codes (RFC 6455): policy violation, and normal.
CLOSE_POLICY, CLOSE_NORMAL = 1008, 1000
#: Seconds a member whose stream dropped has to come back before it counts as lost.
PEER_DOWN_GRACE_S = 3.0
#: Frames from one member node waiting to be handled, and member nodes with a worker at once.
INBOUND_QUEUE, MAX_INBOUND_PEERS = 256, 256
#: Seconds a member node's inbound worker outlives its last frame.
PEER_IDLE_S = 30.0
#: Longest wait for a new member's first directory message (its visitors' sign-in domain).
DOMAIN_WAIT_S = 5.0
#: How often connected peers' round-trip times are measured, and how many of them.
RTT_EVERY_S, RTT_PEERS = 15.0, 32


@dataclass
class SessionStats:
    connections: int = 0
    signed_in: int = 0
    sign_in_refused: dict[str, int] = field(default_factory=dict)
    joins_refused: dict[str, int] = field(default_factory=dict)
    bad_client_frames: int = 0
    bad_node_frames: int = 0
    relayed_visitors_refused: int = 0
    peer_frames_dropped: int = 0


class _Connection:
    """One visitor's WebSocket, as the node sees it (implements `SessionPeer`)."""

    def __init__(self, service: SessionService, sink: SessionSink, remote: str) -> None:
        self.service = service
        self.sink = sink
        self.remote = remote
        self.challenge: Challenge | None = None
        self.visitor: str | None = None
        self.address: str | None = None
        self.bad = 0

    def send(self, frame: Frame) -> None:
        if isinstance(frame, ViewerFrame):
            self.sink.send_latest(encode(frame))  # a newer view replaces an unsent older one
        else:
            self.sink.send(encode(frame))

    async def receive(self, data: bytes) -> None:
        try:
            frame = decode(data)
        except FrameInvalid as exc:
            self.refuse(exc.code, str(exc))
            return
        await self.service.client_frame(self, frame)

    def refuse(self, code: str, message: str) -> None:
        self.service.stats.bad_client_frames += 1
        self.bad += 1
        self.send(Error(code, message[:500]))
        if self.bad > MAX_BAD_FRAMES:
            self.sink.close(CLOSE_POLICY, "too many bad frames")

    async def closed(self) -> None:
        self.service.connection_closed(self)


class SessionService:
    """Implements `SessionGate` for the gateway; see the module docstring."""

    def __init__(self, hub: SessionHub, admission: Admission, host: HostClient) -> None:
        self.hub = hub
        self.admission = admission
        self.host = host
        self.stats = SessionStats()
        self._by_visitor: dict[str, _Connection] = {}
        self._peer_queues: dict[str, asyncio.Queue[tuple[bytes, ...]]] = {}
        self._peer_tasks: dict[str, asyncio.Task[None]] = {}
        self._peer_heard: dict[str, float] = {}
        self._inbound: dict[str, asyncio.Queue[bytes]] = {}
        self._directory_heard: dict[str, asyncio.Event] = {}
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.report_sink: Any = None  # set by the daemon: an object with `async add(**fields)`
        #: Run once by `aclose` (e.g. the nonce book's close).
        self.closers: list[Callable[[], None]] = []
        self._closed = False
        self.rtc = NodeChannels(self.client_frame, hub)

    # --- the gateway's side ---------------------------------------------------------------------

    async def open_session(self, sink: SessionSink, remote: str) -> SessionPeer:
        conn = _Connection(self, sink, remote)
        self.stats.connections += 1
        conn.challenge = self.admission.challenge()
        conn.send(conn.challenge)
        return conn

    async def world_manifest(self, world_id: str) -> bytes:
        return await self.admission.manifest_bytes(world_id)

    async def client_frame(self, conn: _Connection, frame: Frame) -> None:
        if isinstance(frame, Hello):
            await self._hello(conn, frame)
        elif conn.visitor is None:
            conn.refuse("not_signed_in", DENIED_NOT_SIGNED_IN)
        elif isinstance(frame, Join):
            await self._join(conn, frame)
        elif isinstance(frame, Report):
            await self._report(conn, frame)
        elif self.rtc.takes(frame):  # Signal(NODE_PEER): the node's own data channel
            self.rtc.signal(conn, frame)
        else:
            self.hub.client_frame(conn.visitor, frame, time.time())
            self._flush()

    async def _hello(self, conn: _Connection, hello: Hello) -> None:
        if conn.visitor is not None or conn.challenge is None:
            conn.refuse("already_signed_in", "this connection is signed in already")
            return
        challenge, conn.challenge = conn.challenge, None  # one try per challenge
        try:
            who = await self.admission.sign_in(hello, challenge)
        except FluxError as exc:
            reason = getattr(exc, "reason", exc.code)
            counts = self.stats.sign_in_refused
            counts[reason] = counts.get(reason, 0) + 1
            conn.send(Denied(f"denied: entry proof refused ({reason}): {exc}"[:500]))
            conn.sink.close(CLOSE_POLICY, "sign-in refused")
            return
        self._signed_in(conn, who)

    async def open_signed_in(
        self, sink: SessionSink, remote: str, who: SignedInVisitor
    ) -> SessionPeer:
        """A connection whose visitor already signed in over HTTP: `SignedIn` first, no
        Challenge (the gateway's `/ws?token=`)."""
        conn = _Connection(self, sink, remote)
        self.stats.connections += 1
        self._signed_in(conn, who)
        return conn

    def _signed_in(self, conn: _Connection, who: SignedInVisitor) -> None:
        old = self._by_visitor.get(who.visitor)
        if old is not None and old is not conn:  # the same session key on a new connection
            old.visitor = None
            old.sink.close(CLOSE_NORMAL, "signed in elsewhere")
        conn.visitor, conn.address = who.visitor, who.address
        self._by_visitor[who.visitor] = conn
        self.stats.signed_in += 1
        self.hub.sign_in(
            who.visitor, who.address, who.session_key, who.proof, who.proof_signature,
            who.expires_at, time.time(),
        )  # fmt: skip
        conn.send(SignedIn(who.visitor, who.address, int(who.expires_at * 1000)))
        self._flush()

    async def _join(self, conn: _Connection, join: Join) -> None:
        assert conn.visitor is not None and conn.address is not None
        reason, record = await self.admission.decide(join.world_id, conn.address)
        manifest = None
        if record is not None:
            try:
                manifest = await self.admission.manifest(record)
            except FluxError as exc:
                log.info("manifest of %s: %s", join.world_id, exc)
                reason = DENIED_MANIFEST
        if reason is not None or record is None or manifest is None:
            reason = reason or DENIED_MANIFEST
            self.stats.joins_refused[reason] = self.stats.joins_refused.get(reason, 0) + 1
            conn.send(Denied(reason))
            return
        if conn.visitor is None:  # the connection went away while we waited
            return
        world = WorldInfo(join.world_id, manifest, self.admission.hosts(record), record.owner)
        info: dict[str, JsonValue] = {}
        if join.avatar is not None:
            info["avatar"] = join.avatar
        if join.wearables:
            info["wearables"] = list(self.admission.wearables(conn.address, join.wearables))
        self.hub.join(conn.visitor, world, time.time(), info)
        self._flush()

    async def _report(self, conn: _Connection, report: Report) -> None:
        if self.report_sink is None:
            conn.refuse("not_enabled", "this node does not take reports")
            return
        try:
            await self.report_sink.add(
                reporter=conn.address, world_id=report.world_id, subject=report.subject,
                reason=report.reason,
            )  # fmt: skip
        except FluxError as exc:
            conn.refuse(exc.code, str(exc))

    def connection_closed(self, conn: _Connection) -> None:
        self.rtc.close(conn)
        visitor, conn.visitor = conn.visitor, None
        if visitor is not None and self._by_visitor.get(visitor) is conn:
            del self._by_visitor[visitor]
            self.hub.client_gone(visitor, time.time())
            self._flush()

    # --- member nodes ---------------------------------------------------------------------------

    async def node_frame(self, peer: str, data: bytes) -> None:
        """Queue a member node's frame. Each peer's frames are handled in order by a worker of
        its own, so a relayed visitor whose proof takes a chain call (an EIP-1271 wallet) holds
        up only that peer's later frames, never other peers' nor gossip."""
        self._peer_heard[peer] = time.time()
        queue = self._inbound.get(peer)
        if queue is None:
            if len(self._inbound) >= MAX_INBOUND_PEERS:
                self.stats.peer_frames_dropped += 1
                return
            queue = self._inbound[peer] = asyncio.Queue(INBOUND_QUEUE)
            self._spawn(self._inbound_loop(peer, queue))
        try:
            queue.put_nowait(data)
        except asyncio.QueueFull:
            self.stats.peer_frames_dropped += 1

    async def _inbound_loop(self, peer: str, queue: asyncio.Queue[bytes]) -> None:
        """Handle `peer`'s frames in order; end once it has been quiet for PEER_IDLE_S (its
        next frame starts a new worker), so peers that left hold no worker."""
        try:
            while True:
                try:
                    async with asyncio.timeout(PEER_IDLE_S):
                        data = await queue.get()
                except TimeoutError:
                    if queue.empty():  # (a frame put as the timer fired is still handled)
                        return
                    data = queue.get_nowait()
                await self._handle_node_frame(peer, data)
        finally:
            if self._inbound.get(peer) is queue:
                del self._inbound[peer]

    async def _handle_node_frame(self, peer: str, data: bytes) -> None:
        now = time.time()
        try:
            frame = decode(data)
        except FrameInvalid as exc:
            self.stats.bad_node_frames += 1
            log.debug("bad frame from %s: %s", peer, exc)
            return
        if isinstance(frame, VisitorIn):
            if not self.hub.wants_visitor(peer, frame, now):  # over budget: no signature work
                self._flush()
                return
            try:
                domain = await self._domain_of(peer)
                claims = await self.admission.verify_relayed(
                    frame.proof, frame.proof_signature, domain
                )
            except FluxError as exc:
                self.stats.relayed_visitors_refused += 1
                log.info("visitor %s from %s refused: %s", frame.visitor[:12], peer, exc)
                return
            self.hub.remote_visitor(
                peer, frame, claims.address.lower(), claims.session_key,
                claims.expires_at.timestamp(), time.time(),
            )  # fmt: skip
        else:
            try:
                self.hub.node_frame(peer, frame, now)
            except FluxError as exc:
                self.stats.bad_node_frames += 1
                log.debug("frame from %s refused: %s", peer, exc)
        self._flush()

    async def _domain_of(self, peer: str) -> str:
        """The sign-in domain of `peer`'s visitors: the host:port of the gateway its directory
        load names (a node without a gateway has no visitors to relay). A node that just
        became a member may send its visitors before its first directory message reaches us:
        wait a little for it."""
        deadline = time.monotonic() + DOMAIN_WAIT_S
        while True:
            load = self.hub.directory.load(peer, time.time())
            if load is not None and load.gateway is not None:
                return load.gateway.split("://", 1)[-1].rstrip("/")
            left = deadline - time.monotonic()
            if left <= 0:
                raise EntryProofInvalid("wrong_domain", "the relaying node's gateway is unknown")
            heard = self._directory_heard.setdefault(peer, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await heard.wait()
            self._directory_heard.pop(peer, None)

    def peer_down(self, peer: str) -> None:
        """The link to `peer` dropped: lost, unless it is heard from again within the grace."""
        down_at = time.time()

        async def judge() -> None:
            await asyncio.sleep(PEER_DOWN_GRACE_S)
            if self._peer_heard.get(peer, 0.0) <= down_at:
                self.hub.node_lost(peer, time.time())
                self._flush()

        self._spawn(judge())

    def validate_directory(self, data: bytes, author: str) -> bool:
        try:
            self.hub.directory_message(data, author, time.time())
        except FrameInvalid as exc:
            log.debug("directory message from %s refused: %s", author, exc)
            return False
        heard = self._directory_heard.get(author)
        if heard is not None:
            heard.set()
        self._flush()
        return True

    # --- moving what the hub says -----------------------------------------------------------------

    def _flush(self) -> None:
        hub = self.hub
        for visitor, frame in hub.client_frames():
            conn = self._by_visitor.get(visitor)
            if conn is not None and not self.rtc.send(conn, frame):  # ViewerFrames, if open
                conn.send(frame)
        for visitor, reason in hub.client_closes():
            conn = self._by_visitor.pop(visitor, None)
            if conn is not None:
                conn.visitor = None
                conn.send(Denied(reason))
                conn.sink.close(CLOSE_POLICY, reason[:100])
        per_peer: dict[str, list[bytes]] = {}
        for peer, frame in hub.node_frames():
            per_peer.setdefault(peer, []).append(encode(frame))
        for peer, frames in per_peer.items():
            self._to_peer(peer, tuple(frames))
        self._wake.set()  # the hub's timer may have moved earlier

    def _to_peer(self, peer: str, frames: tuple[bytes, ...]) -> None:
        queue = self._peer_queues.get(peer)
        if queue is None:
            queue = self._peer_queues[peer] = asyncio.Queue(PEER_QUEUE)
            self._peer_tasks[peer] = self._spawn(self._send_loop(peer, queue))
        if queue.full():  # a member that cannot keep up loses its oldest ticks, not ours
            queue.get_nowait()
            self.stats.peer_frames_dropped += 1
        queue.put_nowait(frames)

    async def _send_loop(self, peer: str, queue: asyncio.Queue[tuple[bytes, ...]]) -> None:
        while True:
            frames = await queue.get()
            try:
                await self.host.session_send(peer, frames)
            except FluxError as exc:
                self.stats.peer_frames_dropped += len(frames)
                log.debug("session frames to %s: %s", peer, exc)

    def _spawn(self, work: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- the loop ---------------------------------------------------------------------------------

    async def _measure_rtt(self) -> None:
        """Placement prefers instances whose member nodes are near: ping connected peers now
        and then (a few at a time, one ping each) and tell the hub."""
        while True:
            try:
                peers = await self.host.peers()
            except FluxError:
                peers = ()
            for peer in list(peers)[:RTT_PEERS]:
                try:
                    async with asyncio.timeout(5.0):
                        result = await self.host.ping(peer.peer_id, 1)
                except (FluxError, TimeoutError):
                    continue
                if result.rtts_ms:
                    self.hub.set_rtt(peer.peer_id, min(result.rtts_ms) / 1000.0)
            await asyncio.sleep(RTT_EVERY_S)

    async def run(self) -> None:
        """Wake the hub at its timer and publish the directory; runs until cancelled."""
        hub = self.hub
        self._spawn(self._measure_rtt())
        try:
            while True:
                now = time.time()
                due = hub.get_timer()
                if due is not None and due <= now:
                    hub.handle_timer(now)
                    data = hub.directory_to_publish(now)
                    if data is not None:
                        self._spawn(self._publish(data))
                    self._flush()
                    continue
                self._wake.clear()
                wait = 1.0 if due is None else min(1.0, due - now)
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that arrives as the event is set, and this loop would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
        finally:
            await self.aclose()

    async def _publish(self, data: bytes) -> None:
        try:
            await self.host.publish(INSTANCES_TOPIC, data)
        except FluxError as exc:
            log.debug("directory publish: %s", exc)

    async def aclose(self) -> None:
        """Hand instances over and say goodbye to members, briefly; then stop every task."""
        if self._closed:
            return
        self._closed = True
        self.hub.close(time.time())
        self._flush()
        for conn in list(self._by_visitor.values()):
            conn.sink.close(CLOSE_NORMAL, "node stopping")
        await self.rtc.aclose()
        # Let the handovers leave (bounded: a stopping node must stop).
        queues = [q for q in self._peer_queues.values() if not q.empty()]
        deadline = time.monotonic() + 0.5
        while queues and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            queues = [q for q in queues if not q.empty()]
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for close in self.closers:
            close()

    def statistics(self) -> dict[str, Any]:
        rtc = self.rtc.statistics()
        return {"service": asdict(self.stats), "hub": self.hub.statistics(), "rtc": rtc}
