"""The world directory on disk: every accepted world record in SQLite (WAL) under the data dir.

Without it a restart forgets every record, even the node's own publications, and then accepts
an older `seq` of a world it had — a rollback. `WorldDirectory` writes each record it accepts
here *before* it relays or acknowledges it, and loads (and re-checks) the stored ones at start.

One row per world: the best record, as its canonical wire bytes. An upsert only replaces a row
with a higher `seq`, so writes that land out of order can never roll a world back on disk. The
rows mirror the in-memory `RecordBook`: a record the book evicts is deleted here as well, so the
file is as bounded as the book.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fluxnode.core.world_record import WorldRecord
from fluxnode.node.statefile import SqliteFile

WORLDS_DB = "worlds.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    world_id  TEXT PRIMARY KEY,
    seq       INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    wire      BLOB NOT NULL
);
"""


def _load(db: sqlite3.Connection) -> list[tuple[str, bytes]]:
    rows = db.execute("SELECT world_id, wire FROM records ORDER BY issued_at, world_id")
    return [(str(world_id), bytes(wire)) for world_id, wire in rows]


def _save(db: sqlite3.Connection, record: WorldRecord, evicted: WorldRecord | None) -> None:
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


def _delete(db: sqlite3.Connection, world_ids: list[str]) -> None:
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("DELETE FROM records WHERE world_id = ?", [(w,) for w in world_ids])


class WorldStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = SqliteFile(path, _SCHEMA)
        self.writes = 0

    async def load(self) -> list[tuple[str, bytes]]:
        """(world id, wire bytes) of every stored record, oldest `issued_at` first."""
        return await self._file.run(_load, "read")

    async def save(self, record: WorldRecord, *, evicted: WorldRecord | None = None) -> None:
        """Store `record` durably (unless a higher seq of its world is stored) and delete the
        record `evicted` to make room for it, in one transaction."""
        await self._file.run(lambda db: _save(db, record, evicted), "write")
        self.writes += 1

    async def delete(self, world_ids: list[str]) -> None:
        if world_ids:
            await self._file.run(lambda db: _delete(db, world_ids), "write")

    async def aclose(self) -> None:
        await self._file.aclose()
