"""Bitswap as a sans-IO engine: what to send, to whom and when, with no streams and no clock.

Shaped like aioquic's connection: the I/O layer feeds in what happened —
`receive_message(peer, msg, now)`, `receive_bad_message`, `message_sent`, `block_ready`,
`handle_timer(now)` — and the client calls `want` / `cancel`; it then drains what the engine
decided — `messages_to_send(now)` ((peer, Message) pairs), `next_event()` and `get_timer()`.
Time is always an argument, so tests drive it as in-memory pairs with made-up clocks.

Serving lives in `fluxnode.core.bitswap_ledger` (ledgers, round-robin, byte budget); the engine
never reads or writes blocks: it asks for them (`Lookup` events, answered by `block_ready`) and
hands out verified arrivals (`BlockReceived`) for the I/O layer to store.

Client: each want is asked of one peer at a time (want-block + sendDontHave) in the order
given; on DONT_HAVE, a failed send, or `want_timeout_s` of silence it moves to the next peer,
going round the list up to `want_rounds` times (a peer that said DONT_HAVE is not asked again).
When no peer is left the want ends with `WantFailed`. A block is accepted only if the CID rebuilt
from its prefix — by hashing its data — has the multihash of a want, so every `BlockReceived`
carries verified data; the other peers asked get a cancel.

Scores: a block that hashes to nothing we want costs its sender 1 point (it may be a late
duplicate), a block that cannot be parsed or is too large 10, an undecodable message 20; a
wanted block earns 1, up to `MAX_SCORE` so no peer banks unlimited credit. Below `MIN_SCORE` a
peer is ignored: its messages are dropped, its ledger is closed and wants move past it.
"""

from __future__ import annotations

import collections
import heapq
import itertools
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from fluxnode.core.bitswap_ledger import Ledgers, Lookup, ServerLimits, ServerStats
from fluxnode.core.bitswap_wire import (
    MAX_BLOCK_SIZE,
    MAX_WANTLIST_ENTRIES,
    Message,
    PresenceType,
    WantEntry,
    cid_for_block,
)
from fluxnode.core.cid import Cid
from fluxnode.core.errors import LocalError, RemoteError
from fluxnode.core.errors import TooManyWants as TooManyWants  # re-exported

P = TypeVar("P", bound=Hashable)

MIN_SCORE = -100
MAX_SCORE = 100
UNWANTED_BLOCK_PENALTY = 1
BAD_BLOCK_PENALTY = 10
BAD_MESSAGE_PENALTY = 20


@dataclass(frozen=True)
class EngineLimits(ServerLimits):
    #: Silence after which a want moves on to the next peer.
    want_timeout_s: float = 30.0
    #: How many times a want goes round its peer list (peers that said DONT_HAVE are skipped).
    want_rounds: int = 2
    #: Client wants in flight at once, over all fetches.
    max_wants: int = 8192
    #: Peers whose score is remembered; beyond this, neutral or good scores are forgotten.
    max_scored_peers: int = 4096

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.want_timeout_s <= 0 or self.want_rounds < 1 or self.max_wants < 1:
            raise LocalError("bitswap want limits must be positive")


@dataclass(frozen=True, slots=True)
class BlockReceived(Generic[P]):
    """A wanted block arrived; `data` hashes to `cid`'s multihash."""

    tag: int
    cid: Cid
    data: bytes
    peer: P


@dataclass(frozen=True, slots=True)
class WantFailed:
    """No peer delivered `cid`; `reason` says who refused and who stayed silent."""

    tag: int
    cid: Cid
    reason: str


Event = Lookup[P] | BlockReceived[P] | WantFailed


@dataclass(frozen=True)
class EngineStats:
    server: ServerStats
    ledgers: int
    active_peers: int
    wants: int
    blocks_received: int
    bytes_received: int
    unwanted_blocks: int
    bad_blocks: int
    bad_messages: int
    ignored_messages: int
    dont_haves: int
    timeouts: int
    wants_failed: int
    want_send_failures: int


@dataclass(eq=False, slots=True)
class _Want(Generic[P]):
    tag: int
    cid: Cid
    peers: tuple[P, ...]
    attempt: int = -1
    current: P | None = None
    deadline: float = 0.0
    #: Peers that may still hold our want (asked, no DONT_HAVE): they get the cancel.
    asked: set[P] = field(default_factory=set)
    refused: set[P] = field(default_factory=set)
    silent: set[P] = field(default_factory=set)


