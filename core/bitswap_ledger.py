"""The serving half of the Bitswap engine: one ledger per peer, served round-robin. Sans-IO.

Each peer that sent a wantlist gets a ledger: its wants in arrival order, capped at
`max_wants_per_peer`, at most `max_peers` ledgers. Peers with pending wants wait in a
round-robin queue; a peer's *turn* builds ONE reply of at most `send_budget` bytes (a single
larger block still goes alone), and at most `max_active_peers` turns run at once. A turn ends
when its reply has been sent, and the peer goes to the back of the queue: a peer asking for a
thousand blocks gets one message, then a peer asking for one gets its block.

The ledger never reads blocks. A turn asks for the data of the wants at the head of the ledger
(`Lookup`), and the I/O layer answers with `answer(peer, cid, data | None)`. Lookups of a turn
run in parallel; how many are started is guessed from the sizes of the blocks served so far so
that a turn seldom asks for more data than its reply can carry (an answer that does not fit goes
back to the head of the ledger).
"""

from __future__ import annotations

import collections
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from fluxnode.core.bitswap_wire import (
    MAX_BLOCK_SIZE,
    MAX_MESSAGE_SIZE,
    MAX_PRESENCES,
    MAX_WANTLIST_ENTRIES,
    BlockPayload,
    Message,
    Presence,
    PresenceType,
    WantEntry,
    WantType,
    cid_prefix,
)
from fluxnode.core.cid import Cid
from fluxnode.core.errors import LocalError

P = TypeVar("P", bound=Hashable)

#: What a presence or a block's framing costs in a reply, roughly (CID + protobuf keys).
ENTRY_OVERHEAD = 48
#: Room kept below MAX_MESSAGE_SIZE for framing and presences when a budget is checked.
_MESSAGE_SLACK = 64 * 1024
#: First guess of a block's size (UnixFS chunks are 256 KiB) before any has been served.
_FIRST_SIZE_GUESS = 256 * 1024
#: A reply of `send_budget` bytes plus one largest block still fits in a message.
MAX_SEND_BUDGET = MAX_MESSAGE_SIZE - MAX_BLOCK_SIZE - _MESSAGE_SLACK


@dataclass(frozen=True)
class ServerLimits:
    max_peers: int = 256
    max_active_peers: int = 16
    max_wants_per_peer: int = MAX_WANTLIST_ENTRIES
    #: Bytes of block data per reply (a single larger block is sent alone).
    send_budget: int = 1024 * 1024
    #: Most lookups one turn runs at once.
    max_lookups_per_turn: int = 64

    def __post_init__(self) -> None:
        if min(self.max_peers, self.max_active_peers, self.max_wants_per_peer) < 1:
            raise LocalError("bitswap limits must be >= 1")
        if self.max_lookups_per_turn < 1:
            raise LocalError("bitswap max_lookups_per_turn must be >= 1")
        if not 1 <= self.send_budget <= MAX_SEND_BUDGET:
            raise LocalError(f"bitswap send_budget must be 1..{MAX_SEND_BUDGET}")


@dataclass(frozen=True, slots=True)
class Lookup(Generic[P]):
    """The I/O layer must answer `answer(peer, cid, data)`: the block if it may be served to
    `peer` and is held, else None."""

    peer: P
    cid: Cid


@dataclass(slots=True)
class _Turn:
    lookups: dict[bytes, WantEntry] = field(default_factory=dict)
    blocks: list[BlockPayload] = field(default_factory=list)
    presences: list[Presence] = field(default_factory=list)
    size: int = 0
    #: A block did not fit: the reply is complete once the lookups still running are answered.
    full: bool = False
    reply: Message | None = None


@dataclass(slots=True)
class _Ledger:
    wants: collections.OrderedDict[bytes, WantEntry] = field(
        default_factory=collections.OrderedDict
    )
    turn: _Turn | None = None
    queued: bool = False


@dataclass(slots=True)
class ServerStats:
    blocks_sent: int = 0
    bytes_sent: int = 0
    presences_sent: int = 0
    lookups: int = 0
    lookups_put_back: int = 0
    send_failures: int = 0
    refused_peers: int = 0
    wants_dropped: int = 0


