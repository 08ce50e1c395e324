"""Counting a block store's blocks and bytes without reading again the shards that did not change.

`status`, the quota's first check in each process and the hosting offer's free space all count
the store on disk (other processes write to it). Reading every block file's size costs a `stat`
per block: seconds on a store of a million blocks, at every `status`. A shard folder's mtime
changes whenever an entry is linked, renamed into or removed from it, and those are the only
ways a block file appears or goes (block files are never rewritten in place), so a shard whose
inode and timestamps are what they were when it was last read holds the same files.

The one gap is the file system's timestamp granularity: a change in the same clock tick as the
read that followed it leaves the mtime as it was (the "racy" entries of git's index). A shard
whose mtime was less than `RACY_NS` old when it was read is never trusted: it is read again the
next time, until its last change is older than that.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

#: A shard changed this recently, as seen when it was read, may change again unseen by its mtime.
#: Far above any file system's timestamp tick (ext4: a jiffy; FAT: 2 s) and clock skew between
#: the kernel's coarse clock and `time.time_ns`.
RACY_NS = 3_000_000_000


@dataclass(frozen=True, slots=True)
class _Counted:
    ident: tuple[int, int, int]  # (st_ino, st_mtime_ns, st_ctime_ns) of the shard folder
    blocks: int
    nbytes: int


class ShardTally:
    """Per-shard block counts and bytes, kept between counts. Thread-safe."""

    def __init__(self) -> None:
        self._shards: dict[str, _Counted] = {}
        self._lock = threading.Lock()
        #: Shards read (not taken from what was kept) by the last `count`: for tests.
        self.last_read = 0

    def count(self, shards: list[Path], now_ns: int) -> tuple[int, int]:
        """(blocks, bytes) in `shards`, the store's shard folders as listed now. `now_ns` is the
        wall clock (`time.time_ns()`) when the listing was taken."""
        blocks = nbytes = read = 0
        seen: dict[str, _Counted] = {}
        with self._lock:
            kept = self._shards  # replaced by each count, never changed in place: no copy
        for shard in shards:
            key = os.fspath(shard)
            try:
                st = os.stat(key)
            except FileNotFoundError:
                continue  # emptied and removed since the listing
            ident = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
            old = kept.get(key)
            if old is not None and old.ident == ident:
                counted = old
            else:
                counted = _Counted(ident, *_read(key))
                read += 1
            blocks += counted.blocks
            nbytes += counted.nbytes
            if now_ns - st.st_mtime_ns >= RACY_NS:
                seen[key] = counted
        with self._lock:
            self._shards = seen
            self.last_read = read
        return blocks, nbytes


def _read(shard: str) -> tuple[int, int]:
    blocks = nbytes = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(shard):
            if entry.name.endswith(".data"):
                with contextlib.suppress(FileNotFoundError):
                    nbytes += entry.stat().st_size
                    blocks += 1
    return blocks, nbytes