class BitswapEngine(Generic[P]):
    def __init__(self, limits: EngineLimits | None = None) -> None:
        self.limits = limits or EngineLimits()
        self._ledgers: Ledgers[P] = Ledgers(self.limits)
        self._scores: dict[P, int] = {}
        #: Client wants by multihash (a CIDv0 and a CIDv1 of one block match the same data).
        self._wants: dict[bytes, list[_Want[P]]] = {}
        self._by_tag: dict[tuple[int, bytes], _Want[P]] = {}
        self._timers: list[tuple[float, int, _Want[P], int]] = []
        self._seq = itertools.count()
        #: Want-list entries waiting to go out, per peer; the newest entry for a CID wins.
        self._outbox: dict[P, dict[bytes, WantEntry]] = {}
        self._events: collections.deque[BlockReceived[P] | WantFailed] = collections.deque()
        self._n = collections.Counter[str]()

    # -- scores ------------------------------------------------------------------------------
    def score(self, peer: P) -> int:
        return self._scores.get(peer, 0)

    def is_ignored(self, peer: P) -> bool:
        return self._scores.get(peer, 0) < MIN_SCORE

    def _adjust(self, peer: P, delta: int, now: float) -> None:
        before = self._scores.get(peer, 0)
        if peer not in self._scores and len(self._scores) >= self.limits.max_scored_peers:
            forgettable = next((p for p, s in self._scores.items() if s >= 0), None)
            if forgettable is None:
                return  # every remembered peer is bad: keep them rather than the newcomer
            del self._scores[forgettable]
        self._scores[peer] = min(MAX_SCORE, before + delta)
        if before >= MIN_SCORE > self._scores[peer]:
            self._ledgers.drop_peer(peer)
            self._outbox.pop(peer, None)
            for wants in list(self._wants.values()):
                for want in list(wants):
                    if want.current == peer:
                        want.silent.add(peer)
                        self._rotate(want, now)

    # -- input -------------------------------------------------------------------------------
    def receive_message(self, peer: P, msg: Message, now: float) -> None:
        if self.is_ignored(peer):
            self._n["ignored_messages"] += 1
            return
        for payload in msg.blocks:
            self._receive_block(peer, payload.prefix, payload.data, now)
            if self.is_ignored(peer):
                return
        for presence in msg.presences:
            if presence.type == PresenceType.DONT_HAVE:
                self._receive_dont_have(peer, presence.cid, now)
        if msg.wantlist or msg.full:
            self._ledgers.receive_wantlist(peer, msg)

    def receive_bad_message(self, peer: P, now: float) -> None:
        """The peer sent bytes that do not decode as a Bitswap message."""
        self._n["bad_messages"] += 1
        self._adjust(peer, -BAD_MESSAGE_PENALTY, now)

    def block_ready(self, peer: P, cid: Cid, data: bytes | None, now: float) -> None:
        """Answer a `Lookup`: the block's data, or None if it is not held or not servable."""
        self._ledgers.answer(peer, cid, data)

    def message_sent(self, peer: P, msg: Message, now: float, ok: bool = True) -> None:
        """A message from `messages_to_send` went out (`ok`) or could not be sent."""
        if self._ledgers.reply_sent(peer, msg, ok) or ok:
            return
        self._n["want_send_failures"] += 1
        for entry in msg.wantlist:
            if entry.cancel:
                continue
            for want in list(self._wants.get(entry.cid.multihash, ())):
                if want.current == peer:
                    want.asked.discard(peer)
                    want.silent.add(peer)
                    self._rotate(want, now)

    def want(self, cid: Cid, peers: Sequence[P], now: float, *, tag: int = 0) -> None:
        """Ask `peers`, one at a time in this order, for `cid`; ends in `BlockReceived` or
        `WantFailed` with the same `tag`. Wanting what is already wanted under `tag` is a no-op."""
        key = (tag, cid.to_bytes())
        if key in self._by_tag:
            return
        if not peers:
            raise LocalError("a bitswap want needs at least one peer")
        if len(self._by_tag) >= self.limits.max_wants:
            raise TooManyWants(f"more than {self.limits.max_wants} bitswap wants at once")
        want: _Want[P] = _Want(tag, cid, tuple(dict.fromkeys(peers)))
        self._by_tag[key] = want
        self._wants.setdefault(cid.multihash, []).append(want)
        self._rotate(want, now)

    def cancel(self, cid: Cid, now: float, *, tag: int = 0) -> None:
        """Stop wanting `cid` under `tag` (no event follows); the peers asked get a cancel."""
        want = self._by_tag.get((tag, cid.to_bytes()))
        if want is not None:
            self._finish(want)

    def handle_timer(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, want, attempt = heapq.heappop(self._timers)
            if want.attempt != attempt or self._by_tag.get(self._key(want)) is not want:
                continue  # answered, moved on or cancelled since
            self._n["timeouts"] += 1
            assert want.current is not None
            want.silent.add(want.current)
            self._rotate(want, now)

    # -- output ------------------------------------------------------------------------------
    def messages_to_send(self, now: float) -> list[tuple[P, Message]]:
        out: list[tuple[P, Message]] = []
        while (reply := self._ledgers.next_reply()) is not None:
            out.append(reply)
        outbox, self._outbox = self._outbox, {}
        for peer, entries in outbox.items():
            items = list(entries.values())
            for i in range(0, len(items), MAX_WANTLIST_ENTRIES):
                out.append((peer, Message(wantlist=tuple(items[i : i + MAX_WANTLIST_ENTRIES]))))
        return out

    def next_event(self) -> Event[P] | None:
        lookup = self._ledgers.next_lookup()
        if lookup is not None:
            return lookup
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        while self._timers:
            deadline, _, want, attempt = self._timers[0]
            if want.attempt == attempt and self._by_tag.get(self._key(want)) is want:
                return deadline
            heapq.heappop(self._timers)  # stale
        return None

    def statistics(self) -> EngineStats:
        n = self._n
        return EngineStats(
            server=self._ledgers.stats,
            ledgers=self._ledgers.peers,
            active_peers=self._ledgers.active,
            wants=len(self._by_tag),
            blocks_received=n["blocks_received"],
            bytes_received=n["bytes_received"],
            unwanted_blocks=n["unwanted_blocks"],
            bad_blocks=n["bad_blocks"],
            bad_messages=n["bad_messages"],
            ignored_messages=n["ignored_messages"],
            dont_haves=n["dont_haves"],
            timeouts=n["timeouts"],
            wants_failed=n["wants_failed"],
            want_send_failures=n["want_send_failures"],
        )

    def wants_of(self, peer: P) -> list[Cid]:
        """What `peer` wants from us (its ledger, in order; for tests and status)."""
        return self._ledgers.wants_of(peer)

    # -- internals ---------------------------------------------------------------------------
    @staticmethod
    def _key(want: _Want[P]) -> tuple[int, bytes]:
        return (want.tag, want.cid.to_bytes())

    def _receive_block(self, peer: P, prefix: bytes, data: bytes, now: float) -> None:
        try:
            if len(data) > MAX_BLOCK_SIZE:
                raise RemoteError("block too large")
            cid = cid_for_block(prefix, data)
        except RemoteError:
            self._n["bad_blocks"] += 1
            self._adjust(peer, -BAD_BLOCK_PENALTY, now)
            return
        wants = self._wants.get(cid.multihash)
        if not wants:
            # Unsolicited, a late duplicate, or data that hashes to nothing we asked for.
            self._n["unwanted_blocks"] += 1
            self._adjust(peer, -UNWANTED_BLOCK_PENALTY, now)
            return
        self._n["blocks_received"] += 1
        self._n["bytes_received"] += len(data)
        for want in list(wants):
            want.asked.discard(peer)
            self._finish(want)
            self._events.append(BlockReceived(want.tag, want.cid, data, peer))
        self._adjust(peer, +1, now)

    def _receive_dont_have(self, peer: P, cid: Cid, now: float) -> None:
        for want in list(self._wants.get(cid.multihash, ())):
            if want.current == peer:
                self._n["dont_haves"] += 1
                want.asked.discard(peer)
                want.refused.add(peer)
                self._rotate(want, now)

    def _rotate(self, want: _Want[P], now: float) -> None:
        """Ask the next peer that may have the block, or fail the want."""
        n = len(want.peers)
        while True:
            want.attempt += 1
            if want.attempt >= n * self.limits.want_rounds:
                self._fail(want)
                return
            peer = want.peers[want.attempt % n]
            if peer not in want.refused and not self.is_ignored(peer):
                break
        want.current = peer
        want.asked.add(peer)
        want.deadline = now + self.limits.want_timeout_s
        heapq.heappush(self._timers, (want.deadline, next(self._seq), want, want.attempt))
        self._outbox.setdefault(peer, {})[want.cid.to_bytes()] = WantEntry(
            want.cid, send_dont_have=True
        )

    def _fail(self, want: _Want[P]) -> None:
        self._n["wants_failed"] += 1
        refused = len(want.refused)
        silent = len(want.silent - want.refused)
        reason = f"{refused} peer(s) answered DONT_HAVE, {silent} did not deliver it"
        self._finish(want)
        self._events.append(WantFailed(want.tag, want.cid, reason))

    def _finish(self, want: _Want[P]) -> None:
        """Forget `want` and cancel it at every peer that may still hold it."""
        self._by_tag.pop(self._key(want), None)
        wants = self._wants.get(want.cid.multihash)
        if wants is not None:
            wants[:] = [w for w in wants if w is not want]
            if not wants:
                del self._wants[want.cid.multihash]
        want.attempt = -2  # invalidates its timers
        for peer in want.asked:
            if not self.is_ignored(peer):
                self._outbox.setdefault(peer, {})[want.cid.to_bytes()] = WantEntry(
                    want.cid, cancel=True
                )
        want.asked.clear()


__all__ = [
    "MAX_SCORE",
    "MIN_SCORE",
    "BitswapEngine",
    "BlockReceived",
    "EngineLimits",
    "EngineStats",
    "Event",
    "Lookup",
    "TooManyWants",
    "WantFailed",
]
