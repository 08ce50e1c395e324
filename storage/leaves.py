"""Reading and hashing a file's leaves on a few threads, in file order, with bounded memory.

`os.pread` releases the GIL while the kernel copies and `hashlib` releases it while it hashes a
large buffer, so a small pool of threads reads and hashes several 256 KiB chunks at once; the
caller's thread only collects the results and builds the parents (core/unixfs.FileBuilder).

Memory stays flat: at most `window` jobs are read (or being read) and not yet handed to the
caller. Results come back in file order, so the DAG, and every CID, is the one a sequential
read builds. A regular file is read by offset from its descriptor (the caller opened it once,
without following links); a stream is read in order by the caller's thread, and only hashed
on the pool.

A regular file's leaves are read into each thread's one reusable buffer, a run of `BATCH`
chunks per job, when no leaf block has to outlive its job: when only the CIDs are wanted, and
when a `LeafStore` writes each leaf block on the thread that read it. A fresh 256 KiB per chunk
costs 64 page faults (measured: the storing import ran at a third of the speed of only-hash
for that alone), and a job per chunk costs the caller's thread a thread hop per 256 KiB.
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

from fluxnode.core.cid import Cid
from fluxnode.core.unixfs import CHUNK_SIZE, Link, leaf_frame, leaf_link
from fluxnode.storage.pools import LazyPool

#: Threads that read and hash. More than the cores buys nothing: the work is CPU-bound.
HASH_THREADS = min(4, os.cpu_count() or 1)
#: Jobs in flight per import: enough to keep every thread busy while the caller stores the
#: blocks already done, small enough to keep memory flat (8 x 256 KiB on two cores when the
#: blocks are kept; with the per-thread buffers, memory does not grow with the window).
WINDOW = 4 * HASH_THREADS
#: Chunks per job where leaves are read into a thread's own buffer (2 MiB: fewer hops than
#: one a chunk); the last job of a file keeps one thread busy alone for at most that long.
BATCH = 8

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Leaf:
    link: Link
    #: The leaf block, when the caller stores blocks; None when it only wants the CIDs, or when
    #: a `LeafStore` already wrote it (`written`).
    block: bytes | None
    written: bool = False


@dataclass(frozen=True, slots=True)
class LeafStore:
    """Stores leaf blocks on the threads that read them, straight from their buffers."""

    #: Called on a reading thread with a leaf's CID and its block: a view of that thread's
    #: buffer, valid only during the call. Must be thread-safe; an error it raises ends the
    #: import (after every job in flight finished), raised from the leaves as it is.
    write: Callable[[Cid, memoryview], None]
    #: Called on the importing thread, in file order, for each written leaf that is part of the
    #: DAG. A file that grows while it is read can have leaves written past the end the import
    #: settled on: those are never passed here.
    keep: Callable[[Cid], None]


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
    """This thread's reusable buffer of `n` bytes: a leaf that is only hashed, or written from
    here, needs no memory of its own."""
    buf: bytearray | None = getattr(_local, "buf", None)
    if buf is None or len(buf) != n:
        buf = _local.buf = bytearray(n)
    return buf


def read_into(fd: int, view: memoryview, offset: int) -> int:
    """Fill `view` from `offset`; fewer bytes only at the end of the file. Returns the count."""
    got = 0
    n = len(view)
    while got < n:
        if _HAVE_PREADV:
            k = os.preadv(fd, [view[got:]], offset + got)
        else:
            data = os.pread(fd, n - got, offset + got)
            k = len(data)
            view[got : got + k] = data
        if not k:
            break
        got += k
    return got


def hash_at(fd: int, n: int, offset: int, cid_version: int, store: LeafStore | None = None) -> Leaf:
    """Read up to `n` bytes at `offset` into this thread's buffer and hash them as a leaf; the
    block is not kept, but written by `store` when one is given.

    The buffer has room for the leaf's frame around the chunk (see core/unixfs.leaf_frame), so
    a full chunk's block is one contiguous view, written without being assembled."""
    head, tail = leaf_frame(n, cid_version)
    start = len(head)
    # Views are left to reference counting, never released by hand: a write that failed may
    # still hold one in its traceback, and releasing then would raise over its error.
    view = memoryview(_scratch(start + n + len(tail)))
    got = read_into(fd, view[start : start + n], offset)
    if got == n:
        view[:start] = head
        view[start + n :] = tail
        block = view
    else:  # the short last chunk: its frame differs; assembled once per file
        head, tail = leaf_frame(got, cid_version)
        block = memoryview(b"".join((head, view[start : start + got], tail)))
    link = leaf_link(got, hashlib.sha256(block).digest(), cid_version)
    if store is None or not got:  # an empty chunk is no leaf (see `_until_last`)
        return Leaf(link, None)
    store.write(link.cid, block)
    return Leaf(link, None, written=True)


