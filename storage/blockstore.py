"""Flat-file block store, sharded like Kubo's flatfs (`next-to-last/2`).

Blocks are keyed by multihash (as Kubo does), so the same bytes addressed by a CIDv0 and a CIDv1
are stored once. Each block is one file `blocks/<XY>/<KEY>.data`, where KEY is the base32 of the
multihash and XY its next-to-last two characters.

Crash safety: a block is written to a temp file and renamed into place, so a reader (or a killed
writer) sees the whole block or none. Durability is batched: `flush()` makes everything written
so far durable with one `syncfs(2)` of the store's file system (falling back to fsync of each
written file and directory where syncfs is missing), and callers run it before recording a pin
that depends on those blocks. So a pin only ever points at durable blocks, while an import pays
one flush instead of an fsync per 256 KiB block (measured: 0.34x -> see bench/bench_import.py).
After a power loss an unpinned block may be damaged: every read checks the digest, a corrupted
block raises `BlockCorrupted` and is never served, and `gc` removes unpinned blocks.

Concurrency across processes: readers need no lock. Writers (add, import, a hosting fetch) hold
a shared lock on `blocks/.gc.lock` from their first write until their pin commits; whoever
deletes blocks (GC, and a failed writer undoing its writes) holds it exclusively. So no block
is deleted while another writer may still pin it: it found the block present and relies on it.

Concurrency within a process: one handle serves every thread (the asyncio loop, its worker
threads, the p2p thread). The tracked size, the quota check and the dirty-file list live under
one lock; a block is linked into place (`link(2)`: exactly one writer of the same block wins,
so the size is counted once); the dirty list is bounded (a full list flushes).

Temp files are named `<pid>-<random>-<n>` in `blocks/.tmp`, so a stale one (its writer is dead, or
it is older than any write takes) can be removed on open without touching a live writer's.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import itertools
import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fluxnode.core.cid import RAW, Cid, InvalidCid
from fluxnode.core.dagpb import MAX_BLOCK_SIZE
from fluxnode.core.errors import BlockCorrupted as BlockCorrupted  # re-exported
from fluxnode.core.errors import BlockHashMismatch as BlockHashMismatch
from fluxnode.core.errors import BlockNotFound as BlockNotFound
from fluxnode.core.errors import BlockTooLarge as BlockTooLarge
from fluxnode.core.errors import QuotaExceeded as QuotaExceeded
from fluxnode.storage.fsutil import WriteLock, fsync_dir, is_stale_tmp, start_writeback, syncfs
from fluxnode.storage.shard_tally import ShardTally

#: Files written but not yet flushed that one handle remembers; past this a put flushes itself, so
#: a writer that never flushes (the p2p side fetching blocks) cannot grow the list without bound.
MAX_DIRTY_FILES = 1024


@dataclass(frozen=True)
class StoreStatistics:
    """Bounded state of one handle, for tests and `status`."""

    dirty_files: int
    dirty_dirs: int
    flushes: int


@dataclass(frozen=True)
class StoreStats:
    blocks: int
    bytes: int
    quota: int | None


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of `data` to `fd` (raw `os.write`: no buffered file object per block)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def key_for(cid: Cid) -> str:
    return base64.b32encode(cid.multihash).decode().rstrip("=")


class BlockStore:
    def __init__(self, root: Path, *, quota_bytes: int | None = None) -> None:
        self.root = root
        self.quota_bytes = quota_bytes
        self._tmp = root / ".tmp"
        # The write path works on strings: pathlib's joins cost more than the syscalls they
        # name, at one block per 256 KiB.
        self._root_s = os.fspath(root)
        self._tmp_s = os.fspath(self._tmp)
        # Temp names: this handle's random tag and a counter (no random draw per block); the
        # pid comes first, read per write, so a forked child never picks its parent's names.
        self._tmp_tag = secrets.token_hex(6)
        self._tmp_seq = itertools.count()
        # Guards everything below: several threads share one handle.
        self._lock = threading.Lock()
        # One flush at a time, so a flush returns only once every write before it is durable
        # (a second flusher waits for the first instead of returning on an emptied list).
        self._flush_lock = threading.Lock()
        self._dirty_dirs: set[str] = set()
        self._dirty_files: list[str] = []
        self._flushes = 0
        self._size: int | None = None  # computed lazily by a scan, then tracked
        #: False after a scan that writes overlapped: `_size` may count those writes twice
        #: (an overestimate keeps the quota safe), and the next `total_size()` scans again.
        self._size_exact = False
        #: Puts between their claim and their link (or undo): a scan may or may not see them.
        self._in_flight = 0
        self._changes = 0  # net bytes written by this handle, to correct a scan that ran meanwhile
        self._tally = ShardTally()
        root.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(exist_ok=True)
        if self.clean_tmp():
            # An interrupted writer may also have left the shard folder it had just made.
            self.remove_empty_shards()

    # -- paths ---------------------------------------------------------------------------------
    def path_for(self, cid: Cid) -> Path:
        key = key_for(cid)
        return self.root / key[-3:-1] / f"{key}.data"

    def _names(self, cid: Cid) -> tuple[str, str]:
        """(shard folder, block file) of `cid`, as strings (see `path_for`)."""
        key = key_for(cid)
        shard = f"{self._root_s}/{key[-3:-1]}"
        return shard, f"{shard}/{key}.data"

    # -- reads ---------------------------------------------------------------------------------
    def has(self, cid: Cid) -> bool:
        return self.path_for(cid).is_file()

    def get(self, cid: Cid) -> bytes:
        path = self.path_for(cid)
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_BLOCK_SIZE + 1)
        except FileNotFoundError:
            raise BlockNotFound(f"block {cid} is not in the store") from None
        if not cid.verify(data):
            # No path in the message: it may answer a client. Operators run `repo verify`.
            raise BlockCorrupted(f"block {cid} is corrupted on disk; not served")
        return data

    def size_of(self, cid: Cid) -> int | None:
        try:
            return self.path_for(cid).stat().st_size
        except FileNotFoundError:
            return None

    # -- writes --------------------------------------------------------------------------------
    def put(self, cid: Cid, data: bytes | memoryview, *, verified: bool = False) -> bool:
        """Store a block; returns True if this call wrote it (False: it was already stored).
        `verified` skips re-hashing our own blocks."""
        if len(data) > MAX_BLOCK_SIZE:
            raise BlockTooLarge(f"block {cid} is {len(data)} bytes (max {MAX_BLOCK_SIZE})")
        if not verified and not cid.verify(data):
            raise BlockHashMismatch(f"block does not hash to {cid}")
        shard, path = self._names(cid)
        if os.path.exists(path):
            return False
        self._claim(len(data))
        try:
            new = self._write(shard, path, data)
        except BaseException:
            self._account(-len(data), done=True)
            raise
        if not new:
            self._account(-len(data), done=True)
            return False
        self._account(0, done=True)
        with self._lock:
            self._dirty_dirs.add(shard)
            self._dirty_files.append(path)
            full = len(self._dirty_files) >= MAX_DIRTY_FILES
        if full:
            self.flush()
        return True

    def _claim(self, nbytes: int) -> None:
        """Count `nbytes` as used, failing with QuotaExceeded first if they do not fit; the
        check and the count are one step, so threads writing at once cannot pass it together."""
        if self.quota_bytes is not None and self._size is None:
            self.stats()  # the first scan, outside the lock
        with self._lock:
            if (
                self.quota_bytes is not None
                and self._size is not None
                and self._size + nbytes > self.quota_bytes
            ):
                raise QuotaExceeded(
                    f"storing {nbytes} more bytes would exceed the quota of "
                    f"{self.quota_bytes} bytes ({self._size} used)"
                )
            self._changes += nbytes
            self._in_flight += 1
            if self._size is not None:
                self._size += nbytes

    def _account(self, nbytes: int, *, done: bool = False) -> None:
        with self._lock:
            self._changes += nbytes
            if done:
                self._in_flight -= 1
            if self._size is not None:
                self._size += nbytes

    def _write(self, shard: str, path: str, data: bytes | memoryview) -> bool:
        tmp = f"{self._tmp_s}/{os.getpid()}-{self._tmp_tag}-{next(self._tmp_seq)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                write_all(fd, data)
                # The disk starts on it now; the flush before the pin waits for less.
                start_writeback(fd)
            finally:
                os.close(fd)
            return self._link(tmp, shard, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _link(self, tmp: str, shard: str, path: str) -> bool:
        """Put `tmp` in place as `path` unless a block is already there; True if we did."""
        for attempt in (1, 2):
            try:
                os.link(tmp, path)
                return True
            except FileExistsError:
                return False
            except FileNotFoundError:
                # No shard folder yet, or GC removed an emptied one since: make it and retry.
                if attempt == 2:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(shard)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
                    raise
                # A file system without hard links: rename (the same block twice is harmless).
                os.replace(tmp, path)
                return True
        raise AssertionError("unreachable")

    def reserve(self, nbytes: int) -> None:
        """Fail with QuotaExceeded, before writing, if `nbytes` more would pass the quota."""
        if self.quota_bytes is None:
            return
        used = self.total_size()
        if used + nbytes > self.quota_bytes:
            raise QuotaExceeded(
                f"storing {nbytes} more bytes would exceed the quota of {self.quota_bytes} bytes "
                f"({used} used)"
            )

    def flush(self, *, force: bool = False) -> None:
        """Make every block written (or deleted) through this handle durable. Run before
        recording a pin.

        `force` also syncs what this handle did not write (another process, or a block found
        already present), at the cost of one syncfs (or sync) even when nothing is dirty."""
        with self._flush_lock:
            with self._lock:
                dirs, files = self._dirty_dirs, self._dirty_files
                self._dirty_dirs, self._dirty_files = set(), []
            if not dirs and not force:
                return
            try:
                self._sync(dirs, files)
            except BaseException:
                with self._lock:  # not durable: keep them for the next flush
                    self._dirty_dirs |= dirs
                    self._dirty_files[:0] = files
                raise
            with self._lock:
                self._flushes += 1

    def _sync(self, dirs: set[str], files: list[str]) -> None:
        if syncfs(self.root):
            return
        if not dirs:
            os.sync()
            return
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        for d in sorted(dirs):
            with contextlib.suppress(FileNotFoundError):  # an emptied shard GC removed
                fsync_dir(d)
        fsync_dir(self.root)

    def delete(self, cid: Cid) -> int:
        """Remove a block; returns the bytes freed (0 if absent). Callers hold the exclusive
        write lock (GC, or `PinStore.discard_unpinned`) so no writer relies on it."""
        path = self.path_for(cid)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        with self._lock:
            self._dirty_dirs.add(os.fspath(path.parent))
        self._account(-size)
        return size

    def remove_empty_shards(self, shards: Iterable[Path] | None = None) -> int:
        """Remove empty shard folders (all, or those given). Safe against writers: `put`
        re-creates a shard that vanished under it."""
        removed = 0
        candidates = shards if shards is not None else self._shard_dirs()
        for shard in candidates:
            try:
                shard.rmdir()
            except OSError:
                continue  # not empty, or already gone
            removed += 1
            with self._lock:
                self._dirty_dirs.add(self._root_s)
        return removed

    def _shard_dirs(self) -> list[Path]:
        return [
            Path(e.path)
            for e in os.scandir(self.root)
            if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
        ]

    # -- enumeration ---------------------------------------------------------------------------
    def iter_cids(self) -> Iterator[Cid]:
        """Every stored block as a CIDv1 raw (the store knows multihashes, not codecs)."""
        for shard in sorted(self._shard_dirs()):
            try:
                entries = list(os.scandir(shard))
            except FileNotFoundError:
                continue  # removed empty meanwhile
            for entry in entries:
                name = entry.name
                if not name.endswith(".data"):
                    continue
                try:
                    mh = base64.b32decode(name[:-5] + "=" * (-len(name[:-5]) % 8))
                    yield Cid(1, RAW, Cid.from_bytes(b"\x01\x55" + mh).multihash)
                except (ValueError, InvalidCid):
                    continue  # not ours: ignore rather than delete

    def total_size(self) -> int:
        """Bytes stored: tracked after one scan; scanned again if writes overlapped the last
        scan (so an overestimate from a busy moment does not stay)."""
        with self._lock:
            if self._size is not None and self._size_exact:
                return self._size
        self.stats()
        with self._lock:
            assert self._size is not None
            return self._size

    def stats(self) -> StoreStats:
        """Count blocks and bytes on disk (also refreshes the tracked size: other processes
        write to the same directory). Shards unchanged since the last count are not read again
        (see storage/shard_tally.py)."""
        with self._lock:
            changes_before = self._changes
            in_flight_before = self._in_flight
        now_ns = time.time_ns()
        count, total = self._tally.count(self._shard_dirs(), now_ns)
        with self._lock:
            # Writes during the scan may be counted twice: an overestimate keeps the quota safe,
            # and `total_size()` scans again before it trusts the figure.
            # A put in flight when the scan began may be missed by it (linked after its shard
            # was read) as well as counted: only a scan no put overlapped is exact.
            overlapped = self._changes - changes_before
            self._size = total + overlapped
            self._size_exact = overlapped == 0 and in_flight_before == 0
        return StoreStats(count, total, self.quota_bytes)

    def statistics(self) -> StoreStatistics:
        with self._lock:
            return StoreStatistics(len(self._dirty_files), len(self._dirty_dirs), self._flushes)

    def clean_tmp(self, now: float | None = None) -> int:
        """Remove temp files no live writer will rename any more (see `fsutil.is_stale_tmp`)."""
        now = time.time() if now is None else now
        removed = 0
        for entry in os.scandir(self._tmp):
            try:
                if not is_stale_tmp(entry.name, entry.stat().st_mtime, now):
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed += 1
        return removed

    # -- locking -------------------------------------------------------------------------------
    def write_lock(self, exclusive: bool = False) -> WriteLock:
        """Shared for writers (held until their pin commits), exclusive for deleters."""
        return WriteLock(self.root / ".gc.lock", exclusive=exclusive)
