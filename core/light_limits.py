"""Bounded in-memory tables for the light-client API, with injected time (sans-IO).

- `RateTable`: one token bucket per key (an IP, an address); the table holds at most
  `max_keys` buckets and forgets the least recently used one first, so a flood of new keys
  costs bounded memory (a forgotten key starts again with a full bucket, which is at most one
  burst more for someone who can cycle that many keys anyway).
- `ExpiringTable`: values with an expiry (pending sign-in challenges, session tokens). Expired
  entries are never returned; when full, expired ones go first, then the oldest.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

from fluxnode.core.session.ratelimit import TokenBucket

__all__ = ["ExpiringTable", "RateTable"]

V = TypeVar("V")


class RateTable:
    def __init__(self, rate: float, burst: float, max_keys: int = 10_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        TokenBucket(rate, burst, 0.0)  # checks rate and burst once, here
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self.refused = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, key: str, now: float, cost: float = 1.0) -> float | None:
        """None if `key` may go on (a token is taken), else the seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        if bucket.allow(now, cost):
            return None
        self.refused += 1
        return bucket.retry_after(now, cost)


class ExpiringTable(Generic[V]):
    def __init__(self, max_items: int) -> None:
        if max_items < 1:
            raise ValueError("max_items must be >= 1")
        self.max_items = max_items
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, key: str, value: V, expires_at: float, now: float) -> None:
        self._items.pop(key, None)
        if len(self._items) >= self.max_items:
            self.expire(now)
        while len(self._items) >= self.max_items:
            self._items.popitem(last=False)
            self.evicted += 1
        self._items[key] = (expires_at, value)

    def get(self, key: str, now: float) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= now:
            del self._items[key]
            return None
        return item[1]

    def pop(self, key: str, now: float) -> V | None:
        """Take `key` out (one use), or None if it is unknown or expired."""
        item = self._items.pop(key, None)
        if item is None or item[0] <= now:
            return None
        return item[1]

    def expire(self, now: float) -> int:
        gone = [k for k, (at, _) in self._items.items() if at <= now]
        for k in gone:
            del self._items[k]
        return len(gone)
