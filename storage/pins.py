"""Pins in SQLite (WAL), and garbage collection.

A recursive pin is recorded only after the whole DAG has been walked (every block present and
verified) and the block store's directory entries fsync'd, so no pin ever points at a missing
block, whatever moment a crash hits. GC keeps every block reachable from a recursive pin and every
directly pinned block, and removes the rest under the store's exclusive lock.

Writers hold the store's shared lock from their first write until their pin commits (`add`
takes it too, so a pin's walk and its commit are never split by a GC). A writer that fails
undoes its writes with `discard_unpinned`: under the exclusive lock — so every other writer
that found those blocks already present has committed its pin or given up — it deletes only
what no pin references.

One handle serves every thread: each thread gets its own SQLite connection, opened once (with
its PRAGMAs) and reused.

Reads the gateway makes per request (`is_servable`, `direct_multihashes`) are answered from a
per-thread cache, bounded, and dropped whole as soon as the pins may have changed: when SQLite's
`PRAGMA data_version` on that thread's connection moves (it does on every commit by any other
connection, this process's other threads and other processes such as the CLI alike), or when
this handle commits a change itself (its own connection's data_version does not move for its own
commits). Never by time: an unpin is seen by the next read after its commit.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fluxnode.core.cid import Cid
from fluxnode.core.errors import BadRequest
from fluxnode.storage.blockstore import BlockStore
from fluxnode.storage.dag import reachable

RECURSIVE, DIRECT = "recursive", "direct"
MAX_PIN_NAME = 200
#: Answers of `is_servable` one thread's cache holds (about 150 bytes each).
MAX_CACHED_ANSWERS = 65536

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
class PinStoreStatistics:
    connections_opened: int


class _ReadCache:
    """One thread's cached answers, valid for one (data_version, own commits) pair."""

    def __init__(self) -> None:
        self.version: tuple[int, int] | None = None
        self.servable: OrderedDict[bytes, bool] = OrderedDict()
        self.direct: frozenset[bytes] | None = None


@dataclass(frozen=True)
class GcResult:
    blocks_removed: int
    bytes_freed: int
    blocks_kept: int


class PinView:
    """Answers from one thread's connection and cache: valid in that thread only (`thread`)."""

    def __init__(self, db: sqlite3.Connection, cache: _ReadCache) -> None:
        self._db = db
        self._cache = cache
        self.thread = threading.get_ident()

    def is_servable(self, cid: Cid) -> bool:
        cache = self._cache
        mh = cid.multihash
        found = cache.servable.get(mh)
        if found is not None:
            cache.servable.move_to_end(mh)
            return found
        row = self._db.execute(
            "SELECT 1 FROM pins WHERE mh = ? UNION ALL "
            "SELECT 1 FROM pin_blocks WHERE block_mh = ? LIMIT 1",
            (mh, mh),
        )
        found = row.fetchone() is not None
        cache.servable[mh] = found
        if len(cache.servable) > MAX_CACHED_ANSWERS:
            cache.servable.popitem(last=False)
        return found

    def direct_multihashes(self) -> frozenset[bytes]:
        cache = self._cache
        if cache.direct is None:
            rows = self._db.execute("SELECT mh FROM pins WHERE mode = 'direct'").fetchall()
            cache.direct = frozenset(bytes(r[0]) for r in rows)
        return cache.direct


