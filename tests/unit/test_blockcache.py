"""The verified-block cache (storage/blockcache.py) and the pins' cached answers (storage/pins.py):
bounded, and never trusted past a change on disk or in the pin database."""

from __future__ import annotations

import io
import os
import random
import time
from pathlib import Path

import pytest

from fluxnode.core.cid import RAW, Cid
from fluxnode.core.content import FileRegion
from fluxnode.core.errors import BlockCorrupted, BlockNotFound
from fluxnode.storage import pins as pins_module
from fluxnode.storage.blockcache import BlockCache, VerifiedFile
from fluxnode.storage.repo import Repo


def later() -> float:
    """A clock past the racy window of every file the test writes."""
    return time.time() + 60


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "data")


def put(repo: Repo, data: bytes) -> Cid:
    cid = Cid.hash_block(data, 1, RAW)
    repo.blocks.put(cid, data)
    # Old times, as for any block written more than a clock tick ago: a change shows in mtime.
    os.utime(repo.blocks.path_for(cid), (1_000_000, 1_000_000))
    return cid


def overwrite_in_place(repo: Repo, cid: Cid) -> None:
    path = repo.blocks.path_for(cid)
    raw = bytearray(path.read_bytes())
    raw[0] ^= 0xFF
    with path.open("r+b") as fh:
        fh.write(bytes(raw))


def replace_file(repo: Repo, cid: Cid) -> None:
    path = repo.blocks.path_for(cid)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(bytes(raw))
    os.replace(tmp, path)


def test_a_block_is_hashed_once_then_remembered(repo: Repo) -> None:
    cid = put(repo, b"remember me")
    cache = BlockCache(repo.blocks, now=later)
    assert cache.get(cid) == b"remember me"
    assert cache.get(cid) == b"remember me"
    stats = cache.statistics()
    assert (stats.hashed, stats.skipped_hashes, stats.entries) == (1, 1, 1)


def test_a_fresh_block_is_hashed_every_time(repo: Repo) -> None:
    cid = Cid.hash_block(b"just written", 1, RAW)
    repo.blocks.put(cid, b"just written")
    cache = BlockCache(repo.blocks)  # the real clock: the file's ctime is within the racy window
    cache.get(cid, keep=True)
    cache.get(cid, keep=True)
    stats = cache.statistics()
    assert (stats.hashed, stats.entries, stats.kept_blocks) == (2, 0, 0)
    assert cache.cached(cid) is None


@pytest.mark.parametrize("corrupt", [overwrite_in_place, replace_file])
def test_a_block_corrupted_after_it_was_verified_fails_closed(repo: Repo, corrupt: object) -> None:
    cid = put(repo, random.Random(1).randbytes(5000))
    cache = BlockCache(repo.blocks, now=later)
    cache.get(cid, keep=True)
    found = cache.verified_file(cid)
    assert isinstance(found, VerifiedFile)
    assert cache.cached(cid) is not None
    with open(found.path, "rb") as sending:
        assert found.unchanged(sending)
        corrupt(repo, cid)  # type: ignore[operator]
        if corrupt is overwrite_in_place:
            assert not found.unchanged(sending)  # a send already under way is cut
    with open(found.path, "rb") as reopened:
        assert not found.unchanged(reopened)
    assert cache.cached(cid) is None
    with pytest.raises(BlockCorrupted):
        cache.get(cid, keep=True)
    with pytest.raises(BlockCorrupted):
        cache.verified_file(cid)
    assert cache.statistics().entries == 0


def test_a_removed_block_is_not_served_from_memory(repo: Repo) -> None:
    cid = put(repo, b"gone soon")
    cache = BlockCache(repo.blocks, now=later)
    cache.get(cid, keep=True)
    repo.blocks.delete(cid)
    assert cache.cached(cid) is None
    with pytest.raises(BlockNotFound):
        cache.get(cid)


def test_memory_is_bounded(repo: Repo) -> None:
    rng = random.Random(2)
    cids = [put(repo, rng.randbytes(1000)) for _ in range(40)]
    cache = BlockCache(repo.blocks, max_entries=10, max_bytes=5000, max_block=2000, now=later)
    for cid in cids:
        cache.get(cid, keep=True)
    stats = cache.statistics()
    assert stats.entries == 10
    assert stats.kept_bytes <= 5000 and stats.kept_blocks == 5
    big = put(repo, rng.randbytes(3000))
    cache.get(big, keep=True)
    assert cache.cached(big) is None  # larger than max_block: verified, not kept
    assert cache.statistics().kept_bytes <= 5000


def test_an_unpin_through_another_handle_is_seen_at_once(tmp_path: Path) -> None:
    server, cli = Repo(tmp_path / "data"), Repo(tmp_path / "data")
    cid = server.add(io.BytesIO(b"pinned")).cid  # type: ignore[arg-type]
    assert server.pins.is_servable(cid)  # cached now
    assert cli.pins.remove(cid) == 1
    assert not server.pins.is_servable(cid)
    cli.pins.add(cid, recursive=False)
    assert server.pins.is_servable(cid)
    assert server.pins.direct_multihashes() == {cid.multihash}
    cli.pins.remove(cid)
    assert server.pins.direct_multihashes() == frozenset()


def test_an_unpin_through_the_same_handle_is_seen_at_once(repo: Repo) -> None:
    cid = repo.add(io.BytesIO(b"pinned")).cid  # type: ignore[arg-type]
    assert repo.pins.is_servable(cid)
    repo.pins.remove(cid)
    assert not repo.pins.is_servable(cid)


def test_cached_pin_answers_are_bounded(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pins_module, "MAX_CACHED_ANSWERS", 8)
    for i in range(30):
        repo.pins.is_servable(Cid(1, RAW, bytes([0x12, 0x20]) + bytes([i]) * 32))
    assert len(repo.pins._read_cache().servable) == 8


def test_a_file_read_step_by_step_in_other_threads_asks_each_thread_s_own_pins(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    import concurrent.futures

    from fluxnode.storage.content import RepoContent

    monkeypatch.setattr(pins_module, "MAX_CACHED_ANSWERS", 1)  # every answer asked again
    data = random.Random(3).randbytes(5 * 256 * 1024)
    root = repo.add(io.BytesIO(data), cid_version=1).cid  # type: ignore[arg-type]
    repo.pins.add(root, recursive=False)  # direct too: its leaves are checked one by one
    content = RepoContent(repo, BlockCache(repo.blocks, now=later))
    with (
        concurrent.futures.ThreadPoolExecutor(1) as first,
        concurrent.futures.ThreadPoolExecutor(1) as second,
    ):
        parts = first.submit(content.read, root, 0, None).result()
        got = second.submit(lambda: [materialize(p) for p in parts]).result()
    assert b"".join(got) == data


def materialize(part: bytes | FileRegion) -> bytes:
    if isinstance(part, bytes):
        return part
    with open(part.path, "rb") as fh:
        assert part.verified(fh)
        fh.seek(part.offset)
        return fh.read(part.count)
