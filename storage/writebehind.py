"""Storing an import's blocks on a few threads while the import goes on, a bounded window at a
time.

Writing a block is mostly kernel work with the GIL released (creating the file, copying 256 KiB
into the page cache, linking it into place), so it overlaps with hashing the next leaves and
with the other writes. At most `window` blocks wait to be written, so memory stays flat.

The caller checks each block (e.g. against the denylist) before `put`: nothing is submitted that
must not be written. `put_now` writes on the calling thread instead (a leaf-reading thread that
writes from its own buffer, see storage/leaves.LeafStore) and is recorded the same way.
`wait()` returns once every submitted write has finished; only then are `added` (the blocks
this writer stored) and `found` (some block was already there) complete, so a caller rolls
back or flushes after `wait()`, never before (and after every `put_now` has returned).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import Executor, Future

from fluxnode.core.cid import Cid
from fluxnode.storage.blockstore import BlockStore
from fluxnode.storage.pools import LazyPool

WRITE_THREADS = min(4, os.cpu_count() or 1)
WINDOW = 8

_POOL = LazyPool(WRITE_THREADS, "flux-store")


def shared_pool() -> Executor | None:
    """The process's block-writing threads, started on first use; None on a single core."""
    return _POOL.get()


class WriteBehind:
    """Puts our own (already hashed) blocks into `store` on `pool`, in any order."""

    def __init__(
        self, store: BlockStore, *, window: int = WINDOW, pool: Executor | None = None
    ) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.store = store
        self.window = window
        self.pool = pool if pool is not None else shared_pool()
        self.added: list[Cid] = []
        self.found = False
        self.max_pending = 0  # high-water mark of blocks submitted and not yet written
        self._pending: deque[tuple[Cid, Future[bool]]] = deque()
        self._error: BaseException | None = None
        self._lock = threading.Lock()  # `added` and `found`: `put_now` runs on other threads

    def put_now(self, cid: Cid, data: bytes | memoryview) -> None:
        """Store a block on this thread (any thread), recorded like a `put`."""
        if self._error is not None:
            raise self._error
        self._record(cid, self.store.put(cid, data, verified=True))

    def put(self, cid: Cid, data: bytes) -> None:
        """Store a block (now, or on the pool); raises an earlier write's error, if any."""
        if self._error is not None:
            raise self._error
        if self.pool is None:
            self._record(cid, self.store.put(cid, data, verified=True))
            return
        while len(self._pending) >= self.window or (self._pending and self._pending[0][1].done()):
            self._collect()
            if self._error is not None:
                raise self._error
        self._pending.append((cid, self.pool.submit(self.store.put, cid, data, verified=True)))
        self.max_pending = max(self.max_pending, len(self._pending))

    def wait(self) -> None:
        """Return once every write submitted has finished, whether it failed or not."""
        while self._pending:
            self._collect()

    def check(self) -> None:
        """Wait, then raise the first write error, if any."""
        self.wait()
        if self._error is not None:
            raise self._error

    def _collect(self) -> None:
        cid, fut = self._pending.popleft()
        try:
            new = fut.result()
        except BaseException as exc:  # kept for check(): every other write is still awaited
            if self._error is None:
                self._error = exc
            return
        self._record(cid, new)

    def _record(self, cid: Cid, new: bool) -> None:
        with self._lock:
            if new:
                self.added.append(cid)
            else:
                self.found = True
