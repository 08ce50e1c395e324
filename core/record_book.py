"""`RecordBook`: the sans-IO store of the best signed world record per world.

The highest valid `seq` wins (like IPNS); a record must be fresh (see `check_freshness` in
`fluxnode.core.world_record`) and, for personal worlds, signed by the owner its id names. The
book is bounded: when full, the world whose record was issued longest ago is evicted.
"""

from __future__ import annotations

import enum
import heapq
from dataclasses import dataclass, field

from fluxnode.core.access import WorldRef
from fluxnode.core.errors import BadRequest, ConfigError, RecordInvalid
from fluxnode.core.world_record import (
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_FUTURE_SKEW,
    WorldRecord,
    check_freshness,
    check_owner_matches_id,
)

__all__ = ["Outcome", "RecordBook", "RecordBookStats", "Verdict"]


# -- the book -----------------------------------------------------------------------------------


class Outcome(enum.Enum):
    ACCEPT = "accept"  # stored (new world or higher seq): relay it
    DUPLICATE = "duplicate"  # the same payload is already stored
    STALE = "stale"  # a higher seq is stored
    CONFLICT = "conflict"  # same seq, different payload: the stored one is kept
    REJECT = "reject"  # invalid; `reason` says why


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str = ""
    #: On ACCEPT: the record of the same world it replaced, if any.
    previous: WorldRecord | None = None
    #: On ACCEPT: another world's record evicted to make room, if any. A caller that mirrors
    #: the book in storage deletes it there too, so the stored set stays as bounded as the book.
    evicted: WorldRecord | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPT


@dataclass
class RecordBookStats:
    worlds: int = 0
    accepted: int = 0
    duplicate: int = 0
    stale: int = 0
    conflict: int = 0
    evicted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


class RecordBook:
    """The best record per world (keyed by canonical world id), sans-IO.

    `offer` applies the rules that need no I/O — the edge must already have checked that the
    signature recovers to `owner` and, for land worlds, that `owner` may act for the land at a
    confirmed block (`verified_owner=True`); then the personal-world owner rule, freshness and
    seq ordering. At most `max_worlds` worlds are kept; when full, the record with the oldest
    `issued_at` is evicted to make room, and a new world whose record is older than every stored
    one is refused (reason ``book_full``). Bad input changes no state.
    """

    def __init__(
        self,
        *,
        max_worlds: int = 100_000,
        max_future_skew: int = DEFAULT_MAX_FUTURE_SKEW,
        max_age: int = DEFAULT_MAX_AGE,
    ) -> None:
        for name, value in (
            ("max_worlds", max_worlds),
            ("max_future_skew", max_future_skew),
            ("max_age", max_age),
        ):
            if type(value) is not int or value < (1 if name != "max_future_skew" else 0):
                raise ConfigError(name, f"must be a positive integer, not {value!r}")
        self.max_worlds = max_worlds
        self.max_future_skew = max_future_skew
        self.max_age = max_age
        self._records: dict[str, WorldRecord] = {}
        #: (issued_at, world_id, seq) of every stored record, plus superseded entries that are
        #: skipped lazily when they reach the top.
        self._heap: list[tuple[int, str, int]] = []
        self._stats = RecordBookStats()

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, world_id: object) -> bool:
        return world_id in self._records

    def get(self, world_id: str) -> WorldRecord | None:
        """The stored record for `world_id` (any spelling of a personal id's address)."""
        try:
            key = WorldRef.parse(world_id).canonical_id
        except BadRequest:
            return None
        return self._records.get(key)

    def records(self) -> list[WorldRecord]:
        return list(self._records.values())

    def _reject(self, reason: str) -> Verdict:
        self._stats.rejected[reason] = self._stats.rejected.get(reason, 0) + 1
        return Verdict(Outcome.REJECT, reason)

    def offer(self, record: WorldRecord, now: int, *, verified_owner: bool) -> Verdict:
        if not isinstance(record, WorldRecord):
            raise TypeError(f"offer wants a WorldRecord, not {type(record).__name__}")
        if not verified_owner:
            return self._reject("unverified")
        try:
            check_owner_matches_id(record)
            check_freshness(record, now, max_future_skew=self.max_future_skew, max_age=self.max_age)
        except RecordInvalid as exc:
            return self._reject(exc.reason)
        key = record.world_id
        current = self._records.get(key)
        if current is not None:
            if record.seq < current.seq:
                self._stats.stale += 1
                return Verdict(Outcome.STALE, f"seq {record.seq} < stored {current.seq}")
            if record.seq == current.seq:
                if record.unsigned() == current.unsigned():
                    self._stats.duplicate += 1
                    return Verdict(Outcome.DUPLICATE)
                self._stats.conflict += 1
                return Verdict(Outcome.CONFLICT, f"another record with seq {record.seq}")
        evicted = None
        if current is None and len(self._records) >= self.max_worlds:
            oldest = self._oldest()
            if oldest is not None and record.issued_at <= oldest.issued_at:
                return self._reject("book_full")
            evicted = self._evict_oldest()
        self._put(record)
        self._stats.accepted += 1
        return Verdict(Outcome.ACCEPT, previous=current, evicted=evicted)

    def withdraw(self, verdict: Verdict, record: WorldRecord) -> bool:
        """Undo the ACCEPT `verdict` gave `record` (its storage failed): the record it replaced
        and the one it evicted come back. Does nothing, and returns False, if `record` is no
        longer the stored one (a later offer superseded it)."""
        if not verdict.accepted or self._records.get(record.world_id) is not record:
            return False
        del self._records[record.world_id]
        if verdict.previous is not None:
            self._put(verdict.previous)
        evicted = verdict.evicted
        if (
            evicted is not None
            and evicted.world_id not in self._records
            and len(self._records) < self.max_worlds
        ):
            self._put(evicted)
            self._stats.evicted -= 1
        self._stats.accepted -= 1
        return True

    def _put(self, record: WorldRecord) -> None:
        self._records[record.world_id] = record
        heapq.heappush(self._heap, (record.issued_at, record.world_id, record.seq))
        self._compact()

    def prune(self, now: int) -> int:
        """Drop records older than `max_age`; returns how many."""
        dropped = 0
        while (oldest := self._oldest()) is not None and oldest.issued_at < now - self.max_age:
            del self._records[oldest.world_id]
            heapq.heappop(self._heap)
            dropped += 1
        return dropped

    def _oldest(self) -> WorldRecord | None:
        while self._heap:
            issued_at, key, seq = self._heap[0]
            current = self._records.get(key)
            if current is not None and current.seq == seq and current.issued_at == issued_at:
                return current
            heapq.heappop(self._heap)  # superseded or removed
        return None

    def _evict_oldest(self) -> WorldRecord | None:
        oldest = self._oldest()
        if oldest is not None:
            del self._records[oldest.world_id]
            heapq.heappop(self._heap)
            self._stats.evicted += 1
        return oldest

    def _compact(self) -> None:
        """Keep the lazy heap from growing without bound under many updates to few worlds."""
        if len(self._heap) > 2 * len(self._records) + 64:
            self._heap = [(r.issued_at, k, r.seq) for k, r in self._records.items()]
            heapq.heapify(self._heap)

    def statistics(self) -> RecordBookStats:
        s = self._stats
        return RecordBookStats(
            worlds=len(self._records),
            accepted=s.accepted,
            duplicate=s.duplicate,
            stale=s.stale,
            conflict=s.conflict,
            evicted=s.evicted,
            rejected=dict(s.rejected),
        )
