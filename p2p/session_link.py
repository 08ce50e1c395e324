"""`/flux/session/1`: direct streams between the member nodes of a live world instance.

Per-tick session traffic does not ride gossipsub (its CPU cost per message and hop caps it near
100-150 msg/s per core). Each member node instead keeps ONE outbound stream of this protocol to
every other member and sends one batch per tick on it. The frames are opaque bytes here: the
node encodes and decodes them; this module only moves them, in order, per peer.

Inbound: every frame of a peer's stream passes that peer's rate budget (`InboundLimiter`:
frames/s and bytes/s, the excess dropped and counted per peer) and becomes a `SessionFrame`
event sent with `emit_nowait`: when the node is behind, frames are dropped and counted, and the
trio side never waits for a slow consumer. A malformed or oversized length prefix resets that
stream only (`reset_oversized`); the peer's other traffic and other peers are unaffected.

Outbound: `send()` hands a batch to the peer's one writer task, which owns the peer's one
long-lived stream: opened (dialling the peerstore's addresses if need be) on first use, reused,
and opened once more if it turns out broken. Writers of different peers never wait for each
other. Each peer's queue is bounded (`SessionLinkLimits.send_queue` batches): when it is full,
`send()` fails at once with PeerError rather than queueing behind a stalled peer, so a caller
sees a dead peer within a tick or two and its bridge call slots are not held for long.
`send()` returns once the batch was written to the stream (the muxer has it), not when the
peer has read it.

Peer down: when a peer's session stream (either way) ends or breaks, or its last connection
closes, a `SessionPeerDown` is emitted once; a later frame or stream from it means it is back.

Nothing here imports trio: all waiting goes through the `ServiceIO` we are given.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from dataclasses import dataclass, field

from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from fluxnode.core.errors import BadRequest, FrameInvalid, PeerError
from fluxnode.p2p.bridge import OneShotEvent, ServiceIO
from fluxnode.p2p.messages import LinkPeerStats, SessionFrame, SessionLinkStats, SessionPeerDown
from fluxnode.p2p.session_frames import (
    MAX_LINK_FRAME,
    PROTOCOL,
    InboundLimiter,
    LinkFrameDecoder,
    SessionLinkLimits,
    encode_frames,
)

log = logging.getLogger("fluxnode.p2p.session_link")

READ_CHUNK = 64 * 1024


@dataclass(eq=False)
class _Batch:
    data: bytes
    frames: int
    done: OneShotEvent
    error: str | None = None


@dataclass(eq=False)
class _Writer:
    wake: OneShotEvent
    queue: collections.deque[_Batch] = field(default_factory=collections.deque)
    stream: INetStream | None = None
    #: Set when the peer disconnected: the writer fails what waits and ends.
    closed: bool = False


@dataclass(eq=False)
class _Peer:
    frames_in: int = 0
    bytes_in: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    inbound: int = 0
    writer: _Writer | None = None


class _Disconnects(INotifee):
    """Tells the link when a peer's connection closed (the only network event it needs)."""

    def __init__(self, link: SessionLink) -> None:
        self._link = link

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._link._on_disconnected(str(conn.muxed_conn.peer_id))

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        pass

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        pass