class PinStore:
    def __init__(self, path: Path, store: BlockStore) -> None:
        self.path = path
        self.store = store
        self._local = threading.local()
        self._opened_lock = threading.Lock()
        self._opened = 0
        # Commits through this handle: a connection's data_version ignores its own commits.
        self._commits = 0
        with self._db() as db:
            db.executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            # Per thread: sqlite3 connections must not be shared between threads. A thread's
            # connection closes when the thread ends (its thread-local slot is dropped).
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
            with self._opened_lock:
                self._opened += 1
        return db

    def _read_cache(self) -> _ReadCache:
        db = self._conn()
        cache: _ReadCache | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = _ReadCache()
        # Read before any query the cache is filled from: a commit after this read moves the
        # version, so an answer filled from newer data is dropped at the next read, never kept.
        version = (int(db.execute("PRAGMA data_version").fetchone()[0]), self._commits)
        if cache.version != version:
            cache.servable.clear()
            cache.direct = None
            cache.version = version
        return cache

    def _committed(self) -> None:
        with self._opened_lock:
            self._commits += 1

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        yield self._conn()

    def close(self) -> None:
        """Close the calling thread's connection (others close with their threads)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            self._local.db = None
            db.close()

    def statistics(self) -> PinStoreStatistics:
        with self._opened_lock:
            return PinStoreStatistics(self._opened)

    def _dag_blocks(
        self, cid: Cid, recursive: bool, progress: Callable[[int], None] | None = None
    ) -> set[bytes]:
        """Verify what pinning `cid` needs is stored; the blocks a recursive pin keeps.
        `progress` hears the number of blocks walked so far."""
        if recursive:
            return reachable(self.store, cid, progress)  # raises DagIncomplete / BlockCorrupted
        self.store.get(cid)  # raises BlockNotFound / BlockCorrupted
        return set()

    def add(
        self,
        cid: Cid,
        *,
        recursive: bool = True,
        name: str | None = None,
        known_blocks: set[bytes] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Pin:
        """Pin `cid`. `known_blocks` (multihashes) lets an importer that has just stored the
        whole DAG (and flushed it) skip re-reading it; everyone else gets a full, verifying
        walk and a forced flush (the blocks may have been written by anyone). `progress`
        hears the blocks walked so far."""
        return self.add_many(
            [cid], recursive=recursive, name=name, known_blocks=known_blocks, progress=progress
        )[0]

    def add_many(
        self,
        cids: Sequence[Cid],
        *,
        recursive: bool = True,
        name: str | None = None,
        known_blocks: set[bytes] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Pin]:
        """Pin every one of `cids` in one transaction: all or none."""
        if name is not None and len(name) > MAX_PIN_NAME:
            raise BadRequest(f"pin name longer than {MAX_PIN_NAME} characters")
        mode = RECURSIVE if recursive else DIRECT
        # Shared lock from the walk to the commit: a GC between them would delete blocks the
        # walk found, and the pin would point at missing blocks.
        with self.store.write_lock():
            entries: list[tuple[Cid, set[bytes]]] = []
            for cid in cids:
                if recursive and known_blocks is not None:
                    entries.append((cid, known_blocks))
                else:
                    entries.append((cid, self._dag_blocks(cid, recursive, progress)))
            self.store.flush(force=known_blocks is None)
            now = time.time()
            pins = [Pin(str(cid), mode, name, now) for cid, _ in entries]
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                for (cid, blocks), pin in zip(entries, pins, strict=True):
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
            self._committed()
        return pins

    def remove(self, cid: Cid, mode: str | None = None) -> int:
        """Unpin `cid` (every mode, or only `mode`); returns how many pins went."""
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            if mode is None:
                n = db.execute("DELETE FROM pins WHERE mh = ?", (cid.multihash,)).rowcount
            else:
                n = db.execute(
                    "DELETE FROM pins WHERE mh = ? AND mode = ?", (cid.multihash, mode)
                ).rowcount
            if mode in (None, RECURSIVE):
                db.execute("DELETE FROM pin_blocks WHERE pin_mh = ?", (cid.multihash,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._committed()
        return int(n)

    def list(self, mode: str | None = None) -> list[Pin]:
        query = "SELECT cid, mode, name, created FROM pins"
        args: tuple[str, ...] = ()
        if mode is not None:
            query += " WHERE mode = ?"
            args = (mode,)
        rows = self._conn().execute(query + " ORDER BY created, cid", args).fetchall()
        return [Pin(*row) for row in rows]

    def get(self, cid: Cid, mode: str) -> Pin | None:
        row = (
            self._conn()
            .execute(
                "SELECT cid, mode, name, created FROM pins WHERE mh = ? AND mode = ?",
                (cid.multihash, mode),
            )
            .fetchone()
        )
        return None if row is None else Pin(*row)

    def is_pinned(self, cid: Cid) -> bool:
        row = self._conn().execute("SELECT 1 FROM pins WHERE mh = ? LIMIT 1", (cid.multihash,))
        return row.fetchone() is not None

    def is_servable(self, cid: Cid) -> bool:
        """True if `cid` is pinned itself or is a block of a recursively pinned DAG."""
        return self.view().is_servable(cid)

    def direct_multihashes(self) -> frozenset[bytes]:
        """Multihashes of the direct pins."""
        return self.view().direct_multihashes()

    def version(self) -> tuple[int, int]:
        """Changes whenever the pins may have: a commit by any connection (this process's
        other threads, other processes) or through this handle. For the calling thread; as
        cheap as one `PRAGMA`, so an answer kept elsewhere can be checked per request."""
        db = self._conn()
        return (int(db.execute("PRAGMA data_version").fetchone()[0]), self._commits)

    def view(self) -> PinView:
        """Read-only answers as of now, from the calling thread's cache: one cheap check that
        the pins did not change, then as many questions as one request needs. Use it within
        the calling thread, for one request (a later change is seen by the next view)."""
        return PinView(self._conn(), self._read_cache())

    def kept_blocks(self) -> set[bytes]:
        rows = (
            self._conn()
            .execute(
                "SELECT block_mh FROM pin_blocks UNION SELECT mh FROM pins WHERE mode = 'direct'"
            )
            .fetchall()
        )
        return {bytes(r[0]) for r in rows}

    def discard_unpinned(self, added: Iterable[Cid]) -> int:
        """Undo a failed writer: delete the blocks it `added` that no pin references.

        The caller must have released its shared lock: this waits for the exclusive one, i.e.
        until every writer in flight has committed its pin (or failed), so a block another
        writer found present and pinned is seen as referenced and kept."""
        cids = list(added)
        if not cids:
            return 0
        removed = 0
        with self.store.write_lock(exclusive=True):
            keep = self.kept_blocks()
            shards = set()
            for cid in cids:
                if cid.multihash in keep:
                    continue
                if self.store.delete(cid):
                    removed += 1
                    shards.add(self.store.path_for(cid).parent)
            self.store.remove_empty_shards(shards)
            self.store.flush()
        return removed

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
            self.store.remove_empty_shards()
            self.store.flush()
        return GcResult(removed, freed, kept)
