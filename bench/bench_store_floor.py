"""The storing import against the same leaf work done in C: how much the interpreter costs.

For a file of --size MiB (default 256), CIDv1 (raw leaves, so a leaf's block is its chunk),
alternated pair by pair, each run into a new blocks folder with its 1,024 shard folders made
beforehand ("a repo in use", see bench_import.py) and kept to the end:

  Repo.add (in process)          vs  bench/store_floor.c on as many threads as the import
                                     uses: per 256 KiB leaf, pread, sha256 (OpenSSL), stat,
                                     temp file write + sync_file_range, link, unlink; one
                                     syncfs at the end; no DAG, no pin, no quota
  the C floor                    vs  writing the same bytes to a new file + fsync (the
                                     reference of bench_import.py's storing goal)

The second pair says how close one-file-per-block storage can come to that reference on this
machine at all; the first, how much of the rest is ours. The C floor writes exactly the block
files the import writes (checked once: same file names). Each series is primed as in
bench_import.py. Needs gcc and OpenSSL's headers (Debian's libssl-dev; installed by the bench
with apt-get when missing and running as root).

    .venv/bin/python bench/bench_store_floor.py [--size 256] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench_import import make_file, make_shards, prime_memory, read_back, write_fsync
from harness import Bench, timed

from fluxnode.storage.leaves import HASH_THREADS
from fluxnode.storage.repo import Repo

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "bench" / "store_floor.c"


def build_floor(out: Path) -> Path:
    if not Path("/usr/include/openssl/sha.h").exists() and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "-q", "libssl-dev"]
        if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            subprocess.run(cmd, env=env, capture_output=True, check=True)
    exe = out / "store_floor"
    subprocess.run(
        ["gcc", "-O2", "-pthread", "-o", str(exe), str(SOURCE), "-lcrypto"],
        check=True,
    )
    return exe


def block_names(blocks: Path) -> set[str]:
    return {
        f"{shard.name}/{f.name}"
        for shard in blocks.iterdir()
        if shard.is_dir() and not shard.name.startswith(".")
        for f in shard.iterdir()
        if f.name.endswith(".data")
    }


def main(args: argparse.Namespace) -> None:
    mib = args.size
    (ROOT / "build").mkdir(exist_ok=True)
    with (
        Bench("bench_store_floor", timeout_s=args.timeout, runs=args.runs) as bench,
        tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp,
    ):
        t = Path(tmp)
        bench.scratch.append(t)
        exe = build_floor(t)
        src = t / "input.bin"
        make_file(src, mib)
        read_back(src)
        bench.notes.update(size_mib=mib, threads=HASH_THREADS)
        seq = iter(range(1 << 30))

        def ours() -> float:
            repo = Repo(t / f"repo-{next(seq)}")
            make_shards(repo.blocks.root)
            return mib / timed(lambda: repo.add(src, cid_version=1))

        def floor() -> float:
            blocks = t / f"floor-{next(seq)}"
            blocks.mkdir()
            make_shards(blocks)
            cmd = [str(exe), str(blocks), str(src), str(HASH_THREADS)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            return mib / (float(out) / 1000)

        def write_new() -> float:
            return mib / timed(lambda: write_fsync(src, t / f"copy-{next(seq)}.bin"))

        # Same block files both ways, or the floor measures something else.
        check = Repo(t / "check")
        check.add(src, cid_version=1)
        floor_dir = t / "floor-check"
        floor_dir.mkdir()
        subprocess.run([str(exe), str(floor_dir), str(src)], capture_output=True, check=True)
        leaves = block_names(floor_dir)
        if not leaves or not leaves <= block_names(check.blocks.root):
            raise SystemExit("the C floor wrote block files the import does not")

        prime_memory(t / "prime.bin", 2 * mib * (args.runs + 1))
        bench.pair(
            "CIDv1 storing import (repo in use) vs the same leaf work in C, MiB/s",
            ("Repo.add CIDv1", ours),
            (f"C floor, {HASH_THREADS} threads", floor),
            "MiB/s",
        )
        prime_memory(t / "prime.bin", 2 * mib * (args.runs + 1))
        bench.pair(
            "the C floor vs write+fsync of a new file, MiB/s",
            (f"C floor, {HASH_THREADS} threads", floor),
            ("write+fsync new file", write_new),
            "MiB/s",
        )
        bench.finish()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=256, help="MiB")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=900, help="seconds for the whole bench")
    main(ap.parse_args())
