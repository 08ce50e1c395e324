"""Network benchmark on 4 node processes (loopback), repeated on --runs fresh clusters.

Each run starts a publisher `a` (explicit hosting) and three `auto` nodes b, c, d (replication
R=2) bootstrapped to it, publishes a world of the example plus --size MiB from `a`, and measures
1. the `flux-node publish` command's wall time;
2. the time until the world has the R holders the replication planner targets. The planner
   counts every live holder, the publisher included: its targets are the top R of {a, b, c, d}
   by the planner's own rendezvous rank (core.replication.rank). So if `a` ranks in the top R,
   ONE other node pins and the world is done; waiting for two of b, c, d would wait forever;
3. world-record propagation: --records signed updates posted to `a`; for each, the time until
   each of b, c, d lists the new seq (polled over the admin socket, so a figure can be late by
   up to one poll of the three nodes). Reference: one admin round trip to a node, the floor of
   what the polling can see, measured between records.
Figures: median and min-max over the runs of the per-run p50 and p99, and p50/p99 of all
samples pooled. Every wait has a deadline; the whole bench has --timeout.

    .venv/bin/python bench/bench_network.py [--size 10] [--records 30] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from harness import Bench

from fluxnode.chain.records import sign_record
from fluxnode.core.replication import rank
from fluxnode.node.admin import admin_request
from fluxnode.storage.repo import Repo

ROOT = Path(__file__).resolve().parents[1]
FLUX = str(Path(sys.executable).with_name("flux-node"))
EXAMPLE = ROOT / "docs" / "examples" / "hello-world"
R = 2
AUTO = f'[hosting]\nmode = "auto"\nreplication = {R}\ninterval = 0.2\ngrace = 0\n'


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def start(bench: Bench, d: Path, config: str, *extra: str) -> dict[str, Any]:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.toml").write_text(config)
    argv = [FLUX, "run", "--data-dir", str(d), "--listen", "/ip4/127.0.0.1/tcp/0", "--no-gateway"]
    with (d.parent / f"{d.name}.log").open("w") as log:
        proc = bench.track(subprocess.Popen([*argv, *extra], stdout=log, stderr=subprocess.STDOUT))
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"node {d.name} exited {proc.returncode}; see {d.parent}")
        try:
            return json.loads((d / "node.json").read_text())
        except (FileNotFoundError, ValueError):
            bench.check_time(f"node {d.name} to start")
            time.sleep(0.05)


def pinned(d: Path) -> set[str]:
    return {p.cid for p in Repo(d).pins.list() if (p.name or "").startswith("world:")}


def one_run(bench: Bench, t: Path, size: int, n_records: int) -> dict[str, Any]:
    nodes = {"a": t / "a", "b": t / "b", "c": t / "c", "d": t / "d"}
    info = {"a": start(bench, nodes["a"], "[hosting]\ninterval = 0.2\n")}
    for name in "bcd":
        info[name] = start(bench, nodes[name], AUTO, "--bootstrap", info["a"]["addrs"][0])
    time.sleep(3)  # meshes form
    world = t / "world"
    shutil.copytree(EXAMPLE, world)
    (world / "big.bin").write_bytes(os.urandom(size << 20))
    owner = Account.create()
    key = t / "owner.key"
    key.write_text(owner.key.hex())
    key.chmod(0o600)
    argv = [FLUX, "publish", "--data-dir", str(nodes["a"]), str(world), "--slug", "bench"]
    start_t = time.perf_counter()
    out = subprocess.run(
        [*argv, "--key-file", str(key)], capture_output=True, text=True, check=True, timeout=300
    )
    published = time.perf_counter()
    cid, first_seq = json.loads(out.stdout)["cid"], json.loads(out.stdout)["seq"]
    by_rank = sorted(nodes, key=lambda n: rank(info[n]["peer_id"], cid))
    targets = by_rank[:R]
    while not all(cid in pinned(nodes[n]) for n in targets):
        bench.check_time(f"the planner's targets {targets} to pin {cid}")
        time.sleep(0.02)
    replicated = time.perf_counter()
    holders = [n for n in nodes if cid in pinned(nodes[n])]
    print(
        f"  run: rank order {', '.join(by_rank)} -> targets {targets}; publish "
        f"{published - start_t:.2f} s, {replicated - start_t:.2f} s from its start until they "
        f"pinned (holders now {holders})",
        flush=True,
    )

    async def propagation() -> tuple[list[float], list[float]]:
        lat: list[float] = []
        ref: list[float] = []
        others = [nodes[n] for n in "bcd"]
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
                nodes["a"], "POST", "/v0/publish", {"record": rec.to_wire().decode()}
            )
            pending = set(others)
            while pending:
                bench.check_time(f"record seq {seq} to reach {sorted(p.name for p in pending)}")
                for d in list(pending):
                    worlds = (await admin_request(d, "GET", "/v0/worlds"))["worlds"]
                    if any(w["seq"] == seq for w in worlds):
                        lat.append(time.perf_counter() - t0)
                        pending.discard(d)
            t1 = time.perf_counter()
            await admin_request(nodes["b"], "GET", "/v0/worlds")
            ref.append(time.perf_counter() - t1)
        return lat, ref

    lat, ref = asyncio.run(propagation())
    return {
        "publish_s": published - start_t,
        "replicas_s": replicated - start_t,
        "targets": targets,
        "a_targeted": "a" in targets,
        "lat": lat,
        "ref": ref,
    }


def main(args: argparse.Namespace) -> None:
    (ROOT / "build").mkdir(exist_ok=True)
    runs: list[dict[str, Any]] = []
    with Bench("bench_network", timeout_s=args.timeout, runs=args.runs) as bench:
        bench.notes.update(size_mib=args.size, records=args.records, replication=R)
        for i in range(args.runs):
            with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp:
                bench.scratch.append(Path(tmp))
                try:
                    runs.append(one_run(bench, Path(tmp), args.size, args.records))
                except (TimeoutError, subprocess.SubprocessError, SystemExit) as exc:
                    for log in sorted(Path(tmp).glob("*.log")):
                        tail = log.read_text(errors="replace").splitlines()[-5:]
                        print(f"--- last lines of {log.name}:", *tail, sep="\n  ")
                    raise SystemExit(f"bench_network: run {i + 1} failed: {exc}") from None
                finally:
                    bench.stop_all()
                    bench.scratch.remove(Path(tmp))
            print(f"run {i + 1}/{args.runs} done", flush=True)
        ms = 1000.0
        bench.figures(
            f"`flux-node publish` of the example world + {args.size} MiB",
            [r["publish_s"] for r in runs],
            "s",
            fmt=".2f",
        )
        bench.figures(
            f"publish start -> the planner's {R} target holders pinned (end to end)",
            [r["replicas_s"] for r in runs],
            "s",
            fmt=".2f",
        )
        print(
            f"  the publisher was one of the targets in {sum(r['a_targeted'] for r in runs)} runs"
        )
        p50 = [statistics.median(r["lat"]) * ms for r in runs]
        rtt = [statistics.median(r["ref"]) * ms for r in runs]
        bench.compare(
            f"record propagation p50 per run (to each of 3 nodes, {args.records} records)",
            "propagation p50",
            p50,
            "admin round trip p50",
            rtt,
            "ms",
            higher_is_better=False,
        )
        bench.figures(
            "record propagation p99 per run",
            [percentile(r["lat"], 0.99) * ms for r in runs],
            "ms",
            goal="< 200 ms",
            fmt=".0f",
        )
        pooled = [x * ms for r in runs for x in r["lat"]]
        print(
            f"record propagation, all {len(pooled)} samples pooled: p50 "
            f"{statistics.median(pooled):.0f} ms, p99 {percentile(pooled, 0.99):.0f} ms"
        )
        bench.record(
            "record propagation pooled",
            unit="ms",
            samples=len(pooled),
            p50=statistics.median(pooled),
            p99=percentile(pooled, 0.99),
        )
        bench.finish()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=10, help="MiB added to the example world")
    ap.add_argument("--records", type=int, default=30, help="record updates per run")
    ap.add_argument("--runs", type=int, default=5, help="fresh 4-node clusters")
    ap.add_argument("--timeout", type=float, default=900, help="seconds for the whole bench")
    main(ap.parse_args())
