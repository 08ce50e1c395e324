"""Write-behind of an import's blocks: a bounded window, every write awaited before anyone
relies on `added`, and a failed write rolled back with the rest of its add."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from fluxnode.core.cid import RAW, Cid
from fluxnode.core.errors import QuotaExceeded
from fluxnode.core.unixfs import CHUNK_SIZE
from fluxnode.storage.blockstore import BlockStore
from fluxnode.storage.repo import Repo
from fluxnode.storage.writebehind import WriteBehind


def raw(data: bytes) -> Cid:
    return Cid.hash_block(data, 1, RAW)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(3) as p:
        yield p


class _CountingPool:
    """Submits to `pool`, noting the most writes submitted and not yet finished."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.lock = threading.Lock()
        self.submitted = self.finished = self.worst = 0

    def submit(self, fn: Any, *args: Any, **kw: Any) -> Any:
        with self.lock:
            self.submitted += 1
            self.worst = max(self.worst, self.submitted - self.finished)

        def run() -> Any:
            try:
                return fn(*args, **kw)
            finally:
                with self.lock:
                    self.finished += 1

        return self.pool.submit(run)


def test_blocks_waiting_to_be_written_never_exceed_the_window(
    tmp_path: Path, pool: ThreadPoolExecutor
) -> None:
    store = BlockStore(tmp_path / "b")
    counting = _CountingPool(pool)
    writer = WriteBehind(store, window=3, pool=counting)  # type: ignore[arg-type]
    blocks = [i.to_bytes(2, "big") * 50 for i in range(100)]
    for data in blocks:
        writer.put(raw(data), data)
    writer.check()
    assert counting.submitted == 100
    assert counting.worst <= 3
    assert writer.max_pending <= 3
    assert sorted(c.multihash for c in writer.added) == sorted(raw(b).multihash for b in blocks)
    assert all(store.get(raw(b)) == b for b in blocks)
    writer.put(raw(blocks[0]), blocks[0])  # already there: found, not added
    writer.check()
    assert writer.found
    assert len(writer.added) == 100


def test_a_failed_write_is_raised_after_every_other_write_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool: ThreadPoolExecutor
) -> None:
    store = BlockStore(tmp_path / "b")
    real = store.put
    release, submitted = threading.Event(), threading.Event()

    def put(cid: Cid, data: bytes, **kw: Any) -> bool:
        if data == b"bad":
            # Fail only once all three are submitted: otherwise a later put may already see
            # the failure (as it should) and this test would not reach check().
            assert submitted.wait(30)
            release.set()
            raise OSError(28, "No space left on device")
        assert release.wait(30)  # the others finish only after the failure
        return real(cid, data, **kw)

    monkeypatch.setattr(store, "put", put)
    writer = WriteBehind(store, window=8, pool=pool)
    for data in (b"one", b"bad", b"two"):
        writer.put(raw(data), data)
    submitted.set()
    with pytest.raises(OSError, match="No space left"):
        writer.check()
    assert sorted(writer.added, key=str) == sorted([raw(b"one"), raw(b"two")], key=str)
    with pytest.raises(OSError, match="No space left"):
        writer.put(raw(b"three"), b"three")  # no more writes once one failed
    assert not store.has(raw(b"three"))


def test_without_a_pool_writes_happen_in_put(tmp_path: Path) -> None:
    store = BlockStore(tmp_path / "b")
    writer = WriteBehind(store)
    writer.pool = None
    writer.put(raw(b"x"), b"x")
    assert store.has(raw(b"x"))
    assert writer.added == [raw(b"x")]


def test_an_add_whose_write_fails_midway_leaves_the_store_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo(tmp_path / "d")
    src = tmp_path / "f"
    src.write_bytes(os.urandom(12 * CHUNK_SIZE))
    real = BlockStore.put
    calls = [0]

    def put(self: BlockStore, cid: Cid, data: bytes, **kw: Any) -> bool:
        calls[0] += 1
        if calls[0] == 6:
            raise QuotaExceeded("storing 262144 more bytes would exceed the quota")
        return real(self, cid, data, **kw)

    monkeypatch.setattr(BlockStore, "put", put)
    with pytest.raises(QuotaExceeded):
        repo.add(src, cid_version=1)
    assert list(repo.blocks.iter_cids()) == []
    assert repo.pins.list() == []
