"""Bitswap 1.2.0 (with 1.1.0/1.0.0 fallbacks) on py-libp2p streams: server and client.

Our own engine rather than py-libp2p's: the stock one replies on the requester's stream with an
empty CID prefix for CIDv0, so Helia never receives its blocks. Here, as in Kubo and Helia,
every message goes out on a stream WE opened (one per peer, reused while busy, closed after
`STREAM_IDLE_S` idle); streams the peer opened are only read.
Wire format: `fluxnode.core.bitswap_wire`.

Server: a ledger per peer (its wants, in arrival order, capped). Peers with pending wants are
served round-robin, one message (≤ `send_budget` bytes) at a time per peer, with at most
`max_active_peers` sends in flight: a peer asking for gigabytes cannot starve one asking for
a single block. want-block → the block (if `is_allowed` and `get_block` has it); want-have →
HAVE; missing and sendDontHave → DONT_HAVE.

Client: `fetch_block` and `fetch_dag` send want-block (+ sendDontHave) to one peer at a time,
move to the next peer on DONT_HAVE or timeout, and send cancels for what is no longer wanted.
A received block is accepted only if its rebuilt CID (hash of the data) is one we want; the
data is checked again against the wanted CID before `put_block`. Anything else is dropped and
the sender's score goes down; peers below `MIN_SCORE` are no longer read.

Nothing here imports trio: all waiting goes through the `ServiceIO` we are given. It has no
events, so the client polls its own state every `POLL_S` (2 ms) while a fetch waits.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from libp2p.abc import IHost, INetStream
from libp2p.peer.id import ID

from fluxnode.core.bitswap_wire import (
    MAX_BLOCK_SIZE,
    MAX_MESSAGE_SIZE,
    MAX_WANTLIST_ENTRIES,
    PROTOCOL_100,
    PROTOCOL_110,
    PROTOCOL_120,
    BlockPayload,
    FrameDecoder,
    Message,
    Presence,
    PresenceType,
    WantEntry,
    WantType,
    cid_for_block,
    cid_prefix,
    decode_message,
    encode_message,
    frame,
)
from fluxnode.core.cid import DAG_PB, Cid
from fluxnode.core.dagpb import decode_node
from fluxnode.core.errors import NotFound, PeerError, RemoteError
from fluxnode.p2p.bridge import ServiceIO

log = logging.getLogger("fluxnode.p2p.bitswap")

PROTOCOLS = (PROTOCOL_120, PROTOCOL_110, PROTOCOL_100)
POLL_S = 0.002
MIN_SCORE = -100
READ_CHUNK = 256 * 1024
WRITE_CHUNK = 256 * 1024
#: Helia aborts an inbound bitswap stream after 10 s without a message: close ours before.
STREAM_IDLE_S = 4.0


class BlockAccess(Protocol):
    """What bitswap may do with local blocks. Async: the node answers them off its loop."""

    async def get_block(self, cid: Cid) -> bytes | None: ...

    async def put_block(self, cid: Cid, data: bytes) -> None: ...

    #: Serving policy: only pinned/allowed content, minus any denylist.
    async def is_allowed(self, cid: Cid) -> bool: ...


@dataclass
class BitswapLimits:
    max_peers: int = 256
    max_active_peers: int = 16
    max_wants_per_peer: int = MAX_WANTLIST_ENTRIES
    send_budget: int = 1024 * 1024
    stream_timeout_s: float = 30.0
    want_timeout_s: float = 30.0
    dial_timeout_s: float = 10.0


@dataclass
class BitswapStats:
    blocks_sent: int = 0
    bytes_sent: int = 0
    blocks_received: int = 0
    bytes_received: int = 0
    duplicate_blocks: int = 0
    unwanted_blocks: int = 0
    bad_messages: int = 0
    send_failures: int = 0
    refused_peers: int = 0


@dataclass
class _Ledger:
    wants: collections.OrderedDict[bytes, WantEntry] = field(
        default_factory=collections.OrderedDict
    )
    sending: bool = False
    queued: bool = False


@dataclass
class _Outbound:
    stream: INetStream | None = None
    busy: bool = False
    last_used: float = 0.0


@dataclass
class _Want:
    cid: Cid
    fetch: _Fetch
    peers: list[ID]
    peer_index: int = 0
    sent_at: float = 0.0


@dataclass
class _Fetch:
    walk: bool
    queue: collections.deque[Cid]
    in_flight: dict[bytes, _Want] = field(default_factory=dict)
    arrived: list[tuple[_Want, bytes]] = field(default_factory=list)
    failed: list[tuple[_Want, str]] = field(default_factory=list)
    seen: set[bytes] = field(default_factory=set)
    count: int = 0
    first: bytes | None = None
    #: Ask the peers even for blocks we hold, and store nothing (retrieval challenges).
    remote_only: bool = False


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
        self.stats = BitswapStats()
        self._ledgers: dict[ID, _Ledger] = {}
        self._ready: collections.deque[ID] = collections.deque()
        self._active = 0
        self._scores: dict[ID, int] = collections.defaultdict(int)
        #: Client wants in flight, by multihash (a CIDv0 and a CIDv1 of one block match).
        self._wants: dict[bytes, list[_Want]] = {}
        self._out: dict[ID, _Outbound] = {}

    def start(self) -> None:
        for proto in PROTOCOLS:
            self._host.set_stream_handler(proto, self._handle_stream)  # type: ignore[arg-type]
        self._io.start_soon(self._janitor)

    def score(self, peer: ID | str) -> int:
        return self._scores.get(_peer_id(peer), 0)

    # -- inbound streams -------------------------------------------------------------------------
    async def _handle_stream(self, stream: INetStream) -> None:
        peer = stream.muxed_conn.peer_id
        if self._scores.get(peer, 0) < MIN_SCORE:
            self.stats.refused_peers += 1
            await self._reset(stream)
            return
        decoder = FrameDecoder(MAX_MESSAGE_SIZE)
        try:
            while True:
                try:
                    with self._io.fail_after(self.limits.stream_timeout_s):
                        chunk = await stream.read(READ_CHUNK)
                except TimeoutError:
                    break
                except Exception:  # EOF, reset: the peer is done with this stream
                    break
                if not chunk:
                    break
                for raw in decoder.feed(chunk):
                    await self._on_message(peer, decode_message(raw))
        except RemoteError as exc:
            self.stats.bad_messages += 1
            self._scores[peer] -= 20
            log.info("bad bitswap message from %s: %s", peer, exc)
            await self._reset(stream)
            return
        with contextlib.suppress(Exception):
            await stream.close()

    @staticmethod
    async def _reset(stream: INetStream) -> None:
        with contextlib.suppress(Exception):
            await stream.reset()

    async def _on_message(self, peer: ID, msg: Message) -> None:
        if msg.blocks:
            self._on_blocks(peer, msg.blocks)
        if msg.presences:
            self._on_presences(peer, msg.presences)
        if msg.wantlist or msg.full:
            self._on_wantlist(peer, msg)

    # -- server ------------------------------------------------------------------------------------
    def _on_wantlist(self, peer: ID, msg: Message) -> None:
        ledger = self._ledgers.get(peer)
        if ledger is None:
            if len(self._ledgers) >= self.limits.max_peers:
                self.stats.refused_peers += 1
                return
            ledger = self._ledgers[peer] = _Ledger()
        if msg.full:
            ledger.wants.clear()
        for entry in msg.wantlist:
            key = entry.cid.to_bytes()
            if entry.cancel:
                ledger.wants.pop(key, None)
            elif key in ledger.wants or len(ledger.wants) < self.limits.max_wants_per_peer:
                ledger.wants[key] = entry
        if not ledger.wants and not ledger.sending:
            del self._ledgers[peer]
            return
        self._schedule(peer, ledger)

    def _schedule(self, peer: ID, ledger: _Ledger) -> None:
        if ledger.wants and not ledger.sending and not ledger.queued:
            ledger.queued = True
            self._ready.append(peer)
        self._pump()

    def _pump(self) -> None:
        while self._active < self.limits.max_active_peers and self._ready:
            peer = self._ready.popleft()
            ledger = self._ledgers.get(peer)
            if ledger is None:
                continue
            ledger.queued = False
            if not ledger.wants:
                continue
            ledger.sending = True
            self._active += 1
            self._io.start_soon(self._serve_once, peer, ledger)

    async def _lookup(self, cid: Cid) -> bytes | None:
        try:
            if not await self._blocks.is_allowed(cid):
                return None
            return await self._blocks.get_block(cid)
        except Exception as exc:  # a corrupted or vanished block is simply not served
            log.warning("cannot serve %s: %s", cid, exc)
            return None

    async def _next_reply(self, ledger: _Ledger) -> Message:
        """Take wants off the ledger until the reply reaches `send_budget` bytes."""
        blocks: list[BlockPayload] = []
        presences: list[Presence] = []
        size = 0
        while ledger.wants:
            key, entry = next(iter(ledger.wants.items()))
            data = await self._lookup(entry.cid)
            if data is not None and entry.want_type == WantType.BLOCK:
                if blocks and size + len(data) > self.limits.send_budget:
                    break
                blocks.append(BlockPayload(cid_prefix(entry.cid), data))
                size += len(data) + 48
            elif data is not None:
                presences.append(Presence(entry.cid, PresenceType.HAVE))
                size += 48
            elif entry.send_dont_have:
                presences.append(Presence(entry.cid, PresenceType.DONT_HAVE))
                size += 48
            ledger.wants.pop(key, None)  # a cancel may have taken it during the lookup
            if size >= self.limits.send_budget:
                break
        return Message(blocks=tuple(blocks), presences=tuple(presences))

    async def _serve_once(self, peer: ID, ledger: _Ledger) -> None:
        try:
            reply = await self._next_reply(ledger)
            if reply.blocks or reply.presences:
                await self._send(peer, reply)
                self.stats.blocks_sent += len(reply.blocks)
                self.stats.bytes_sent += sum(len(b.data) for b in reply.blocks)
        except Exception as exc:
            self.stats.send_failures += 1
            log.info("bitswap send to %s failed: %s", peer, exc)
            ledger.wants.clear()  # the peer will re-send its wantlist if it still wants
        finally:
            self._active -= 1
            ledger.sending = False
            if ledger.wants:
                self._schedule(peer, ledger)  # to the back of the round-robin
            else:
                if self._ledgers.get(peer) is ledger:
                    del self._ledgers[peer]
                self._pump()

    async def _send(self, peer: ID, msg: Message) -> None:
        """Send `msg` to `peer` on our outbound stream to it (never on the peer's own streams).

        One outbound stream per peer is reused for later messages (as go-bitswap does) and
        closed after `STREAM_IDLE_S` without use. js-mplex drops a connection whose remote
        opens more than 5 streams per second, and a stream per message would hit that at
        once; it also saves a multistream round trip per message.
        """
        log.debug(
            "send to %s: %d wants, %d blocks, %d presences",
            peer,
            len(msg.wantlist),
            len(msg.blocks),
            len(msg.presences),
        )
        out = self._out.setdefault(peer, _Outbound())
        while out.busy:  # one writer per stream; ServiceIO has no lock, so poll briefly
            await self._io.sleep(POLL_S)
        out.busy = True
        try:
            with self._io.fail_after(self.limits.stream_timeout_s):
                while True:
                    fresh = out.stream is None or self._io.now() - out.last_used > STREAM_IDLE_S
                    if fresh:
                        await self._close_outbound(out)
                        out.stream = await self._host.new_stream(
                            peer,
                            list(PROTOCOLS),  # type: ignore[arg-type]
                        )
                    stream = out.stream
                    assert stream is not None
                    try:
                        v100 = stream.get_protocol() == PROTOCOL_100
                        data = frame(encode_message(msg, v100=v100))
                        for i in range(0, len(data), WRITE_CHUNK):
                            await stream.write(data[i : i + WRITE_CHUNK])
                    except BaseException:
                        out.stream = None
                        await self._reset(stream)
                        if fresh:
                            raise
                        continue  # the reused stream had died: once more on a new one
                    out.last_used = self._io.now()
                    return
        finally:
            out.busy = False

    async def _close_outbound(self, out: _Outbound) -> None:
        stream, out.stream = out.stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.close()

    async def _janitor(self) -> None:
        """Close outbound streams that have been idle for `STREAM_IDLE_S`."""
        while True:
            await self._io.sleep(1.0)
            now = self._io.now()
            for peer, out in list(self._out.items()):
                if out.busy:
                    continue
                if out.stream is not None and now - out.last_used > STREAM_IDLE_S:
                    out.busy = True
                    try:
                        await self._close_outbound(out)
                    finally:
                        out.busy = False
                if out.stream is None and not out.busy and self._out.get(peer) is out:
                    del self._out[peer]

    # -- client ------------------------------------------------------------------------------------
    def _on_blocks(self, peer: ID, payloads: Sequence[BlockPayload]) -> None:
        for payload in payloads:
            try:
                cid = cid_for_block(payload.prefix, payload.data)
            except RemoteError:
                self._scores[peer] -= 10
                self.stats.unwanted_blocks += 1
                continue
            wants = self._wants.pop(cid.multihash, None)
            if not wants:
                # Unsolicited, a late duplicate, or data that hashes to nothing we asked for.
                self._scores[peer] -= 1
                self.stats.unwanted_blocks += 1
                continue
            for want in wants:
                if len(payload.data) > MAX_BLOCK_SIZE or not want.cid.verify(payload.data):
                    self._scores[peer] -= 10
                    continue
                want.fetch.arrived.append((want, payload.data))
            self._scores[peer] += 1
            self.stats.blocks_received += 1
            self.stats.bytes_received += len(payload.data)

    def _on_presences(self, peer: ID, presences: Iterable[Presence]) -> None:
        for p in presences:
            if p.type != PresenceType.DONT_HAVE:
                continue
            for want in self._wants.get(p.cid.multihash, ()):
                if want.peers[want.peer_index % len(want.peers)] == peer:
                    want.sent_at = -1.0  # ask the next peer at the next tick

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
        fetch = _Fetch(walk=False, queue=collections.deque([cid]), remote_only=remote_only)
        await self._run_fetch(fetch, [_peer_id(p) for p in peers], 1, timeout_s)
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
        fetch = _Fetch(walk=True, queue=collections.deque([root]))
        await self._run_fetch(fetch, [_peer_id(p) for p in peers], max_in_flight, timeout_s)
        return fetch.count

    async def _run_fetch(
        self, fetch: _Fetch, peers: list[ID], max_in_flight: int, timeout_s: float
    ) -> None:
        if not peers:
            raise PeerError("bitswap fetch needs at least one peer")
        io = self._io
        try:
            with io.fail_after(timeout_s):
                while fetch.queue or fetch.in_flight:
                    await self._process_arrivals(fetch)
                    if fetch.failed:
                        want, why = fetch.failed[0]
                        raise NotFound(f"block {want.cid} could not be fetched: {why}")
                    batch: dict[ID, list[WantEntry]] = collections.defaultdict(list)
                    while fetch.queue and len(fetch.in_flight) < max_in_flight:
                        cid = fetch.queue.popleft()
                        key = cid.to_bytes()
                        if key in fetch.seen:
                            continue
                        fetch.seen.add(key)
                        local = None if fetch.remote_only else await self._local(cid)
                        if local is not None:
                            await self._accept(fetch, cid, local, store=False)
                            continue
                        want = _Want(cid, fetch, peers, sent_at=io.now())
                        fetch.in_flight[key] = want
                        self._wants.setdefault(cid.multihash, []).append(want)
                        batch[peers[0]].append(WantEntry(cid, send_dont_have=True))
                    self._retry_stale(fetch, batch)
                    for peer, entries in batch.items():
                        await self._send_wants(peer, entries)
                    if fetch.in_flight and not fetch.arrived:
                        await io.sleep(POLL_S)
                await self._process_arrivals(fetch)
        except TimeoutError as exc:
            raise PeerError(f"bitswap fetch timed out after {timeout_s:g} s") from exc
        finally:
            await self._cancel_all(fetch)

    async def _local(self, cid: Cid) -> bytes | None:
        try:
            return await self._blocks.get_block(cid)
        except Exception:
            return None

    def _retry_stale(self, fetch: _Fetch, batch: dict[ID, list[WantEntry]]) -> None:
        now = self._io.now()
        for want in fetch.in_flight.values():
            if want.sent_at >= 0 and now - want.sent_at < self.limits.want_timeout_s:
                continue
            want.peer_index += 1
            if want.peer_index >= len(want.peers):
                fetch.failed.append((want, "no peer has it (DONT_HAVE or timeout)"))
                continue
            want.sent_at = now
            batch[want.peers[want.peer_index]].append(WantEntry(want.cid, send_dont_have=True))

    async def _send_wants(self, peer: ID, entries: list[WantEntry]) -> None:
        for i in range(0, len(entries), MAX_WANTLIST_ENTRIES):
            chunk = tuple(entries[i : i + MAX_WANTLIST_ENTRIES])
            try:
                await self._send(peer, Message(wantlist=chunk))
            except Exception as exc:
                log.info("sending wants to %s failed: %s", peer, exc)
                for entry in chunk:  # let the retry logic move on to the next peer
                    want = next(
                        (w for w in self._wants.get(entry.cid.multihash, ()) if w.cid == entry.cid),
                        None,
                    )
                    if want is not None:
                        want.sent_at = -1.0

    async def _process_arrivals(self, fetch: _Fetch) -> None:
        arrived, fetch.arrived = fetch.arrived, []
        for want, data in arrived:
            key = want.cid.to_bytes()
            if fetch.in_flight.pop(key, None) is None:
                continue
            await self._accept(fetch, want.cid, data, store=not fetch.remote_only)

    async def _accept(self, fetch: _Fetch, cid: Cid, data: bytes, *, store: bool) -> None:
        if store:
            await self._blocks.put_block(cid, data)
        if fetch.first is None:
            fetch.first = data
        fetch.count += 1
        if fetch.walk and cid.codec == DAG_PB:
            for link in decode_node(data).links:
                if link.cid.to_bytes() not in fetch.seen:
                    fetch.queue.append(link.cid)

    async def _cancel_all(self, fetch: _Fetch) -> None:
        cancels: dict[ID, list[WantEntry]] = collections.defaultdict(list)
        for want in fetch.in_flight.values():
            wants = self._wants.get(want.cid.multihash)
            if wants is not None:
                wants[:] = [w for w in wants if w is not want]
                if not wants:
                    del self._wants[want.cid.multihash]
            for peer in want.peers[: want.peer_index + 1]:
                cancels[peer].append(WantEntry(want.cid, cancel=True))
        fetch.in_flight.clear()
        for peer, entries in cancels.items():
            with contextlib.suppress(Exception):
                await self._send_wants(peer, entries)


__all__ = ["PROTOCOLS", "Bitswap", "BitswapLimits", "BitswapStats", "BlockAccess"]