def hash_run(
    fd: int, n: int, offset: int, count: int, cid_version: int, store: LeafStore | None
) -> list[Leaf]:
    """`hash_at` for `count` chunks of `n` bytes from `offset`, up to the first short one."""
    out: list[Leaf] = []
    for i in range(count):
        leaf = hash_at(fd, n, offset + i * n, cid_version, store)
        out.append(leaf)
        if leaf.link.filesize < n:
            break
    return out


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


def _flat(runs: Generator[list[Leaf], None, None]) -> Leaves:
    with contextlib.closing(runs):
        for run in runs:
            yield from run


def file_leaves(
    fd: int,
    cid_version: int,
    want_blocks: bool,
    *,
    size_hint: int,
    chunk_size: int = CHUNK_SIZE,
    window: int = WINDOW,
    pool: Executor | None = None,
    store: LeafStore | None = None,
    batch: int | None = None,
) -> Leaves:
    """The leaves of the regular file open as `fd`, read by offset from 0 to its end.

    `want_blocks`: each leaf carries its block, for the caller to store (a chunk per job then,
    so at most `window` blocks are held). Otherwise, runs of `batch` chunks per job are read
    into the threads' own buffers, and written there by `store` when one is given.

    A file that fits one chunk (by `size_hint`, its fstat size) is read on this thread: a
    thread hop costs more than it saves there. The end is where a read first comes back short,
    so a file that grew since its fstat is read to its new end, as a sequential read would.
    """
    if store is not None and want_blocks:
        raise ValueError("a LeafStore writes the blocks: want_blocks must be False")
    if pool is None and size_hint >= chunk_size:
        pool = shared_pool()
    if want_blocks:

        def job(offset: int) -> Callable[[], Leaf]:
            return lambda: make_leaf(pread_full(fd, chunk_size, offset), cid_version, True)

        offsets = (i * chunk_size for i in itertools.count())
        return _until_last(ordered(map(job, offsets), window, pool), chunk_size)
    # Small files get one chunk per job, so both threads share even a few chunks.
    batch = BATCH if batch is None else batch
    run = batch if size_hint >= 4 * batch * chunk_size else 1
    span = run * chunk_size

    def run_job(offset: int) -> Callable[[], list[Leaf]]:
        return lambda: hash_run(fd, chunk_size, offset, run, cid_version, store)

    starts = (i * span for i in itertools.count())
    return _until_last(_flat(ordered(map(run_job, starts), window, pool)), chunk_size)


def stream_leaves(
    stream: BinaryIO,
    cid_version: int,
    want_blocks: bool,
    *,
    chunk_size: int = CHUNK_SIZE,
    window: int = WINDOW,
    pool: Executor | None = None,
    store: LeafStore | None = None,
) -> Leaves:
    """The leaves of `stream`, read in order here (`readinto`) and hashed on the pool (and
    written there by `store`, when given). Nothing is read past the first short chunk: a
    terminal or pipe is not asked again after its end."""
    if store is not None and want_blocks:
        raise ValueError("a LeafStore writes the blocks: want_blocks must be False")
    pool = pool if pool is not None else shared_pool()

    def leaf(chunk: bytearray) -> Leaf:
        if store is None or not chunk:
            return make_leaf(chunk, cid_version, want_blocks)
        made = make_leaf(chunk, cid_version, True)
        assert made.block is not None
        store.write(made.link.cid, memoryview(made.block))
        return Leaf(made.link, None, written=True)

    def jobs() -> Iterator[Callable[[], Leaf]]:
        while True:
            chunk = read_chunk(stream, chunk_size)
            yield lambda c=chunk: leaf(c)  # type: ignore[misc]
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
