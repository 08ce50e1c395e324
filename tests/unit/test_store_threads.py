"""One Repo handle used from several threads at once: its bounds and shared state."""

from __future__ import annotations

import io
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from fluxnode.core.cid import RAW, Cid
from fluxnode.core.denylist import ContentDenied, Denylist
from fluxnode.storage import blockstore
from fluxnode.storage.blockstore import MAX_DIRTY_FILES, BlockHashMismatch, QuotaExceeded
from fluxnode.storage.repo import Repo

WAIT_S = 60.0


def raw(data: bytes) -> Cid:
    return Cid.hash_block(data, 1, RAW)


def run_all(targets: list[Any]) -> list[Any]:
    """Run each callable in its own thread; their results (or exceptions), in order."""
    out: list[Any] = [None] * len(targets)

    def run(i: int) -> None:
        try:
            out[i] = targets[i]()
        except Exception as exc:  # collected for the test's assertions
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
        assert not t.is_alive()
    return out


class WriteGate:
    """Holds every put at its file write until each of `n` threads has got there or been
    refused: so threads race exactly where a check-then-write gap would let them through."""

    def __init__(self, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = n
        self.arrived = self.refused = 0
        self.cond = threading.Condition()
        real = blockstore.write_all

        def write_all(fd: int, data: bytes) -> None:
            with self.cond:
                self.arrived += 1
                self.cond.notify_all()
                assert self.cond.wait_for(lambda: self.arrived + self.refused >= self.n, WAIT_S)
            real(fd, data)

        monkeypatch.setattr(blockstore, "write_all", write_all)

    def refuse(self) -> None:
        with self.cond:
            self.refused += 1
            self.cond.notify_all()


def test_quota_holds_for_threads_writing_at_once_on_one_handle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo(tmp_path / "d", quota_bytes=350_000)
    blocks = [bytes([i]) * 100_000 for i in range(8)]
    gate = WriteGate(len(blocks), monkeypatch)

    def put(data: bytes) -> Any:
        try:
            return repo.blocks.put(raw(data), data)
        except QuotaExceeded:
            gate.refuse()
            raise

    results = run_all([lambda d=d: put(d) for d in blocks])
    assert results.count(True) == 3
    assert all(isinstance(r, QuotaExceeded) for r in results if r is not True)
    assert repo.stat().bytes == 300_000 <= 350_000


def test_the_same_block_put_by_two_threads_is_written_and_counted_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo(tmp_path / "d", quota_bytes=10_000_000)
    data = b"x" * 100_000
    WriteGate(2, monkeypatch)
    results = run_all([lambda: repo.blocks.put(raw(data), data)] * 2)
    assert sorted(results) == [False, True]  # so a rollback of one never counts it as its own
    assert repo.blocks.total_size() == 100_000


def test_many_threads_putting_and_reading_keep_one_consistent_size(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "d", quota_bytes=1 << 30)
    # threads 0, 3, 6 (and 1, 4, 7 ...) write the same blocks: they race on each one
    per_thread = [
        [f"block {i % 120} of {t % 3}".encode() * 50 for i in range(150)] for t in range(8)
    ]
    results = run_all([lambda bs=bs: [repo.blocks.put(raw(b), b) for b in bs] for bs in per_thread])
    distinct = {b for bs in per_thread for b in bs}
    assert sum(r.count(True) for r in results) == len(distinct)
    assert repo.blocks.total_size() == repo.stat().bytes == sum(len(b) for b in distinct)
    assert all(repo.blocks.get(raw(b)) == b for b in distinct)


def test_dirty_state_stays_bounded_when_nobody_flushes(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "d")
    for i in range(3 * MAX_DIRTY_FILES + 7):
        data = i.to_bytes(4, "big")
        repo.blocks.put(raw(data), data)  # the p2p side's puts: never followed by a flush
    stats = repo.blocks.statistics()
    assert stats.dirty_files < MAX_DIRTY_FILES
    assert stats.flushes == 3


def test_each_thread_opens_one_sqlite_connection_and_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real = sqlite3.connect

    def connect(*a: Any, **kw: Any) -> sqlite3.Connection:
        opened.append(threading.current_thread().name)
        return real(*a, **kw)

    monkeypatch.setattr(sqlite3, "connect", connect)
    repo = Repo(tmp_path / "d")
    cid = repo.add(io.BytesIO(b"hello"), cid_version=1).cid  # type: ignore[arg-type]
    for _ in range(100):
        assert repo.pins.is_servable(cid)
    run_all([lambda: [repo.pins.is_servable(cid) for _ in range(100)]] * 4)
    assert len(opened) == 5  # this thread + 4 workers, however many queries each ran
    assert repo.pins.statistics().connections_opened == 5


def test_block_for_peer_serves_only_pinned_intact_allowed_blocks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    denied = raw(b"denied block")
    repo = Repo(tmp_path / "d", denylist=Denylist.parse(f"/ipfs/{denied}\n", "test.deny"))
    pinned = repo.add(io.BytesIO(b"pinned"), cid_version=1).cid  # type: ignore[arg-type]
    loose = repo.add(io.BytesIO(b"loose"), cid_version=1, pin=False).cid  # type: ignore[arg-type]
    assert repo.block_for_peer(pinned) == b"pinned"
    assert repo.is_servable(pinned) and not repo.is_servable(loose)
    assert repo.block_for_peer(loose) is None
    assert repo.block_for_peer(raw(b"absent")) is None
    repo.blocks.path_for(pinned).write_bytes(b"pinneX")
    with caplog.at_level(logging.WARNING, logger="fluxnode.storage.repo"):
        assert repo.block_for_peer(pinned) is None
    assert "corrupted" in caplog.text


def test_put_fetched_checks_denylist_and_hash_before_writing(tmp_path: Path) -> None:
    denied = raw(b"denied block")
    repo = Repo(tmp_path / "d", denylist=Denylist.parse(f"/ipfs/{denied}\n", "test.deny"))
    with pytest.raises(ContentDenied):
        repo.put_fetched(denied, b"denied block")
    with pytest.raises(BlockHashMismatch):
        repo.put_fetched(raw(b"good"), b"evil")
    assert repo.stat().blocks == 0
    assert repo.put_fetched(raw(b"good"), b"good") is True
    assert repo.put_fetched(raw(b"good"), b"good") is False
