"""Reading and hashing a file's leaves on a few threads, in file order, with bounded memory.

`os.pread` releases the GIL while the kernel copies and `hashlib` releases it while it hashes a
large buffer, so a small pool of threads reads and hashes several 256 KiB chunks at once; the
caller's thread only collects the results and builds the parents (core/unixfs.FileBuilder).

Memory stays flat: at most `window` chunks are read (or being read) and not yet handed to the
caller. Results come back in file order, so the DAG, and every CID, is the one a sequential
read builds. A regular file is read by offset from its descriptor (the caller opened it once,
without following links); a stream is read in order by the caller's thread, and only hashed
on the pool.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from fluxnode.core.unixfs import CHUNK_SIZE, Link, leaf_frame, leaf_link
from fluxnode.storage.pools import LazyPool

#: Threads that read and hash. More than the cores buys nothing: the work is CPU-bound.
HASH_THREADS = min(4, os.cpu_count() or 1)
#: Chunks in flight per import: enough to keep every thread busy while the caller stores the
#: blocks already done, small enough to keep memory flat (8 x 256 KiB on two cores).
WINDOW = 4 * HASH_THREADS

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Leaf:
    link: Link
    #: The leaf block, when the caller stores blocks; None when it only wants the CIDs.
    block: bytes | None


#: Leaves in file order; close it (or run it to its end) before closing what it reads.
Leaves = Generator[Leaf, None, None]

_POOL = LazyPool(HASH_THREADS, "flux-leaves")


def shared_pool() -> Executor | None:
    """The process's leaf-hashing threads, started on first use; None on a single core."""
    return _POOL.get()


def ordered(
    jobs: Iterable[Callable[[], T]], window: int, pool: Executor | None
) -> Generator[T, None, None]:
    """Run `jobs` on `pool`, at most `window` taken from `jobs` and not yet yielded; yield the
    results in the order of `jobs`. Without a pool each job runs here, one at a time.

    Close the iterator (or exhaust it) before releasing what the jobs use: closing waits for
    the jobs still running, so none outlives the descriptor it reads.
    """
    if window < 1:
        raise ValueError("window must be >= 1")
    if pool is None:
        for job in jobs:
            yield job()
        return
    pending: deque[Future[T]] = deque()
    try:
        for job in jobs:
            pending.append(pool.submit(job))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()
        concurrent.futures.wait(pending)


def make_leaf(chunk: bytes | bytearray, cid_version: int, want_block: bool) -> Leaf:
    """Frame and hash one chunk (see core/unixfs.leaf_frame); runs on the pool."""
    head, tail = leaf_frame(len(chunk), cid_version)
    block: bytes | None = None
    if not head:  # a raw leaf: the chunk is the block
        if want_block:
            block = chunk if isinstance(chunk, bytes) else bytes(chunk)
        digest = hashlib.sha256(chunk).digest()
    elif want_block:
        block = b"".join((head, chunk, tail))
        digest = hashlib.sha256(block).digest()
    else:  # only the CID: hash the parts, never assemble the block
        h = hashlib.sha256(head)
        h.update(chunk)
        h.update(tail)
        digest = h.digest()
    return Leaf(leaf_link(len(chunk), digest, cid_version), block)


_local = threading.local()
_HAVE_PREADV = hasattr(os, "preadv")


def _scratch(n: int) -> bytearray:
    """This thread's reusable read buffer of `n` bytes: a leaf that is only hashed needs no
    memory of its own, and a fresh 256 KiB per chunk costs page faults on every one."""
    buf: bytearray | None = getattr(_local, "buf", None)
    if buf is None or len(buf) != n:
        buf = _local.buf = bytearray(n)
    return buf


def hash_at(fd: int, n: int, offset: int, cid_version: int) -> Leaf:
    """Read up to `n` bytes at `offset` into this thread's buffer and hash them as a leaf; the
    block is not kept (see `make_leaf` for the one that is)."""
    buf = _scratch(n)
    with memoryview(buf) as view:
        got = 0
        while got < n and (k := os.preadv(fd, [view[got:]], offset + got)):
            got += k
        chunk = view[:got]
        head, tail = leaf_frame(got, cid_version)
        h = hashlib.sha256(head)
        h.update(chunk)
        h.update(tail)
        chunk.release()
    return Leaf(leaf_link(got, h.digest(), cid_version), None)


def pread_full(fd: int, n: int, offset: int) -> bytes:
    """Up to `n` bytes at `offset`; fewer only at the end of the file."""
    data = os.pread(fd, n, offset)
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n and (more := os.pread(fd, n - got, offset + got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _until_last(leaves: Leaves, chunk_size: int) -> Leaves:
    """The leaves up to the first short one (the end of the file); an empty chunk is no leaf."""
    with contextlib.closing(leaves):
        for leaf in leaves:
            n = leaf.link.filesize
            if n == 0:
                return
            yield leaf
            if n < chunk_size:
                return


def file_leaves(
    fd: int,
    cid_version: int,
    want_blocks: bool,
    *,
    size_hint: int,
    chunk_size: int = CHUNK_SIZE,
    window: int = WINDOW,
    pool: Executor | None = None,
) -> Leaves:
    """The leaves of the regular file open as `fd`, read by offset from 0 to its end.

    A file that fits one chunk (by `size_hint`, its fstat size) is read on this thread: a
    thread hop costs more than it saves there. The end is where a read first comes back short,
    so a file that grew since its fstat is read to its new end, as a sequential read would.
    """
    if pool is None and size_hint >= chunk_size:
        pool = shared_pool()

    def job(offset: int) -> Callable[[], Leaf]:
        if not want_blocks and _HAVE_PREADV:
            return lambda: hash_at(fd, chunk_size, offset, cid_version)
        return lambda: make_leaf(pread_full(fd, chunk_size, offset), cid_version, want_blocks)

    offsets = (i * chunk_size for i in itertools.count())
    return _until_last(ordered(map(job, offsets), window, pool), chunk_size)


def stream_leaves(
    stream: BinaryIO,
    cid_version: int,
    want_blocks: bool,
    *,
    chunk_size: int = CHUNK_SIZE,
    window: int = WINDOW,
    pool: Executor | None = None,
) -> Leaves:
    """The leaves of `stream`, read in order here (`readinto`) and hashed on the pool. Nothing
    is read past the first short chunk: a terminal or pipe is not asked again after its end."""
    pool = pool if pool is not None else shared_pool()

    def jobs() -> Iterator[Callable[[], Leaf]]:
        while True:
            chunk = read_chunk(stream, chunk_size)
            yield lambda c=chunk: make_leaf(c, cid_version, want_blocks)  # type: ignore[misc]
            if len(chunk) < chunk_size:
                return

    return _until_last(ordered(jobs(), window, pool), chunk_size)


def read_chunk(stream: BinaryIO, n: int) -> bytearray:
    """Up to `n` bytes of `stream`, fewer only at its end (pipes and sockets return less)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not k:
            break
        got += k
    view.release()
    if got < n:
        del buf[got:]
    return buf
