"""One SQLite file (WAL) of state the node keeps across restarts, driven from asyncio.

The connection is opened once, on the file's own worker thread, and used only there: the event
loop never blocks on SQLite, and operations apply in the order they were submitted (so two
writes of one record can never land out of order). `synchronous=FULL`: what a caller was told
is stored survives a power cut, not only a crash.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from fluxnode.core.errors import StateStoreError

_T = TypeVar("_T")


class SqliteFile:
    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self._schema = schema
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{path.name}")
        self._db: sqlite3.Connection | None = None
        self.failures = 0

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(self._schema)
            self._db = db
        return self._db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def run(self, fn: Callable[[sqlite3.Connection], _T], what: str) -> _T:
        """Run `fn(connection)` on the worker thread; StateStoreError if SQLite fails."""
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, lambda: fn(self._conn())
            )
        except sqlite3.Error as exc:
            self.failures += 1
            raise StateStoreError(f"cannot {what} {self.path}: {exc}") from exc

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close)
        self._pool.shutdown(wait=True)
