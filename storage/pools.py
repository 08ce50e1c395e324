"""Process-wide worker threads for the store's pipelines (hashing leaves, writing blocks).

Each pool starts on first use, stays for the life of the process, and is forgotten in a forked
child (which has none of its parent's threads and starts its own). On a single core there is
no pool: the pipelines then run inline.
"""

from __future__ import annotations

import os
import threading
import weakref
from concurrent.futures import Executor, ThreadPoolExecutor


class LazyPool:
    """A `ThreadPoolExecutor` of `threads` workers, made when `get()` is first called."""

    def __init__(self, threads: int, name: str) -> None:
        self.threads = threads
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        _pools.add(self)

    def get(self) -> Executor | None:
        if self.threads < 2:
            return None
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=self.name)
            return self._pool

    def _forget(self) -> None:
        self._pool = None
        self._lock = threading.Lock()


_pools: weakref.WeakSet[LazyPool] = weakref.WeakSet()


def _forget_all() -> None:
    for pool in list(_pools):
        pool._forget()


os.register_at_fork(after_in_child=_forget_all)
