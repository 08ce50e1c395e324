"""Network benchmark on 4 node processes (loopback): publish-to-R-replicas latency for a
--size MiB world (R=2), and world-record propagation latency p50/p99 over --records updates.
The reference is one admin round trip to a node (the floor of what the polling can see).

    .venv/bin/python bench/bench_network.py [--size 10] [--records 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account

from fluxnode.chain.records import sign_record
from fluxnode.node.admin import admin_request
from fluxnode.storage.repo import Repo

ROOT = Path(__file__).resolve().parents[1]
FLUX = str(Path(sys.executable).with_name("flux-node"))
EXAMPLE = ROOT / "docs" / "examples" / "hello-world"


def start(d: Path, config: str, *extra: str) -> tuple[subprocess.Popen[bytes], dict]:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.toml").write_text(config)
    proc = subprocess.Popen(
        [
            FLUX,
            "run",
            "--data-dir",
            str(d),
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-gateway",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not (d / "node.json").exists():
        time.sleep(0.05)
    return proc, json.loads((d / "node.json").read_text())


def pinned(d: Path) -> set[str]:
    return {p.cid for p in Repo(d).pins.list() if (p.name or "").startswith("world:")}


async def seen(d: Path, cid: str) -> bool:
    worlds = (await admin_request(d, "GET", "/v0/worlds"))["worlds"]
    return any(w["cid"] == cid for w in worlds)


def main(size: int, n_records: int) -> None:
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp:
        t = Path(tmp)
        try:
            a, a_info = start(t / "a", "[hosting]\ninterval = 0.2\n")
            procs.append(a)
            auto = '[hosting]\nmode = "auto"\nreplication = 2\ninterval = 0.2\ngrace = 0\n'
            others = []
            for name in ("b", "c", "d"):
                p, _ = start(t / name, auto, "--bootstrap", a_info["addrs"][0])
                procs.append(p)
                others.append(t / name)
            time.sleep(3)  # meshes form
            world = t / "world"
            shutil.copytree(EXAMPLE, world)
            (world / "big.bin").write_bytes(os.urandom(size << 20))
            owner = Account.create()
            key = t / "owner.key"
            key.write_text(owner.key.hex())
            key.chmod(0o600)
            start_t = time.perf_counter()
            out = subprocess.run(
                [
                    FLUX,
                    "publish",
                    "--data-dir",
                    str(t / "a"),
                    str(world),
                    "--slug",
                    "bench",
                    "--key-file",
                    str(key),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            published = time.perf_counter()
            cid = json.loads(out.stdout)["cid"]
            first_seq = json.loads(out.stdout)["seq"]
            while sum(cid in pinned(d) for d in others) < 2:
                time.sleep(0.02)
            replicated = time.perf_counter()
            print(
                f"world {size} MiB: publish command {published - start_t:.2f} s, then "
                f"{replicated - published:.2f} s until 2 replicas pinned it "
                f"({replicated - start_t:.2f} s end to end)"
            )

            async def propagation() -> list[float]:
                lat: list[float] = []
                ref: list[float] = []
                for seq in range(first_seq + 1, first_seq + 1 + n_records):
                    rec = sign_record(
                        world_id=f"{owner.address.lower()}/bench",
                        cid=cid,
                        seq=seq,
                        visibility="public",
                        issued_at=int(time.time()),
                        account=owner,
                    )
                    t0 = time.perf_counter()
                    await admin_request(
                        t / "a", "POST", "/v0/publish", {"record": rec.to_wire().decode()}
                    )
                    pending = set(others)
                    while pending:
                        for d in list(pending):
                            worlds = (await admin_request(d, "GET", "/v0/worlds"))["worlds"]
                            if any(w["seq"] == seq for w in worlds):
                                lat.append(time.perf_counter() - t0)
                                pending.discard(d)
                    t1 = time.perf_counter()
                    await admin_request(t / "b", "GET", "/v0/worlds")
                    ref.append(time.perf_counter() - t1)
                print(f"one admin round trip (reference): {statistics.median(ref) * 1000:.1f} ms")
                return lat

            lat = sorted(asyncio.run(propagation()))
            p50, p99 = statistics.median(lat), lat[min(len(lat) - 1, int(0.99 * len(lat)))]
            print(
                f"record propagation to 3 nodes ({len(lat)} samples): p50 {p50 * 1000:.0f} ms, "
                f"p99 {p99 * 1000:.0f} ms (goal < 1 s)"
            )
        finally:
            for p in procs:
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGTERM)
            for p in procs:
                p.wait(15)
    print(
        f"peak RSS (bench process) "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=10)
    ap.add_argument("--records", type=int, default=30)
    args = ap.parse_args()
    main(args.size, args.records)
