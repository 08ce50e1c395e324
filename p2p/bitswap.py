"""Bitswap 1.2.0 (with 1.1.0/1.0.0 fallbacks) on py-libp2p streams: the I/O around the engine.

What to send, to whom and when is decided by the sans-IO `fluxnode.core.bitswap_engine`
(ledgers, round-robin, byte budget, wants, retries, rotation, scores). This module only moves
bytes: it reads the peers' streams into the engine, writes what the engine wants sent, answers
its block lookups from `BlockAccess`, stores the verified blocks it hands out, and wakes the
engine when its timer is due. Every wait is on an event (`ServiceIO.event`): nothing polls.

Our own stack rather than py-libp2p's: the stock one replies on the requester's stream with an
empty CID prefix for CIDv0, so Helia never receives its blocks. Here, as in Kubo and Helia,
every message goes out on a stream WE opened: one writer task per peer owns one outbound stream,
reuses it while messages keep coming and closes it after `STREAM_IDLE_S` idle. Streams the peer
opened are only read. Wire format: `fluxnode.core.bitswap_wire`.

Nothing here imports trio: all waiting goes through the `ServiceIO` we are given.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from libp2p.abc import IHost, INetStream
from libp2p.peer.id import ID

from fluxnode.core.bitswap_engine import (
    BitswapEngine,
    BlockReceived,
    EngineLimits,
    EngineStats,
    Lookup,
    WantFailed,
)
from fluxnode.core.bitswap_wire import (
    MAX_MESSAGE_SIZE,
    PROTOCOL_100,
    PROTOCOL_110,
    PROTOCOL_120,
    FrameDecoder,
    Message,
    decode_message,
    encode_message,
    frame,
)
from fluxnode.core.cid import DAG_PB, Cid
from fluxnode.core.dagpb import decode_node
from fluxnode.core.errors import FluxError, NotFound, PeerError, RemoteError
from fluxnode.p2p.bridge import OneShotEvent, ServiceIO

log = logging.getLogger("fluxnode.p2p.bitswap")

PROTOCOLS = (PROTOCOL_120, PROTOCOL_110, PROTOCOL_100)
READ_CHUNK = 256 * 1024
WRITE_CHUNK = 256 * 1024
#: Helia aborts an inbound bitswap stream after 10 s without a message: close ours before.
STREAM_IDLE_S = 4.0


class BlockAccess(Protocol):
    """What bitswap may do with local blocks (awaited on the trio thread)."""

    async def get_block(self, cid: Cid) -> bytes | None:
        """The block's bytes, or None if it is not held."""

    async def put_block(self, cid: Cid, data: bytes) -> None:
        """Store a verified block (raise, e.g. `ContentDenied`, to refuse it)."""

    async def serve_block(self, cid: Cid) -> bytes | None:
        """The block if the serving policy allows it (pinned, minus any denylist) and it is
        stored intact, else None."""


@dataclass(frozen=True)
class BitswapLimits(EngineLimits):
    stream_timeout_s: float = 30.0
    dial_timeout_s: float = 10.0


@dataclass(frozen=True)
class BitswapStats:
    engine: EngineStats
    writers: int
    fetches: int
    refused_streams: int
    store_failures: int


@dataclass(eq=False)
class _Writer:
    wake: OneShotEvent
    queue: collections.deque[Message] = field(default_factory=collections.deque)
    stream: INetStream | None = None


@dataclass(eq=False)
class _Fetch:
    tag: int
    peers: list[ID]
    walk: bool
    wake: OneShotEvent
    #: Ask the peers even for blocks we hold, and store nothing (retrieval challenges).
    remote_only: bool = False
    queue: collections.deque[Cid] = field(default_factory=collections.deque)
    seen: set[bytes] = field(default_factory=set)
    in_flight: dict[bytes, Cid] = field(default_factory=dict)
    events: collections.deque[BlockReceived[ID] | WantFailed] = field(
        default_factory=collections.deque
    )
    count: int = 0
    first: bytes | None = None


def _peer_id(peer: ID | str) -> ID:
    return peer if isinstance(peer, ID) else ID.from_base58(str(peer))


