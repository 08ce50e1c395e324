"""Sign-in nonces in SQLite (WAL): the `NonceBook` interface, kept across restarts.

`fluxnode.core.siwe.NonceBook` keeps nonces in memory, so a restart forgets every nonce a
client is about to sign in with. `SqliteNonceBook` keeps both the outstanding nonces and the
spent ones (until they would have expired) in a file, so a sign-in in flight survives a restart
and a spent nonce stays spent: a restart cannot re-accept it. The file is the truth, and
`consume` spends a nonce in one `BEGIN IMMEDIATE` transaction, so two submissions of one signed
message cannot both pass, even through two handles (or two processes) on the same file.

Same rules and bounds as `NonceBook`: a time to live, at most `max_outstanding` nonces waiting
(issuing another evicts the oldest) and as many spent ones remembered.

The interface is synchronous like `NonceBook`'s; each call is one short local transaction
(`synchronous=FULL`, so a spent nonce is on disk before `consume` returns). An asyncio caller
that cannot afford that on its loop runs the call in a thread: the handle is thread-safe.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path

from fluxnode.core.errors import StateStoreError
from fluxnode.core.siwe import NonceBook, NonceStats, SiweError
from fluxnode.core.siwe.grammar import require_aware
from fluxnode.core.siwe.nonces import check_nonce_settings, new_nonce

__all__ = ["SqliteNonceBook"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    nonce  TEXT PRIMARY KEY,
    expiry REAL NOT NULL,
    spent  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces (spent, expiry);
"""


def _aware(now: datetime) -> float:
    require_aware(now, "now")
    return now.timestamp()


class SqliteNonceBook:
    """Single-use sign-in nonces in a SQLite file; see the module docstring."""

    NONCE_LENGTH = NonceBook.NONCE_LENGTH

    def __init__(
        self,
        path: Path,
        *,
        ttl: timedelta = timedelta(minutes=10),
        max_outstanding: int = 10_000,
    ) -> None:
        check_nonce_settings(ttl, max_outstanding)
        self.path = path
        self.ttl = ttl
        self.max_outstanding = max_outstanding
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=10
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StateStoreError(f"cannot open the nonce store {path}: {exc}") from exc
        self._issued = self._consumed = self._expired = self._evicted = 0
        self._rejected_unknown = self._rejected_reused = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _prune(self, now: float) -> None:
        """Inside a transaction: forget what has expired, counting the unspent ones."""
        cur = self._db.execute("DELETE FROM nonces WHERE spent = 0 AND expiry <= ?", (now,))
        self._expired += max(cur.rowcount, 0)
        self._db.execute("DELETE FROM nonces WHERE spent = 1 AND expiry <= ?", (now,))

    def _cap(self, spent: int, keep: int) -> int:
        """Inside a transaction: keep the newest `keep` rows of one kind; returns how many
        older ones were dropped (rowid order is insertion order)."""
        cur = self._db.execute(
            "DELETE FROM nonces WHERE spent = ? AND rowid NOT IN "
            "(SELECT rowid FROM nonces WHERE spent = ? ORDER BY rowid DESC LIMIT ?)",
            (spent, spent, keep),
        )
        return max(cur.rowcount, 0)

    def issue(self, now: datetime) -> str:
        ts = _aware(now)
        expiry = (now + self.ttl).timestamp()
        with self._lock, self._transaction():
            self._prune(ts)
            self._evicted += self._cap(0, self.max_outstanding - 1)
            while True:
                nonce = new_nonce(self.NONCE_LENGTH)
                try:
                    self._db.execute("INSERT INTO nonces VALUES (?, ?, 0)", (nonce, expiry))
                    break
                except sqlite3.IntegrityError:
                    continue  # ~131 random bits: never in practice, but never reuse one
        self._issued += 1
        return nonce

    def check(self, nonce: str, now: datetime) -> None:
        """Raise like `consume` would, but spend nothing."""
        ts = _aware(now)
        with self._lock:
            row = self._read(nonce)
        if row is not None and not row[1] and ts < row[0]:
            return
        if row is not None and row[1]:
            raise SiweError.refused("nonce_reused", "this nonce was already used to sign in")
        if row is not None:
            raise SiweError.refused("nonce_invalid", "nonce expired: ask for a new one")
        raise SiweError.refused("nonce_invalid", "unknown nonce: ask for a new one")

    def consume(self, nonce: str, now: datetime) -> None:
        """Spend `nonce`; SiweError "nonce_invalid" (unknown or expired) or "nonce_reused"."""
        ts = _aware(now)
        with self._lock, self._transaction():
            self._prune(ts)
            row = self._read(nonce)
            if row is None:
                self._rejected_unknown += 1
                raise SiweError.refused(
                    "nonce_invalid", "unknown or expired nonce: ask for a new one"
                )
            expiry, spent = row
            if spent:
                self._rejected_reused += 1
                raise SiweError.refused("nonce_reused", "this nonce was already used to sign in")
            if ts >= expiry:  # a clock that went back: _prune saw it as not yet expired
                self._db.execute("DELETE FROM nonces WHERE nonce = ?", (nonce,))
                self._expired += 1
                self._rejected_unknown += 1
                raise SiweError.refused("nonce_invalid", "nonce expired: ask for a new one")
            # delete + insert: the spent row gets the newest rowid, so the cap drops the
            # nonces spent longest ago first
            self._db.execute("DELETE FROM nonces WHERE nonce = ?", (nonce,))
            self._db.execute("INSERT INTO nonces VALUES (?, ?, 1)", (nonce, expiry))
            self._cap(1, self.max_outstanding)
        self._consumed += 1

    def _read(self, nonce: str) -> tuple[float, bool] | None:
        try:
            row = self._db.execute(
                "SELECT expiry, spent FROM nonces WHERE nonce = ?", (str(nonce),)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StateStoreError(f"cannot read the nonce store {self.path}: {exc}") from exc
        return None if row is None else (float(row[0]), bool(row[1]))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self.path)

    def _count(self, spent: int) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM nonces WHERE spent = ?", (spent,))
            return int(row.fetchone()[0])

    def __len__(self) -> int:
        return self._count(0)

    def statistics(self) -> NonceStats:
        return NonceStats(
            outstanding=self._count(0),
            remembered_spent=self._count(1),
            issued=self._issued,
            consumed=self._consumed,
            expired=self._expired,
            evicted=self._evicted,
            rejected_unknown=self._rejected_unknown,
            rejected_reused=self._rejected_reused,
        )


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back when the body raises (a refusal changes nothing
    but what it must: an expired nonce is forgotten). SQLite errors become StateStoreError."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StateStoreError(f"cannot write the nonce store {self._path}: {exc}") from exc

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        try:
            if exc is None or isinstance(exc, SiweError):
                self._db.execute("COMMIT")  # a refusal keeps its pruning and counts
            else:
                self._db.execute("ROLLBACK")
        except sqlite3.Error as err:
            raise StateStoreError(f"cannot write the nonce store {self._path}: {err}") from err
        if isinstance(exc, sqlite3.Error):
            raise StateStoreError(f"cannot write the nonce store {self._path}: {exc}") from exc
