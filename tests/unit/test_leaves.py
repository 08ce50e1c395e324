"""The threaded leaf reader/hasher: file order, a bounded window, no job outliving its import,
and blocks and CIDs identical to the sequential FileBuilder's."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxnode.core.unixfs import CHUNK_SIZE, Block, FileBuilder, Link, leaf_frame, leaf_link
from fluxnode.storage import leaves
from fluxnode.storage.importer import import_path, import_stream
from fluxnode.storage.leaves import file_leaves, ordered, stream_leaves


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(3) as p:
        yield p


def test_results_come_back_in_job_order_even_when_later_jobs_finish_first(
    pool: ThreadPoolExecutor,
) -> None:
    later_done = [threading.Event() for _ in range(6)]

    def job(i: int) -> Callable[[], int]:
        def run() -> int:
            if i % 2 == 0:
                assert later_done[i + 1].wait(30)  # finishes only after the next job did
            later_done[i].set()
            return i

        return run

    # window 2: job i+1 is always submitted while job i waits for it
    assert list(ordered((job(i) for i in range(6)), 2, pool)) == list(range(6))


def test_chunks_in_flight_never_exceed_the_window(pool: ThreadPoolExecutor) -> None:
    lock = threading.Lock()
    state = {"taken": 0, "consumed": 0, "max": 0}

    def jobs() -> Iterator[Callable[[], int]]:
        for i in range(200):
            with lock:  # a chunk is read when its job is taken from the iterator
                state["taken"] += 1
                state["max"] = max(state["max"], state["taken"] - state["consumed"])
            yield lambda i=i: i

    for _ in ordered(jobs(), 5, pool):
        with lock:
            state["consumed"] += 1
    assert state["consumed"] == 200
    assert state["max"] == 5  # the window is used, and never passed


def test_file_reads_in_flight_never_exceed_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool: ThreadPoolExecutor
) -> None:
    chunk = 64
    data = os.urandom(chunk * 300 + 17)
    path = tmp_path / "f"
    path.write_bytes(data)
    lock = threading.Lock()
    started = [0]
    real = leaves.pread_full

    def counting(fd: int, n: int, offset: int) -> bytes:
        with lock:
            started[0] += 1
        return real(fd, n, offset)

    monkeypatch.setattr(leaves, "pread_full", counting)
    fd = os.open(path, os.O_RDONLY)
    try:
        consumed = 0
        worst = 0
        got = bytearray()
        for leaf in file_leaves(
            fd, 1, True, size_hint=len(data), chunk_size=chunk, window=4, pool=pool
        ):
            consumed += 1
            with lock:
                worst = max(worst, started[0] - consumed)
            assert leaf.block is not None
            got += leaf.block
    finally:
        os.close(fd)
    assert bytes(got) == data
    assert worst <= 4
    assert started[0] <= consumed + 4  # past the end, still at most a window of reads


def test_closing_early_waits_for_every_job_started(pool: ThreadPoolExecutor) -> None:
    release = threading.Event()
    running = threading.Semaphore(0)
    finished: list[int] = []

    def job(i: int) -> Callable[[], int]:
        def run() -> int:
            if i > 0:
                running.release()
                release.wait(30)
            finished.append(i)
            return i

        return run

    gen = ordered((job(i) for i in range(50)), 4, pool)
    assert next(gen) == 0
    running.acquire(timeout=30)  # at least one later job is running now
    threading.Timer(0.05, release.set).start()
    gen.close()  # returns only once the running jobs are done
    assert release.is_set()
    assert sorted(finished) == list(range(len(finished)))
    assert 2 <= len(finished) <= 5  # the rest were never started


def test_a_failing_read_is_raised_and_the_other_jobs_are_waited_for(
    pool: ThreadPoolExecutor,
) -> None:
    done: list[int] = []

    def job(i: int) -> Callable[[], int]:
        def run() -> int:
            if i == 3:
                raise OSError(5, "Input/output error")
            done.append(i)
            return i

        return run

    got: list[int] = []
    with pytest.raises(OSError, match="Input/output error"):
        got.extend(ordered((job(i) for i in range(10)), 3, pool))
    assert got == [0, 1, 2]
    assert pool.submit(lambda: None).result(30) is None  # the pool is free again


def _sequential(data: bytes, version: int, chunk: int, links: int) -> tuple[list[Block], Link]:
    b = FileBuilder(version, chunk_size=chunk, max_links=links)
    blocks = b.write(data)
    rest, root = b.finish()
    return blocks + rest, root


def _threaded_file(
    path: Path, version: int, chunk: int, links: int, want: bool, pool: ThreadPoolExecutor
) -> tuple[list[Block], Link]:
    b = FileBuilder(version, chunk_size=chunk, max_links=links)
    out: list[Block] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        for leaf in file_leaves(fd, version, want, size_hint=size, chunk_size=chunk, pool=pool):
            if leaf.block is not None:
                out.append(Block(leaf.link.cid, leaf.block))
            out += b.add_leaf(leaf.link)
    finally:
        os.close(fd)
    rest, root = b.finish()
    return out + rest, root


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("size", [0, 1, 6, 7, 8, 7 * 9, 7 * 9 + 1, 7 * 28 + 3])
def test_threaded_leaves_build_the_sequential_dag(
    tmp_path: Path, pool: ThreadPoolExecutor, version: int, size: int
) -> None:
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    want_blocks, want_root = _sequential(data, version, 7, 3)
    blocks, root = _threaded_file(path, version, 7, 3, True, pool)
    assert root == want_root
    assert blocks == want_blocks  # same blocks, same order
    _, cids_only_root = _threaded_file(path, version, 7, 3, False, pool)
    assert cids_only_root == want_root


class _Trickle(io.RawIOBase):
    """A pipe-like stream: short reads, and an error if read again after its end."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data = data
        self.pos = 0
        self.step = step
        self.ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        if self.ended:
            raise AssertionError("read again after the end")
        n = min(len(buf), self.step, len(self.data) - self.pos)
        buf[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        self.ended = n == 0
        return n


@given(data=st.binary(max_size=200), step=st.integers(1, 20), version=st.sampled_from([0, 1]))
def test_streams_with_short_reads_give_the_sequential_dag(
    data: bytes, step: int, version: int
) -> None:
    want_blocks, want_root = _sequential(data, version, 7, 3)
    b = FileBuilder(version, chunk_size=7, max_links=3)
    out: list[Block] = []
    for leaf in stream_leaves(_Trickle(data, step), version, True, chunk_size=7):  # type: ignore[arg-type]
        assert leaf.block is not None
        out.append(Block(leaf.link.cid, leaf.block))
        out += b.add_leaf(leaf.link)
    rest, root = b.finish()
    assert root == want_root
    assert out + rest == want_blocks


@pytest.mark.parametrize("version", [0, 1])
def test_import_path_only_hash_and_storing_agree(tmp_path: Path, version: int) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 5)
    path = tmp_path / "f"
    path.write_bytes(data)
    stored: list[Block] = []
    full = import_path(path, stored.extend, version)
    only = import_path(path, None, version)
    assert only.root == full.root
    assert (only.blocks, only.bytes_read) == (full.blocks, full.bytes_read) == (5, len(data))
    want_blocks, want_root = _sequential(data, version, CHUNK_SIZE, 174)
    assert full.root == want_root
    assert stored == want_blocks
    streamed = import_stream(io.BytesIO(data), None, version)
    assert streamed.root == want_root