class Bitswap:
    def __init__(
        self,
        host: IHost,
        io: ServiceIO,
        blocks: BlockAccess,
        limits: BitswapLimits | None = None,
    ) -> None:
        self._host = host
        self._io = io
        self._blocks = blocks
        self.limits = limits or BitswapLimits()
        self._engine: BitswapEngine[ID] = BitswapEngine(self.limits)
        self._writers: dict[ID, _Writer] = {}
        self._fetches: dict[int, _Fetch] = {}
        self._tags = itertools.count(1)
        self._timer_wake = io.event()
        self._timer_at: float | None = None
        self._refused_streams = 0
        self._store_failures = 0

    def start(self) -> None:
        for proto in PROTOCOLS:
            self._host.set_stream_handler(proto, self._handle_stream)  # type: ignore[arg-type]
        self._io.start_soon(self._timer_loop)

    def score(self, peer: ID | str) -> int:
        return self._engine.score(_peer_id(peer))

    def statistics(self) -> BitswapStats:
        return BitswapStats(
            engine=self._engine.statistics(),
            writers=len(self._writers),
            fetches=len(self._fetches),
            refused_streams=self._refused_streams,
            store_failures=self._store_failures,
        )

    # -- pumping the engine ------------------------------------------------------------------
    def _kick(self) -> None:
        """Hand out everything the engine decided: messages, lookups, fetch events, timer."""
        engine = self._engine
        for peer, msg in engine.messages_to_send(self._io.now()):
            writer = self._writers.get(peer)
            if writer is None:
                writer = self._writers[peer] = _Writer(self._io.event())
                self._io.start_soon(self._write_loop, peer, writer)
            writer.queue.append(msg)
            writer.wake.set()
        while (event := engine.next_event()) is not None:
            if isinstance(event, Lookup):
                self._io.start_soon(self._lookup, event.peer, event.cid)
                continue
            fetch = self._fetches.get(event.tag)
            if fetch is not None:
                fetch.events.append(event)
                fetch.wake.set()
        timer = engine.get_timer()
        if timer != self._timer_at:
            self._timer_at = timer
            self._timer_wake.set()

    async def _timer_loop(self) -> None:
        while True:
            wake = self._timer_wake = self._io.event()
            at = self._timer_at = self._engine.get_timer()
            if at is None:
                await wake.wait()
                continue
            delay = at - self._io.now()
            if delay > 0:
                with contextlib.suppress(TimeoutError), self._io.fail_after(delay):
                    await wake.wait()
                continue
            self._engine.handle_timer(self._io.now())
            self._kick()

    async def _lookup(self, peer: ID, cid: Cid) -> None:
        data = None
        try:
            data = await self._blocks.serve_block(cid)
        except (FluxError, OSError) as exc:  # a corrupted or vanished block is not served
            log.warning("cannot serve %s: %s", cid, exc)
        self._engine.block_ready(peer, cid, data, self._io.now())
        self._kick()

    # -- streams -----------------------------------------------------------------------------
    async def _handle_stream(self, stream: INetStream) -> None:
        peer = stream.muxed_conn.peer_id
        if self._engine.is_ignored(peer):
            self._refused_streams += 1
            await self._reset(stream)
            return
        decoder = FrameDecoder(MAX_MESSAGE_SIZE)
        while True:
            try:
                with self._io.fail_after(self.limits.stream_timeout_s):
                    chunk = await stream.read(READ_CHUNK)
            except Exception:  # EOF, reset, silence: the peer is done with this stream
                break
            if not chunk:
                break
            try:
                messages = [decode_message(raw) for raw in decoder.feed(chunk)]
            except RemoteError as exc:
                log.info("bad bitswap message from %s: %s", peer, exc)
                self._engine.receive_bad_message(peer, self._io.now())
                self._kick()
                await self._reset(stream)
                return
            for msg in messages:
                self._engine.receive_message(peer, msg, self._io.now())
            self._kick()
            if self._engine.is_ignored(peer):
                await self._reset(stream)
                return
        with contextlib.suppress(Exception):
            await stream.close()

    @staticmethod
    async def _reset(stream: INetStream) -> None:
        with contextlib.suppress(Exception):
            await stream.reset()

    async def _write_loop(self, peer: ID, writer: _Writer) -> None:
        """The one writer of our outbound stream to `peer`: sends its queue in order.

        One stream per peer is reused for later messages (as go-bitswap does) and closed after
        `STREAM_IDLE_S` without use. js-mplex drops a connection whose remote opens more than 5
        streams per second, and a stream per message would hit that at once; reuse also saves
        a multistream round trip per message.
        """
        try:
            while True:
                if not writer.queue:
                    writer.wake = self._io.event()
                    try:
                        with self._io.fail_after(STREAM_IDLE_S):
                            await writer.wake.wait()
                    except TimeoutError:
                        if not writer.queue:
                            return
                    continue
                msg = writer.queue.popleft()
                ok = await self._write(peer, writer, msg)
                now = self._io.now()
                self._engine.message_sent(peer, msg, now, ok)
                if not ok:  # the peer is unreachable: fail what waits too, do not wait again
                    while writer.queue:
                        self._engine.message_sent(peer, writer.queue.popleft(), now, False)
                self._kick()
        finally:
            if self._writers.get(peer) is writer:
                del self._writers[peer]
            stream, writer.stream = writer.stream, None
            if stream is not None:
                with contextlib.suppress(Exception):
                    await stream.close()

    async def _write(self, peer: ID, writer: _Writer, msg: Message) -> bool:
        log.debug(
            "send to %s: %d wants, %d blocks, %d presences",
            peer,
            len(msg.wantlist),
            len(msg.blocks),
            len(msg.presences),
        )
        try:
            with self._io.fail_after(self.limits.stream_timeout_s):
                while True:
                    fresh = writer.stream is None
                    if fresh:
                        writer.stream = await self._host.new_stream(
                            peer,
                            list(PROTOCOLS),  # type: ignore[arg-type]
                        )
                    stream = writer.stream
                    assert stream is not None
                    try:
                        v100 = stream.get_protocol() == PROTOCOL_100
                        data = frame(encode_message(msg, v100=v100))
                        for i in range(0, len(data), WRITE_CHUNK):
                            await stream.write(data[i : i + WRITE_CHUNK])
                        return True
                    except Exception:
                        writer.stream = None
                        await self._reset(stream)
                        if fresh:
                            raise
                        # the reused stream had died: once more on a new one
        except Exception as exc:  # dial, negotiation or write failed, or timed out
            log.info("bitswap send to %s failed: %s", peer, exc)
            return False

    # -- client ------------------------------------------------------------------------------
    async def fetch_block(
        self,
        cid: Cid,
        peers: Sequence[ID | str],
        *,
        timeout_s: float = 60.0,
        remote_only: bool = False,
    ) -> bytes:
        """One block from `peers`, verified and stored via `put_block`. With `remote_only` the
        peers must deliver it even if we hold it, and nothing is stored: a proof of storage."""
        fetch = self._new_fetch(peers, walk=False, remote_only=remote_only)
        fetch.queue.append(cid)
        await self._run_fetch(fetch, 1, timeout_s)
        assert fetch.first is not None
        return fetch.first

    async def fetch_dag(
        self,
        root: Cid,
        peers: Sequence[ID | str],
        *,
        max_in_flight: int = 32,
        timeout_s: float = 600.0,
    ) -> int:
        """Fetch every block of the dag-pb DAG under `root` that is not stored yet; returns the
        number of blocks in the DAG (stored before or fetched now)."""
        fetch = self._new_fetch(peers, walk=True)
        fetch.queue.append(root)
        await self._run_fetch(fetch, max_in_flight, timeout_s)
        return fetch.count

    def _new_fetch(
        self, peers: Sequence[ID | str], *, walk: bool, remote_only: bool = False
    ) -> _Fetch:
        if not peers:
            raise PeerError("bitswap fetch needs at least one peer")
        return _Fetch(
            next(self._tags),
            [_peer_id(p) for p in peers],
            walk,
            self._io.event(),
            remote_only=remote_only,
        )

    async def _run_fetch(self, fetch: _Fetch, max_in_flight: int, timeout_s: float) -> None:
        io = self._io
        self._fetches[fetch.tag] = fetch
        try:
            with io.fail_after(timeout_s):
                while fetch.queue or fetch.in_flight:
                    await self._want_more(fetch, max_in_flight)
                    self._kick()
                    if fetch.in_flight and not fetch.events:
                        fetch.wake = io.event()
                        await fetch.wake.wait()
                    while fetch.events:
                        event = fetch.events.popleft()
                        if isinstance(event, WantFailed):
                            raise NotFound(
                                f"block {event.cid} could not be fetched: {event.reason}"
                            )
                        del fetch.in_flight[event.cid.to_bytes()]
                        if not fetch.remote_only:
                            await self._store(event.cid, event.data)
                        self._accept(fetch, event.cid, event.data)
        except TimeoutError as exc:
            raise PeerError(f"bitswap fetch timed out after {timeout_s:g} s") from exc
        finally:
            del self._fetches[fetch.tag]
            now = io.now()
            for cid in fetch.in_flight.values():
                self._engine.cancel(cid, now, tag=fetch.tag)
            self._kick()

    async def _want_more(self, fetch: _Fetch, max_in_flight: int) -> None:
        while fetch.queue and len(fetch.in_flight) < max_in_flight:
            cid = fetch.queue.popleft()
            key = cid.to_bytes()
            if key in fetch.seen:
                continue
            fetch.seen.add(key)
            local = None if fetch.remote_only else await self._local(cid)
            if local is not None:
                self._accept(fetch, cid, local)
                continue
            fetch.in_flight[key] = cid
            self._engine.want(cid, fetch.peers, self._io.now(), tag=fetch.tag)

    async def _local(self, cid: Cid) -> bytes | None:
        try:
            return await self._blocks.get_block(cid)
        except (FluxError, OSError) as exc:  # unreadable here: fetch it again
            log.info("local copy of %s unreadable: %s", cid, exc)
            return None

    async def _store(self, cid: Cid, data: bytes) -> None:
        try:
            await self._blocks.put_block(cid, data)
        except FluxError:
            self._store_failures += 1
            raise

    @staticmethod
    def _accept(fetch: _Fetch, cid: Cid, data: bytes) -> None:
        if fetch.first is None:
            fetch.first = data
        fetch.count += 1
        if fetch.walk and cid.codec == DAG_PB:
            for link in decode_node(data).links:
                if link.cid.to_bytes() not in fetch.seen:
                    fetch.queue.append(link.cid)


__all__ = [
    "PROTOCOLS",
    "Bitswap",
    "BitswapLimits",
    "BitswapStats",
    "BlockAccess",
]
