"""ShardTally: counts kept per shard folder, read again only when the folder changed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from fluxnode.core.cid import RAW, Cid
from fluxnode.storage.blockstore import BlockStore
from fluxnode.storage.shard_tally import RACY_NS, ShardTally

OLD_S = 1_000_000  # seconds since the epoch: a shard last changed long ago


def later_ns() -> int:
    """A count taken well after every change made so far (read at each call: the suite may run
    this module long after importing it)."""
    return time.time_ns() + 10 * RACY_NS


def make_store(tmp: Path) -> tuple[Path, list[Path]]:
    root = tmp / "blocks"
    shards = [root / "AA", root / "AB", root / "AC"]
    for i, shard in enumerate(shards):
        shard.mkdir(parents=True)
        for j in range(i + 1):
            (shard / f"K{i}{j}.data").write_bytes(b"x" * (10 * (i + 1)))
        (shard / "ignored.tmp").write_bytes(b"not a block")
        os.utime(shard, (OLD_S, OLD_S))
    return root, shards


def test_unchanged_shards_are_not_read_again(tmp_path: Path) -> None:
    _, shards = make_store(tmp_path)
    tally = ShardTally()
    assert tally.count(shards, later_ns()) == (6, 10 + 2 * 20 + 3 * 30)
    assert tally.last_read == 3
    assert tally.count(shards, later_ns()) == (6, 140)
    assert tally.last_read == 0


def test_a_block_added_or_removed_is_seen(tmp_path: Path) -> None:
    _, shards = make_store(tmp_path)
    tally = ShardTally()
    tally.count(shards, later_ns())
    (shards[0] / "NEW.data").write_bytes(b"y" * 7)  # the folder's mtime moves to now
    assert tally.count(shards, later_ns()) == (7, 147)
    assert tally.last_read == 1
    (shards[2] / "K20.data").unlink()
    assert tally.count(shards, later_ns()) == (6, 117)
    assert tally.last_read == 1


def test_a_renamed_in_block_is_seen(tmp_path: Path) -> None:
    # How BlockStore puts on a file system without hard links.
    root, shards = make_store(tmp_path)
    tally = ShardTally()
    tally.count(shards, later_ns())
    (root / "tmpfile").write_bytes(b"z" * 5)
    os.replace(root / "tmpfile", shards[1] / "MOVED.data")
    assert tally.count(shards, later_ns()) == (7, 145)


def test_a_shard_changed_just_before_its_count_is_read_again(tmp_path: Path) -> None:
    _, shards = make_store(tmp_path)
    mtime_ns = os.stat(shards[0]).st_mtime_ns
    tally = ShardTally()
    # Counted within RACY_NS of its last change: a change in the same tick could go unseen.
    tally.count(shards, mtime_ns + RACY_NS - 1)
    assert tally.count(shards, mtime_ns + RACY_NS - 1) == (6, 140)
    assert tally.last_read == 3
    tally.count(shards, mtime_ns + RACY_NS)
    assert tally.count(shards, later_ns()) == (6, 140)
    assert tally.last_read == 0


def test_a_shard_gone_since_the_listing_counts_nothing(tmp_path: Path) -> None:
    _, shards = make_store(tmp_path)
    tally = ShardTally()
    tally.count(shards, later_ns())
    for f in shards[2].iterdir():
        f.unlink()
    shards[2].rmdir()
    assert tally.count(shards, later_ns()) == (3, 50)
    assert tally.count(shards[:2], later_ns()) == (3, 50)
    assert tally.last_read == 0


def test_a_store_sees_blocks_another_handle_wrote(tmp_path: Path) -> None:
    mine = BlockStore(tmp_path / "blocks")
    other = BlockStore(tmp_path / "blocks")
    data = [bytes([i]) * (100 + i) for i in range(40)]
    for d in data[:20]:
        mine.put(Cid.hash_block(d, 1, RAW), d)
    assert mine.stats().blocks == 20
    for d in data[20:]:
        other.put(Cid.hash_block(d, 1, RAW), d)
    st = mine.stats()
    assert (st.blocks, st.bytes) == (40, sum(map(len, data)))
    other.delete(Cid.hash_block(data[0], 1, RAW))
    st = mine.stats()
    assert (st.blocks, st.bytes) == (39, sum(map(len, data[1:])))
