"""The world directory on disk: every accepted world record in SQLite (WAL) under the data dir.

Without it a restart forgets every record, even the node's own publications, and then accepts
an older `seq` of a world it had — a rollback. `WorldDirectory` writes each record it accepts
here *before* it relays or acknowledges it, and loads (and re-checks) the stored ones at start.

One row per world: the best record, as its canonical wire bytes. An upsert only replaces a row
with a higher `seq`, so writes that land out of order can never roll a world back on disk. The
rows mirror the in-memory `RecordBook`: a record the book evicts is deleted here as well, so the
file is as bounded as the book.

All SQLite work runs on one worker thread that owns the connection (opened once): the event
loop never blocks on it, and writes apply in the order they were submitted.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from fluxnode.core.errors import StateStoreError
from fluxnode.core.world_record import WorldRecord

WORLDS_DB = "worlds.db"

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    world_id  TEXT PRIMARY KEY,
    seq       INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    wire      BLOB NOT NULL
)
"""


class WorldStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="worldstore")
        self._db: sqlite3.Connection | None = None
        self.writes = 0
        self.failures = 0

    # -- on the worker thread ---------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: an acknowledged record survives a power cut, not only a crash.
            db.execute("PRAGMA synchronous=FULL")
            db.execute(_SCHEMA)
            self._db = db
        return self._db

    def _load(self) -> list[tuple[str, bytes]]:
        rows = self._conn().execute(
            "SELECT world_id, wire FROM records ORDER BY issued_at, world_id"
        )
        return [(str(world_id), bytes(wire)) for world_id, wire in rows]

    def _save(self, record: WorldRecord, evicted: WorldRecord | None) -> None:
        db = self._conn()
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO records (world_id, seq, issued_at, wire) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(world_id) DO UPDATE SET seq = excluded.seq, "
                "issued_at = excluded.issued_at, wire = excluded.wire "
                "WHERE excluded.seq > records.seq",
                (record.world_id, record.seq, record.issued_at, record.to_wire()),
            )
            if evicted is not None:
                db.execute(
                    "DELETE FROM records WHERE world_id = ? AND seq = ?",
                    (evicted.world_id, evicted.seq),
                )

    def _delete(self, world_ids: list[str]) -> None:
        db = self._conn()
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("DELETE FROM records WHERE world_id = ?", [(w,) for w in world_ids])

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- asyncio-facing ---------------------------------------------------------------------
    async def _run(self, fn: Callable[[], _T], what: str) -> _T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        except sqlite3.Error as exc:
            self.failures += 1
            raise StateStoreError(f"cannot {what} {self.path}: {exc}") from exc

    async def load(self) -> list[tuple[str, bytes]]:
        """(world id, wire bytes) of every stored record, oldest `issued_at` first."""
        return await self._run(self._load, "read")

    async def save(self, record: WorldRecord, *, evicted: WorldRecord | None = None) -> None:
        """Store `record` durably (unless a higher seq of its world is stored) and delete the
        record `evicted` to make room for it, in one transaction."""
        await self._run(lambda: self._save(record, evicted), "write")
        self.writes += 1

    async def delete(self, world_ids: list[str]) -> None:
        if world_ids:
            await self._run(lambda: self._delete(world_ids), "write")

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close)
        self._pool.shutdown(wait=True)
