"""What each member node may send us, and shunning a node that keeps sending more.

Every frame a member node sends costs tokens from a budget of its own, per instance (so one
node's flood never spends another's budget, and a node in many instances gets a budget in
each):

==========  ===================================================  ==============================
budget      frames (cost)                                        rate, burst
==========  ===================================================  ==============================
batch       Batch (1)                                            2 x tick rate, 2 x tick rate
ops         InstanceOps (ops), ChatMessage (1), StateSync        5 x capacity per s,
            (ops + chat lines)                                   a full sync + 10 x capacity
seat        seat messages, MemberJoin, VisitorOut (1)            capacity / 2 + 5 per s,
                                                                 4 x capacity + 20
visitor_in  VisitorIn (1)                                        capacity per minute, capacity
signal      SignalRelay, Silence (1)                             20 x capacity per s,
                                                                 40 x capacity
stray       any frame for an instance we do not hold (1)         20 per s, 100
==========  ===================================================  ==============================

A frame over budget is refused and adds a point to the node's *score*, which decays by
`SCORE_DECAY` points a second. A node whose score reaches `SHUN_AT` (it kept exceeding for a
while, not one burst) is *shunned* for `SHUN_FOR` seconds: the hub ignores its frames, drops
its visitors from our rooms as if it had crashed, leaves it out of placement and sends it
nothing. Afterwards it starts again from a score of 0, as a stranger.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Final

from fluxnode.core.session.chat import HISTORY
from fluxnode.core.session.ratelimit import TokenBucket
from fluxnode.core.session.wire import MAX_OPS

SCORE_DECAY: Final = 1.0  # points a second
SHUN_AT: Final = 50.0
SHUN_FOR: Final = 60.0
MAX_BUCKETS: Final = 1 << 16
MAX_PEERS: Final = 4096
STRAY: Final = ""  # the instance key of frames for instances we do not hold


@dataclass
class PeerRecord:
    score: float = 0.0
    at: float = -math.inf
    refused: int = 0  # frames over budget
    ignored: int = 0  # frames while shunned
    shunned_until: float = -math.inf
    times_shunned: int = 0

    def decayed(self, now: float) -> float:
        if now <= self.at:
            return self.score
        return max(0.0, self.score - (now - self.at) * SCORE_DECAY)


class PeerGuard:
    """Budgets and scores of member nodes (sans-IO; `now` in seconds)."""

    def __init__(self, tick_hz: float) -> None:
        self.tick_hz = tick_hz
        self.latest = -math.inf  # the newest time seen, for outputs that take no `now`
        self.new_shuns: list[str] = []  # shunned since the hub last looked
        self._peers: collections.OrderedDict[str, PeerRecord] = collections.OrderedDict()
        self._buckets: collections.OrderedDict[tuple[str, str, str], TokenBucket] = (
            collections.OrderedDict()
        )

    def budget(self, kind: str, capacity: int) -> tuple[float, float]:
        """(rate per second, burst) of budget `kind` in an instance of `capacity` seats."""
        if kind == "batch":
            return 2 * self.tick_hz, max(2.0, 2 * self.tick_hz)
        if kind == "ops":
            return 5.0 * capacity, float(MAX_OPS + HISTORY + 10 * capacity)
        if kind == "seat":
            return capacity / 2 + 5, 4.0 * capacity + 20
        if kind == "visitor_in":
            return capacity / 60, float(max(1, capacity))
        if kind == "signal":  # each visitor there may signal 20 times a second, 40 at once
            return 20.0 * max(1, capacity), 40.0 * max(1, capacity)
        return 20.0, 100.0

    def _bucket(self, peer: str, kind: str, instance: str, capacity: int,
                now: float) -> TokenBucket:  # fmt: skip
        key = (peer, kind, instance)
        bucket = self._buckets.get(key)
        if bucket is None:
            rate, burst = self.budget(kind, capacity)
            bucket = self._buckets[key] = TokenBucket(rate, burst, now)
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        return bucket

    def _record(self, peer: str) -> PeerRecord:
        record = self._peers.get(peer)
        if record is None:
            record = self._peers[peer] = PeerRecord()
            while len(self._peers) > MAX_PEERS:
                self._peers.popitem(last=False)
        self._peers.move_to_end(peer)
        return record

    def see(self, now: float) -> None:
        self.latest = max(self.latest, now)

    def is_shunned(self, peer: str, now: float) -> bool:
        record = self._peers.get(peer)
        return record is not None and record.shunned_until > now

    def shunned(self, now: float) -> set[str]:
        return {p for p, r in self._peers.items() if r.shunned_until > now}

    def ignore(self, peer: str, now: float) -> bool:
        """True (and counted) when `peer` is shunned: drop its frame unread."""
        self.see(now)
        if not self.is_shunned(peer, now):
            return False
        self._record(peer).ignored += 1
        return True

    def allows(self, peer: str, kind: str, instance: str, capacity: int, now: float,
               cost: float = 1.0) -> bool:  # fmt: skip
        """Would `charge` take this frame? (Nothing is spent.)"""
        if self.is_shunned(peer, now):
            return False
        if cost > self.budget(kind, capacity)[1]:
            return False
        return self._bucket(peer, kind, instance, capacity, now).retry_after(now, cost) == 0

    def charge(self, peer: str, kind: str, instance: str, capacity: int, now: float,
               cost: float = 1.0) -> bool:  # fmt: skip
        """Spend `cost` of `peer`'s budget; False (refused, scored) when it is over."""
        self.see(now)
        if self._bucket(peer, kind, instance, capacity, now).allow(now, cost):
            return True
        record = self._record(peer)
        record.refused += 1
        record.score, record.at = record.decayed(now) + 1.0, max(now, record.at)
        if record.score >= SHUN_AT and record.shunned_until <= now:
            record.shunned_until = now + SHUN_FOR
            record.score = 0.0
            record.times_shunned += 1
            self.new_shuns.append(peer)
        return False

    def forget_instance(self, instance: str) -> None:
        """We (re)open `instance` and ask its members for their visitors and seats again: the
        replays we asked for must not find the budgets spent by an earlier stay."""
        for key in [k for k in self._buckets if k[2] == instance]:
            del self._buckets[key]

    def statistics(self) -> dict[str, dict[str, object]]:
        now = self.latest
        return {
            peer: {
                "score": round(r.decayed(now), 2),
                "refused": r.refused,
                "ignored": r.ignored,
                "shunned": r.shunned_until > now,
                "times_shunned": r.times_shunned,
            }
            for peer, r in self._peers.items()
        }
