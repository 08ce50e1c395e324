"""Replication benchmark: a world of --size MiB fetched over Bitswap between two of our nodes,
against Helia -> Helia on the same file in the same run. Plus record propagation latency.

Ours: node A is a `flux-node run` process holding the world; node B (this process) fetches the
whole DAG with `bitswap_fetch`, verifying and storing every block. Reference: a Helia process
serving the same file and another Helia process fetching and verifying it.

    .venv/bin/python bench/bench_replication.py [--size 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fluxnode.core.cid import Cid  # noqa: E402
from fluxnode.node.answers import NodeAnswers  # noqa: E402
from fluxnode.p2p import HostClient, HostSettings, generate_private_key  # noqa: E402
from fluxnode.storage.repo import Repo  # noqa: E402
from tests.interop import jsref  # noqa: E402

FLUX = str(Path(sys.executable).with_name("flux-node"))


def main(size_mib: int) -> None:
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp:
        t = Path(tmp)
        src = t / "world.bin"
        with src.open("wb") as fh:
            for _ in range(size_mib):
                fh.write(os.urandom(1 << 20))

        # reference: Helia -> Helia
        peer = jsref.helia_bitswap_serve(src, cid_version=1)
        try:
            start = time.perf_counter()
            ref = jsref.helia_bitswap_fetch(peer.multiaddr, peer.cid, timeout=600)
            ref_s = time.perf_counter() - start
        finally:
            peer.stop()
        ref_inner = ref["ms"] / 1000

        # ours: flux-node A (separate process) -> B (this process)
        a_dir = t / "a"
        subprocess.run(
            [FLUX, "add", "--data-dir", str(a_dir), "-q", "--cid-version", "1", str(src)],
            check=True,
            capture_output=True,
        )
        proc = subprocess.Popen(
            [
                FLUX,
                "run",
                "--data-dir",
                str(a_dir),
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--no-gateway",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while not (a_dir / "node.json").exists():
                time.sleep(0.05)
            info = json.loads((a_dir / "node.json").read_text())
            cid = subprocess.run(
                [FLUX, "add", "--only-hash", "--cid-version", "1", str(src)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            assert cid == peer.cid, (cid, peer.cid)
            ours_s, blocks = asyncio.run(fetch(t / "b", info["addrs"][0], cid))
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(10)
        print(f"world {size_mib} MiB, {blocks} blocks, CID {cid}")
        print(
            f"Helia -> Helia: {ref_s:.2f} s wall ({size_mib / ref_s:.0f} MiB/s), "
            f"{ref_inner:.2f} s inside the fetcher ({size_mib / ref_inner:.0f} MiB/s)"
        )
        print(f"flux -> flux:   {ours_s:.2f} s ({size_mib / ours_s:.0f} MiB/s)")
        print(
            f"  ratio (Helia time / ours, goal >= 1.0): wall {ref_s / ours_s:.2f}x, "
            f"vs Helia's inner fetch time {ref_inner / ours_s:.2f}x"
        )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


async def fetch(data_dir: Path, addr: str, cid: str) -> tuple[float, int]:
    repo = Repo(data_dir)
    settings = HostSettings(
        private_key=generate_private_key(), listen=("/ip4/127.0.0.1/tcp/0",), bitswap=True
    )
    host = HostClient(settings, NodeAnswers(repo))  # as the daemon answers: one Repo
    await host.start()
    try:
        start = time.perf_counter()
        blocks = await host.bitswap_fetch(Cid.parse(cid), [addr])
        took = time.perf_counter() - start
    finally:
        await host.aclose()
    assert sum(len(c) for c in repo.cat(Cid.parse(cid), [])) > 0
    return took, int(blocks)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=100)
    main(ap.parse_args().size)