def test_leaf_frame_and_link_match_the_builder() -> None:
    for version in (0, 1):
        chunk = b"abc"
        blocks, root = _sequential(chunk, version, 7, 3)
        head, tail = leaf_frame(len(chunk), version)
        assert blocks[0].data == head + chunk + tail
        assert leaf_link(3, hashlib.sha256(head + chunk + tail).digest(), version) == root


def test_add_leaf_refuses_what_would_change_the_dag() -> None:
    b = FileBuilder(1, chunk_size=4)
    digest = bytes(32)
    b.add_leaf(leaf_link(4, digest, 1))
    b.add_leaf(leaf_link(2, digest, 1))  # the last, short one
    with pytest.raises(ValueError, match="only the last leaf"):
        b.add_leaf(leaf_link(4, digest, 1))
    with pytest.raises(RuntimeError, match="after the last"):
        b.write(b"x")
    with pytest.raises(ValueError, match="none longer"):
        FileBuilder(1, chunk_size=4).add_leaf(leaf_link(5, digest, 1))
    partial = FileBuilder(1, chunk_size=4)
    partial.write(b"ab")
    with pytest.raises(RuntimeError, match="partial chunk"):
        partial.add_leaf(leaf_link(4, digest, 1))
    empty_after = FileBuilder(1, chunk_size=4)
    empty_after.add_leaf(leaf_link(4, digest, 1))
    with pytest.raises(ValueError, match="empty leaf"):
        empty_after.add_leaf(leaf_link(0, digest, 1))