class SessionLink:
    """Owns the session streams of one host for the life of the host service."""

    def __init__(self, host: IHost, io: ServiceIO, limits: SessionLinkLimits | None = None) -> None:
        self._host = host
        self._io = io
        self.limits = limits or SessionLinkLimits()
        self._limiter = InboundLimiter(self.limits)
        self._peers: dict[str, _Peer] = {}
        #: Peers with a live session stream, owed one SessionPeerDown when it goes.
        self._up: set[str] = set()
        self._frames_in = self._bytes_in = self._frames_out = self._bytes_out = 0
        self._dropped_queue = 0
        self._reset_oversized = 0
        self._refused_streams = 0
        self._send_queue_full = 0
        self._send_failed = 0

    def start(self) -> None:
        self._host.set_stream_handler(PROTOCOL, self._handle_stream)  # type: ignore[arg-type]
        self._host.get_network().register_notifee(_Disconnects(self))

    # -- statistics --------------------------------------------------------------------------
    def statistics(self) -> SessionLinkStats:
        peers = tuple(
            LinkPeerStats(
                peer_id=peer,
                frames_in=st.frames_in,
                bytes_in=st.bytes_in,
                frames_out=st.frames_out,
                bytes_out=st.bytes_out,
                dropped_rate=self._limiter.dropped_by(peer),
                streams=st.inbound + int(st.writer is not None and st.writer.stream is not None),
            )
            for peer, st in sorted(self._peers.items())
        )
        return SessionLinkStats(
            frames_in=self._frames_in,
            bytes_in=self._bytes_in,
            frames_out=self._frames_out,
            bytes_out=self._bytes_out,
            dropped_rate=self._limiter.dropped,
            dropped_queue=self._dropped_queue,
            reset_oversized=self._reset_oversized,
            refused_streams=self._refused_streams,
            send_queue_full=self._send_queue_full,
            send_failed=self._send_failed,
            streams_in=sum(st.inbound for st in self._peers.values()),
            streams_out=sum(
                1
                for st in self._peers.values()
                if st.writer is not None and st.writer.stream is not None
            ),
            peers=peers,
        )

    # -- peer state --------------------------------------------------------------------------
    def _peer(self, peer: str) -> _Peer:
        st = self._peers.get(peer)
        if st is None:
            st = self._peers[peer] = _Peer()
        return st

    def _connected(self, peer: str) -> bool:
        return any(str(p) == peer for p in self._host.get_connected_peers())

    def _down(self, peer: str) -> None:
        """The peer's session link went away: tell the node, once."""
        if peer not in self._up:
            return
        self._up.discard(peer)
        event = SessionPeerDown(peer)
        # Never lost: if the event window is full, a task waits for credit (one per loss).
        with contextlib.suppress(RuntimeError):  # the service is shutting down
            if not self._io.emit_nowait(event):
                self._io.start_soon(self._io.emit, event)

    def _on_disconnected(self, peer: str) -> None:
        if self._connected(peer):
            return  # another connection to it is still open
        self._down(peer)
        st = self._peers.get(peer)
        if st is not None and st.writer is not None:
            st.writer.closed = True
            st.writer.wake.set()
        self._maybe_forget(peer)

    def _maybe_forget(self, peer: str) -> None:
        """Drop a gone peer's counters and budgets once nothing of it is left open."""
        st = self._peers.get(peer)
        if st is None or st.inbound or st.writer is not None or self._connected(peer):
            return
        del self._peers[peer]
        self._limiter.forget(peer)

    # -- inbound -----------------------------------------------------------------------------
    async def _handle_stream(self, stream: INetStream) -> None:
        peer = str(stream.muxed_conn.peer_id)
        st = self._peer(peer)
        if st.inbound >= self.limits.max_streams_per_peer:
            self._refused_streams += 1
            await self._reset(stream)
            return
        st.inbound += 1
        self._up.add(peer)
        try:
            await self._read_frames(peer, st, stream)
        finally:
            st.inbound -= 1
        # Ended (EOF, reset, bad prefix) rather than cancelled: the peer's stream is gone.
        self._down(peer)
        self._maybe_forget(peer)

    async def _read_frames(self, peer: str, st: _Peer, stream: INetStream) -> None:
        decoder = LinkFrameDecoder(MAX_LINK_FRAME)
        io = self._io
        while True:
            try:
                chunk = await stream.read(READ_CHUNK)
            except Exception:  # reset or connection lost: the peer is done with it
                return
            if not chunk:
                break
            now = io.now()
            for data in decoder.feed(chunk):
                if not self._limiter.admit(peer, len(data), now):
                    continue
                if io.emit_nowait(SessionFrame(peer, data)):
                    st.frames_in += 1
                    st.bytes_in += len(data)
                    self._frames_in += 1
                    self._bytes_in += len(data)
                else:
                    self._dropped_queue += 1
            if decoder.error is not None:
                self._reset_oversized += 1
                log.info("session stream from %s reset: %s", peer, decoder.error)
                await self._reset(stream)
                return
        with contextlib.suppress(Exception):
            await stream.close()

    @staticmethod
    async def _reset(stream: INetStream) -> None:
        with contextlib.suppress(Exception):
            await stream.reset()

    # -- outbound ----------------------------------------------------------------------------
    async def send(self, peer: str, frames: tuple[bytes, ...]) -> None:
        """Write `frames` to `peer` in order on our one stream to it (see the module doc)."""
        try:
            peer_id = ID.from_base58(peer)
        except Exception as exc:
            raise BadRequest(f"not a peer ID: {peer!r}") from exc
        if peer_id == self._host.get_id():
            raise BadRequest("cannot open a session link to ourselves")
        try:
            data = encode_frames(frames)
        except FrameInvalid as exc:
            raise BadRequest(str(exc)) from None
        if not frames:
            return
        st = self._peer(peer)
        writer = st.writer
        if writer is None or writer.closed:
            writer = st.writer = _Writer(self._io.event())
            self._io.start_soon(self._write_loop, peer_id, st, writer)
        if len(writer.queue) >= self.limits.send_queue:
            self._send_queue_full += 1
            raise PeerError(f"session send queue to {peer} is full")
        batch = _Batch(data, len(frames), self._io.event())
        writer.queue.append(batch)
        writer.wake.set()
        await batch.done.wait()
        if batch.error is not None:
            raise PeerError(f"session send to {peer} failed: {batch.error}")

    async def _write_loop(self, peer_id: ID, st: _Peer, writer: _Writer) -> None:
        """The one writer of our session stream to `peer_id`: sends its queue in order."""
        peer = str(peer_id)
        try:
            while not writer.closed:
                if not writer.queue:
                    writer.wake = self._io.event()
                    await writer.wake.wait()
                    continue
                # The batch stays queued while it is written, so the bound counts it.
                batch = writer.queue[0]
                batch.error = await self._write(peer_id, writer, batch.data)
                writer.queue.popleft()
                if batch.error is None:
                    st.frames_out += batch.frames
                    st.bytes_out += len(batch.data)
                    self._frames_out += batch.frames
                    self._bytes_out += len(batch.data)
                    batch.done.set()
                    continue
                # Unreachable or broken: fail what waits too, rather than wait again for each.
                self._down(peer)
                self._fail(batch, *writer.queue)
                writer.queue.clear()
            self._fail(*writer.queue, reason="peer disconnected")
            writer.queue.clear()
        finally:
            if st.writer is writer:
                st.writer = None
            stream, writer.stream = writer.stream, None
            if stream is not None:
                with contextlib.suppress(Exception):
                    await stream.close()
        self._maybe_forget(peer)

    def _fail(self, *batches: _Batch, reason: str | None = None) -> None:
        for batch in batches:
            if reason is not None:
                batch.error = reason
            elif batch.error is None:
                batch.error = "an earlier batch to this peer failed"
            self._send_failed += 1
            batch.done.set()

    async def _write(self, peer_id: ID, writer: _Writer, data: bytes) -> str | None:
        """None once `data` is on the stream; else why not (the stream is dropped)."""
        try:
            with self._io.fail_after(self.limits.write_timeout_s):
                while True:
                    fresh = writer.stream is None
                    if fresh:
                        writer.stream = await self._open(peer_id)
                    stream = writer.stream
                    assert stream is not None
                    try:
                        await stream.write(data)
                        return None
                    except Exception:
                        writer.stream = None
                        await self._reset(stream)
                        if fresh:
                            raise
                        # the reused stream had died: once more on a new one
        except Exception as exc:  # dial, negotiation or write failed, or timed out
            log.info("session send to %s failed: %s", peer_id, exc)
            return str(exc) or type(exc).__name__

    async def _open(self, peer_id: ID) -> INetStream:
        host = self._host
        if peer_id not in host.get_connected_peers():
            try:
                addrs = host.get_peerstore().addrs(peer_id)
            except Exception as exc:  # py-libp2p raises PeerStoreError for unknown peers
                raise PeerError(f"no known address for {peer_id}") from exc
            await host.connect(PeerInfo(peer_id, addrs))
        stream = await host.new_stream(peer_id, [PROTOCOL])  # type: ignore[list-item]
        self._up.add(str(peer_id))
        return stream


__all__ = ["SessionLink"]
