"""Pins in SQLite (WAL), and garbage collection.

A recursive pin is recorded only after the whole DAG has been walked (every block present and
verified) and the block store's directory entries fsync'd, so no pin ever points at a missing
block, whatever moment a crash hits. GC keeps every block reachable from a recursive pin and every
directly pinned block, and removes the rest under the store's exclusive lock.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from fluxnode.core.cid import Cid
from fluxnode.core.errors import BadRequest
from fluxnode.storage.blockstore import BlockStore
from fluxnode.storage.dag import reachable

RECURSIVE, DIRECT = "recursive", "direct"
MAX_PIN_NAME = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS pins (
    mh BLOB NOT NULL,
    cid TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('recursive', 'direct')),
    name TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (mh, mode)
);
-- Every block of every recursively pinned DAG, written in the same transaction as the pin:
-- answers "may the gateway serve this block?" and "may GC delete it?" without walking DAGs.
CREATE TABLE IF NOT EXISTS pin_blocks (
    pin_mh BLOB NOT NULL,
    block_mh BLOB NOT NULL,
    PRIMARY KEY (pin_mh, block_mh)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pin_blocks_by_block ON pin_blocks (block_mh);
"""


@dataclass(frozen=True)
class Pin:
    cid: str
    mode: str
    name: str | None
    created: float


@dataclass(frozen=True)
class GcResult:
    blocks_removed: int
    bytes_freed: int
    blocks_kept: int


class PinStore:
    def __init__(self, path: Path, store: BlockStore) -> None:
        self.path = path
        self.store = store
        with self._db() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            yield db

    def add(
        self,
        cid: Cid,
        *,
        recursive: bool = True,
        name: str | None = None,
        known_blocks: set[bytes] | None = None,
    ) -> Pin:
        """Pin `cid`. `known_blocks` (multihashes) lets an importer that has just stored the
        whole DAG skip re-reading it; everyone else gets a full, verifying walk."""
        if name is not None and len(name) > MAX_PIN_NAME:
            raise BadRequest(f"pin name longer than {MAX_PIN_NAME} characters")
        if recursive and known_blocks is not None:
            blocks = known_blocks
        elif recursive:
            blocks = reachable(self.store, cid)  # raises DagIncomplete / BlockCorrupted
        else:
            self.store.get(cid)  # raises BlockNotFound / BlockCorrupted
            blocks = set()
        self.store.flush()
        mode = RECURSIVE if recursive else DIRECT
        pin = Pin(str(cid), mode, name, time.time())
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT INTO pins (mh, cid, mode, name, created) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (mh, mode) DO UPDATE SET name = COALESCE(excluded.name, name)",
                    (cid.multihash, pin.cid, mode, name, pin.created),
                )
                db.executemany(
                    "INSERT OR IGNORE INTO pin_blocks (pin_mh, block_mh) VALUES (?, ?)",
                    ((cid.multihash, mh) for mh in blocks),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return pin

    def remove(self, cid: Cid) -> int:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            n = db.execute("DELETE FROM pins WHERE mh = ?", (cid.multihash,)).rowcount
            db.execute("DELETE FROM pin_blocks WHERE pin_mh = ?", (cid.multihash,))
            db.execute("COMMIT")
            return int(n)

    def list(self, mode: str | None = None) -> list[Pin]:
        query = "SELECT cid, mode, name, created FROM pins"
        args: tuple[str, ...] = ()
        if mode is not None:
            query += " WHERE mode = ?"
            args = (mode,)
        with self._db() as db:
            rows = db.execute(query + " ORDER BY created, cid", args).fetchall()
        return [Pin(*row) for row in rows]

    def is_pinned(self, cid: Cid) -> bool:
        with self._db() as db:
            row = db.execute("SELECT 1 FROM pins WHERE mh = ? LIMIT 1", (cid.multihash,))
            return row.fetchone() is not None

    def is_servable(self, cid: Cid) -> bool:
        """True if `cid` is pinned itself or is a block of a recursively pinned DAG."""
        with self._db() as db:
            row = db.execute(
                "SELECT 1 FROM pins WHERE mh = ? UNION ALL "
                "SELECT 1 FROM pin_blocks WHERE block_mh = ? LIMIT 1",
                (cid.multihash, cid.multihash),
            )
            return row.fetchone() is not None

    def kept_blocks(self) -> set[bytes]:
        with self._db() as db:
            rows = db.execute(
                "SELECT block_mh FROM pin_blocks UNION SELECT mh FROM pins WHERE mode = 'direct'"
            ).fetchall()
        return {bytes(r[0]) for r in rows}

    def gc(self) -> GcResult:
        with self.store.write_lock(exclusive=True):
            keep = self.kept_blocks()
            removed = freed = kept = 0
            for cid in list(self.store.iter_cids()):
                if cid.multihash in keep:
                    kept += 1
                    continue
                freed += self.store.delete(cid)
                removed += 1
            self.store.clean_tmp()
            self.store.flush()
        return GcResult(removed, freed, kept)
