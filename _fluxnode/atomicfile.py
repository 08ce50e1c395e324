"""Careful file I/O shared by every layer: atomic writes and bounded reads of regular files.

`atomic_write`: readers see the old file or the new one, never a mix, even after a crash. The
temp file lives in the target's folder (a rename across file systems is not atomic), is
fsynced before the rename, and the folder is fsynced after it, so the new name survives a power
loss.

`read_regular_file`: the bytes of a file an operator named (a config, a denylist, a deployment),
refusing what is not a regular file (a FIFO blocks forever, /dev/zero never ends) and anything
larger than the caller's bound, without reading past it.

The module sits in the top-level package so every layer (node/, chain/, ...) may use it
without importing another.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

__all__ = ["UnsafeFile", "atomic_write", "read_regular_file"]


class UnsafeFile(ValueError):
    """A file that is not read: not a regular file, too large, or a dangling symlink."""


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """At most `max_bytes` of `path`, a regular file; UnsafeFile otherwise.

    FileNotFoundError only when nothing is at `path` (a dangling symlink is UnsafeFile: the
    operator pointed at something). Other OSErrors (permissions, ...) pass through.
    """
    try:
        # O_NONBLOCK: opening a FIFO without a writer would block before fstat could refuse it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise UnsafeFile("is a symlink to a missing file") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile("is not a regular file")
        if st.st_size > max_bytes:
            raise UnsafeFile(f"is larger than {max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:  # the file may grow after fstat
            chunk = os.read(fd, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > max_bytes:
        raise UnsafeFile(f"is larger than {max_bytes} bytes")
    return b"".join(chunks)


def atomic_write(path: Path, data: bytes, mode: int = 0o644, *, exclusive: bool = False) -> bool:
    """Write `data` to `path` atomically with permissions `mode`.

    An existing target that is not a regular file (a device, FIFO, folder or socket) is refused
    with FileExistsError: renaming over it would replace, say, /dev/null with a plain file.
    With `exclusive`, an existing `path` is left alone and False is returned (the file appears
    complete or not at all, and two writers never overwrite each other); otherwise it is
    replaced. Returns True when `path` now holds `data`.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(st.st_mode) and not stat.S_ISLNK(st.st_mode):
            raise FileExistsError(errno.EEXIST, "exists and is not a regular file", str(path))
        if exclusive:
            return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            try:
                os.link(tmp, path)  # fails with EEXIST instead of replacing
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return True


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
