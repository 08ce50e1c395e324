"""Single-use sign-in nonces with a time to live (sans-IO: the clock is passed in)."""

from __future__ import annotations

import secrets
import string
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from fluxnode.core.errors import SiweError, SiweUsageError
from fluxnode.core.siwe.grammar import require_aware

_refused = SiweError.refused  # 401: well-formed, but refused

_NONCE_ALPHABET = string.ascii_letters + string.digits


def check_nonce_settings(ttl: timedelta, max_outstanding: int) -> None:
    """The bounds every nonce book (in memory or on disk) is built with."""
    if ttl <= timedelta(0):
        raise SiweUsageError(f"nonce ttl must be positive: {ttl}")
    if max_outstanding < 1:
        raise SiweUsageError(f"max_outstanding must be at least 1: {max_outstanding}")


def new_nonce(length: int = 22) -> str:
    """A fresh random nonce of letters and digits (22 of them: ~131 bits)."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class NonceStats:
    outstanding: int
    #: Spent nonces still remembered (to tell a replay from an unknown nonce).
    remembered_spent: int
    issued: int
    consumed: int
    expired: int
    evicted: int
    rejected_unknown: int
    rejected_reused: int


class NonceBook:
    """Single-use sign-in nonces with a time to live and a cap on how many are outstanding.

    `issue` hands out a fresh random nonce (22 letters/digits, ~131 bits); `consume` accepts
    each one once before it expires. When `max_outstanding` nonces are waiting, issuing another
    evicts the oldest. Spent nonces are remembered until they would have expired (same cap) so
    a replay is reported as "nonce_reused" rather than "nonce_invalid".
    """

    NONCE_LENGTH = 22

    def __init__(self, *, ttl: timedelta = timedelta(minutes=10), max_outstanding: int = 10_000):
        check_nonce_settings(ttl, max_outstanding)
        self.ttl = ttl
        self.max_outstanding = max_outstanding
        self._outstanding: OrderedDict[str, datetime] = OrderedDict()  # nonce -> expiry
        self._spent: OrderedDict[str, datetime] = OrderedDict()
        self._issued = self._consumed = self._expired = self._evicted = 0
        self._rejected_unknown = self._rejected_reused = 0

    def issue(self, now: datetime) -> str:
        require_aware(now, "now")
        self._prune(now)
        while len(self._outstanding) >= self.max_outstanding:
            self._outstanding.popitem(last=False)
            self._evicted += 1
        while True:
            nonce = new_nonce(self.NONCE_LENGTH)
            if nonce not in self._outstanding and nonce not in self._spent:
                break
        self._outstanding[nonce] = now + self.ttl
        self._issued += 1
        return nonce

    def check(self, nonce: str, now: datetime) -> None:
        """Raise like `consume` would, but spend nothing."""
        require_aware(now, "now")
        expiry = self._outstanding.get(nonce)
        if expiry is not None and now < expiry:
            return
        if nonce in self._spent:
            raise _refused("nonce_reused", "this nonce was already used to sign in")
        if expiry is not None:
            raise _refused("nonce_invalid", "nonce expired: ask for a new one")
        raise _refused("nonce_invalid", "unknown nonce: ask for a new one")

    def consume(self, nonce: str, now: datetime) -> None:
        """Spend `nonce`; SiweError "nonce_invalid" (unknown or expired) or "nonce_reused"."""
        require_aware(now, "now")
        self._prune(now)
        expiry = self._outstanding.pop(nonce, None)
        if expiry is None:
            if nonce in self._spent:
                self._rejected_reused += 1
                raise _refused("nonce_reused", "this nonce was already used to sign in")
            self._rejected_unknown += 1
            raise _refused("nonce_invalid", "unknown or expired nonce: ask for a new one")
        if now >= expiry:  # out-of-order clock: _prune only looks at the oldest entries
            self._expired += 1
            self._rejected_unknown += 1
            raise _refused("nonce_invalid", "nonce expired: ask for a new one")
        self._consumed += 1
        self._spent[nonce] = expiry
        while len(self._spent) > self.max_outstanding:
            self._spent.popitem(last=False)

    def _prune(self, now: datetime) -> None:
        for book, counts in ((self._outstanding, True), (self._spent, False)):
            while book:
                oldest, expiry = next(iter(book.items()))
                if expiry > now:
                    break
                del book[oldest]
                if counts:
                    self._expired += 1

    def __len__(self) -> int:
        return len(self._outstanding)

    def statistics(self) -> NonceStats:
        return NonceStats(
            outstanding=len(self._outstanding),
            remembered_spent=len(self._spent),
            issued=self._issued,
            consumed=self._consumed,
            expired=self._expired,
            evicted=self._evicted,
            rejected_unknown=self._rejected_unknown,
            rejected_reused=self._rejected_reused,
        )