class Ledgers(Generic[P]):
    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.stats = ServerStats()
        self._ledgers: dict[P, _Ledger] = {}
        self._ready: collections.deque[P] = collections.deque()
        self._active = 0
        self._size_guess = float(_FIRST_SIZE_GUESS)
        self._lookups: collections.deque[Lookup[P]] = collections.deque()
        self._replies: collections.deque[tuple[P, Message]] = collections.deque()

    # -- input -------------------------------------------------------------------------------
    def receive_wantlist(self, peer: P, msg: Message) -> None:
        ledger = self._ledgers.get(peer)
        if ledger is None:
            if not any(not e.cancel for e in msg.wantlist):
                return
            if len(self._ledgers) >= self.limits.max_peers:
                self.stats.refused_peers += 1
                return
            ledger = self._ledgers[peer] = _Ledger()
        turn = ledger.turn
        if msg.full:
            ledger.wants.clear()
            if turn is not None:
                keep = {e.cid.to_bytes() for e in msg.wantlist if not e.cancel}
                turn.lookups = {k: e for k, e in turn.lookups.items() if k in keep}
        for entry in msg.wantlist:
            key = entry.cid.to_bytes()
            if entry.cancel:
                ledger.wants.pop(key, None)
                if turn is not None:
                    turn.lookups.pop(key, None)
            elif turn is not None and key in turn.lookups:
                continue  # already being looked up for this very turn
            elif key in ledger.wants or len(ledger.wants) < self.limits.max_wants_per_peer:
                ledger.wants[key] = entry
            else:
                self.stats.wants_dropped += 1
        if turn is not None:
            self._advance(peer, ledger, turn)
        elif ledger.wants:
            self._enqueue(peer, ledger)
        else:
            del self._ledgers[peer]
        self._pump()

    def answer(self, peer: P, cid: Cid, data: bytes | None) -> None:
        """The data for a `Lookup` (None: not held or not to be served to this peer)."""
        ledger = self._ledgers.get(peer)
        turn = ledger.turn if ledger is not None else None
        if ledger is None or turn is None:
            return  # the peer's turn ended meanwhile (send failed, peer dropped)
        key = cid.to_bytes()
        entry = turn.lookups.pop(key, None)
        if entry is None:
            return  # cancelled while it was looked up
        if data is not None and len(data) > MAX_BLOCK_SIZE:
            data = None  # nobody would accept it
        if data is not None and entry.want_type == WantType.BLOCK:
            self._size_guess = 0.8 * self._size_guess + 0.2 * len(data)
            cost = len(data) + ENTRY_OVERHEAD
            if turn.full or (turn.blocks and turn.size + cost > self.limits.send_budget):
                ledger.wants[key] = entry
                ledger.wants.move_to_end(key, last=False)
                self.stats.lookups_put_back += 1
                turn.full = True
            else:
                turn.blocks.append(BlockPayload(cid_prefix(entry.cid), data))
                turn.size += cost
        elif data is not None:
            turn.presences.append(Presence(entry.cid, PresenceType.HAVE))
            turn.size += ENTRY_OVERHEAD
        elif entry.send_dont_have:
            turn.presences.append(Presence(entry.cid, PresenceType.DONT_HAVE))
            turn.size += ENTRY_OVERHEAD
        self._advance(peer, ledger, turn)
        self._pump()

    def reply_sent(self, peer: P, msg: Message, ok: bool) -> bool:
        """Record that a reply went out (or failed); False if `msg` was not our reply."""
        ledger = self._ledgers.get(peer)
        if ledger is None or ledger.turn is None or ledger.turn.reply is not msg:
            return False
        ledger.turn = None
        self._active -= 1
        if ok:
            self.stats.blocks_sent += len(msg.blocks)
            self.stats.bytes_sent += sum(len(b.data) for b in msg.blocks)
            self.stats.presences_sent += len(msg.presences)
        else:
            self.stats.send_failures += 1
            ledger.wants.clear()  # the peer re-sends its wantlist if it still wants
        self._end_turn(peer, ledger)
        self._pump()
        return True

    def drop_peer(self, peer: P) -> None:
        ledger = self._ledgers.pop(peer, None)
        if ledger is not None and ledger.turn is not None:
            self._active -= 1
            self._pump()

    # -- output ------------------------------------------------------------------------------
    def next_lookup(self) -> Lookup[P] | None:
        return self._lookups.popleft() if self._lookups else None

    def next_reply(self) -> tuple[P, Message] | None:
        return self._replies.popleft() if self._replies else None

    @property
    def peers(self) -> int:
        return len(self._ledgers)

    @property
    def active(self) -> int:
        return self._active

    def wants_of(self, peer: P) -> list[Cid]:
        ledger = self._ledgers.get(peer)
        return [] if ledger is None else [e.cid for e in ledger.wants.values()]

    # -- internals ---------------------------------------------------------------------------
    def _enqueue(self, peer: P, ledger: _Ledger) -> None:
        if ledger.wants and ledger.turn is None and not ledger.queued:
            ledger.queued = True
            self._ready.append(peer)

    def _pump(self) -> None:
        while self._active < self.limits.max_active_peers and self._ready:
            peer = self._ready.popleft()
            ledger = self._ledgers.get(peer)
            if ledger is None or ledger.turn is not None:
                continue
            ledger.queued = False
            if not ledger.wants:
                continue
            ledger.turn = _Turn()
            self._active += 1
            self._advance(peer, ledger, ledger.turn)

    def _advance(self, peer: P, ledger: _Ledger, turn: _Turn) -> None:
        """Start more lookups while the reply has room, or finish the turn."""
        if turn.reply is not None:
            return
        guess = max(1.0, self._size_guess) + ENTRY_OVERHEAD
        while (
            not turn.full
            and ledger.wants
            and len(turn.lookups) < self.limits.max_lookups_per_turn
            and len(turn.lookups) + len(turn.blocks) + len(turn.presences) < MAX_PRESENCES
            and (
                not (turn.lookups or turn.blocks)  # a turn always tries one
                or turn.size + (len(turn.lookups) + 1) * guess <= self.limits.send_budget
            )
        ):
            key, entry = ledger.wants.popitem(last=False)
            turn.lookups[key] = entry
            self.stats.lookups += 1
            self._lookups.append(Lookup(peer, entry.cid))
        if turn.lookups:
            return
        if turn.blocks or turn.presences:
            turn.reply = Message(blocks=tuple(turn.blocks), presences=tuple(turn.presences))
            self._replies.append((peer, turn.reply))
            return
        ledger.turn = None  # nothing to say (wants without sendDontHave we cannot serve)
        self._active -= 1
        self._end_turn(peer, ledger)

    def _end_turn(self, peer: P, ledger: _Ledger) -> None:
        if ledger.wants:
            self._enqueue(peer, ledger)  # to the back of the round-robin
        elif self._ledgers.get(peer) is ledger:
            del self._ledgers[peer]


__all__ = ["ENTRY_OVERHEAD", "Ledgers", "Lookup", "ServerLimits", "ServerStats"]
