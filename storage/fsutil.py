"""File-system helpers of the block store: syncfs, directory fsync, the store's flock, and
telling a stale temp file from one a live writer is about to rename."""

from __future__ import annotations

import ctypes
import fcntl
import os
import sys
from pathlib import Path
from typing import Any

#: A temp file older than this is stale even if its writer's pid is alive (pid reuse, or another
#: pid namespace): writing one block takes milliseconds.
STALE_TMP_S = 3600.0

_libc: Any = None


def syncfs(path: Path) -> bool:
    """syncfs(2) on the file system holding `path`; False where the call is unavailable."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(_libc, "syncfs"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs failed: {os.strerror(err)}", str(path))
    finally:
        os.close(fd)
    return True


_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing `fd`'s dirty pages to disk now, without waiting
    (sync_file_range(2) with SYNC_FILE_RANGE_WRITE). Durability still comes from the later
    syncfs/fsync; this only lets the disk work while the writer goes on, so that sync has
    less left to wait for. A no-op where the call is missing."""
    global _sync_file_range
    if _sync_file_range is None:
        _sync_file_range = _load_sync_file_range()
    if _sync_file_range is not False:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


#: None until first used; False where the call is missing.
_sync_file_range: Any = None


def _load_sync_file_range() -> Any:
    """libc's sync_file_range with its argument types declared once (a call per block)."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(_libc, "sync_file_range", None)
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def fsync_dir(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def is_stale_tmp(name: str, mtime: float, now: float) -> bool:
    """A temp file nobody will rename any more: its writer is dead, or it is too old."""
    if now - mtime > STALE_TMP_S:
        return True
    pid_text, sep, _ = name.partition("-")
    if not sep or not pid_text.isdigit():
        return False  # not named by us (or an older version's name): only age decides
    pid = int(pid_text)
    if pid <= 0 or pid == os.getpid():
        return False
    return not _pid_alive(pid)


class WriteLock:
    """The store's shared (writers) or exclusive (deleters) lock, an flock on `.gc.lock`.

    Usable as a context manager, or acquired in one thread and released in another (a hosting
    fetch holds it across awaits). Each instance has its own open file, so a thread holding a
    shared lock can take another shared one; it must release its shared locks before asking
    for the exclusive one (flock would wait for itself)."""

    def __init__(self, path: Path, *, exclusive: bool) -> None:
        self._path = path
        self._exclusive = exclusive
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError("write lock acquired twice")
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if self._exclusive else fcntl.LOCK_SH)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
