"""Counting the block store (`status`, the quota's first check), against a full walk of it.

A store of --blocks blocks (default 200,000 small ones, spread over the 1,024 shard folders as
real CIDs are) is built once under build/. Then, alternated pair by pair:

  BlockStore.stats() on a handle that counted before (what a running node's `status` does:
  unchanged shards are taken from the last count, storage/shard_tally.py)
                                 vs  reading every block file's size (os.scandir + stat of
                                     each entry: what every count cost before)
  the same after one new block  vs  the same walk (one shard is read again)
  a fresh handle's first count   vs  the same walk (nothing kept yet: should be ~1x)

Figures are milliseconds per count (lower is better); the ratio is ours / the walk, pair by
pair, so below 1 means ours is faster. The store's shards were last changed more than
`RACY_NS` before the counts (the bench waits that long after building), as on any node whose
store is not being written that very second.

    .venv/bin/python bench/bench_store_count.py [--blocks 200000] [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path

from harness import Bench, timed

from fluxnode.core.cid import RAW, Cid
from fluxnode.storage.blockstore import BlockStore
from fluxnode.storage.shard_tally import RACY_NS

ROOT = Path(__file__).resolve().parents[1]


def walk(root: Path) -> tuple[int, int]:
    blocks = nbytes = 0
    for shard in os.scandir(root):
        if not shard.is_dir(follow_symlinks=False) or shard.name.startswith("."):
            continue
        for entry in os.scandir(shard.path):
            if entry.name.endswith(".data"):
                with contextlib.suppress(FileNotFoundError):
                    nbytes += entry.stat().st_size
                    blocks += 1
    return blocks, nbytes


def main(args: argparse.Namespace) -> None:
    (ROOT / "build").mkdir(exist_ok=True)
    with (
        Bench("bench_store_count", timeout_s=args.timeout, runs=args.runs) as bench,
        tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp,
    ):
        bench.scratch.append(Path(tmp))
        root = Path(tmp) / "blocks"
        store = BlockStore(root)
        t = time.perf_counter()
        for i in range(args.blocks):
            data = i.to_bytes(8, "big") * 8
            store.put(Cid.hash_block(data, 1, RAW), data)
        store.flush()
        print(f"  (built {args.blocks} blocks in {time.perf_counter() - t:.1f} s)")
        time.sleep(RACY_NS / 1e9 + 0.5)
        bench.notes.update(blocks=args.blocks)
        expected = walk(root)
        first = store.stats()
        if (first.blocks, first.bytes) != expected:
            raise SystemExit(f"counts differ: {first} vs walk {expected}")

        def ms(fn: object) -> float:
            return 1000 * timed(fn)  # type: ignore[arg-type]

        bench.pair(
            "count of an unchanged store, ms",
            ("BlockStore.stats kept", lambda: ms(store.stats)),
            ("walk", lambda: ms(lambda: walk(root))),
            "ms",
            higher_is_better=False,
        )
        seq = iter(range(1 << 30))

        def after_one_put() -> float:
            data = b"new" + next(seq).to_bytes(8, "big")
            store.put(Cid.hash_block(data, 1, RAW), data)
            # The shard just changed is racy now: it is read again until RACY_NS has passed.
            return ms(store.stats)

        bench.pair(
            "count right after one new block, ms",
            ("BlockStore.stats, 1 new", after_one_put),
            ("walk", lambda: ms(lambda: walk(root))),
            "ms",
            higher_is_better=False,
        )
        bench.pair(
            "first count of a fresh handle, ms",
            ("BlockStore.stats fresh", lambda: ms(BlockStore(root).stats)),
            ("walk", lambda: ms(lambda: walk(root))),
            "ms",
            higher_is_better=False,
        )
        bench.finish()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--blocks", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=900, help="seconds for the whole bench")
    main(ap.parse_args())
