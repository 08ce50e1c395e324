"""Live-session benchmark: node processes on loopback, visitors from separate load generators.

1. Crowd (3 nodes). `flux-node run` x 3 (gateways on 127.0.0.1:0, bootstrapped to the first),
   a public world with maxPlayers 100 published from the first with `flux-node publish`, and
   --visitors (100) visitors spread round-robin over the 3 nodes, all driven by ONE load
   generator process (bench/sessions_load.py: a lean client, see its docstring), each moving at
   10 Hz. Figures per run: end-to-end transform latency (send of transform k of visitor v ->
   another visitor first sees it) p50/p99 overall and split same-node / cross-node; CPU seconds
   per node process over the window (/proc/PID/stat utime+stime) as % of one core; the time the
   node spent runnable but waiting for a CPU (/proc/PID/task/*/schedstat: the machine's other
   load); bytes received per visitor per second (WebSocket payloads). Run with everyone within
   ~10 m ("near": every transform, every tick) and spread over a 200 m square ("spread": the
   distance tiers send farther visitors every 2nd/4th tick, or not at all beyond 100 m), the two
   alternated pair by pair. Reference: a loopback WebSocket echo through aiohttp (a separate
   process), measured by the load generator at the start of each run: the floor of one hop.
2. Big node (1 node): --big visitors (up to 1,000) in instances of 100 of one world, at 10 Hz,
   from --loadgens processes whose measuring windows start together; p99 latency (over a sample
   of observers) and the node's CPU. No outside reference: absolute figures.
3. Warm joins and convergence (the crowd's cluster, the real `fluxnode.client.Visitor`):
   sign-in + join latency on a running node (sequential) and joins/s (concurrent); a door click
   on node A until the visitors on B and C see the new state. Absolute figures.

    .venv/bin/python bench/bench_sessions.py [--runs 5] [--visitors 100] [--window 10]
        [--big 1000] [--loadgens 2] [--only crowd,big,join] [--tick-hz 10] [--timeout 3600]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import sessions_cluster as sc
import sessions_join as sj
from harness import Bench
from sessions_report import report_big, report_crowd, report_joins

ROOT = Path(__file__).resolve().parents[1]
NEAR_M, SPREAD_M = 7.0, 200.0  # a 7 m square: every pair within 10 m (circles of 0.5 m)


def node_config(args: argparse.Namespace, max_visitors: int) -> str:
    return f"[session]\nmax_visitors = {max_visitors}\ntick_hz = {args.tick_hz}\n"


def crowd_and_joins(bench: Bench, args: argparse.Namespace, t: Path, only: set[str]) -> None:
    nodes = sc.cluster(bench, t, "abc", node_config(args, 1000))
    time.sleep(3)  # gossip meshes form
    world = sc.publish_world(bench, t, nodes[0], 100)
    sc.wait_for_world(bench, nodes, world)
    _, echo_url = sc.start_echo(bench)
    print(f"3 nodes up, world {world} known to all", flush=True)
    base = {
        "nodes": [{"url": n.url, "pid": n.pid} for n in nodes],
        "world": world,
        "visitors": args.visitors,
        "window_s": args.window,
        "echo_url": echo_url,
    }
    per_run = 60 + 2 * args.window + args.visitors / 5

    def run(layout: str, spread: float) -> Any:
        def go() -> dict[str, Any]:
            r = sc.run_loads(bench, [{**base, "spread_m": spread}], per_run)[0]
            print(
                f"  {layout}: p50 {r['all']['p50']:.0f} ms p99 {r['all']['p99']:.0f} ms, "
                f"instances {r['instances']}, CPU "
                + " ".join(f"{c / r['window_s']:.0%}" for c in r["node_cpu_s"]),
                flush=True,
            )
            return r

        return go

    if "crowd" in only:
        near, spread = bench.alternate(run("near", NEAR_M), run("spread", SPREAD_M))
        report_crowd(bench, near, spread, args.visitors)
    if "join" in only:
        js = [
            asyncio.run(sj.joins(nodes[0].url, world, args.joins, args.concurrent))
            for _ in range(bench.runs)
        ]
        urls = [n.url for n in nodes]
        cv = [asyncio.run(sj.convergence(urls, world, args.clicks)) for _ in range(bench.runs)]
        report_joins(bench, js, cv, args)
    bench.stop_all()


def big(bench: Bench, args: argparse.Namespace, t: Path) -> None:
    # A visitor that disconnects keeps its seat for the 30 s reconnect window, and counts
    # against the node's limit meanwhile: room for the next run's visitors too.
    (node,) = sc.cluster(bench, t, "z", node_config(args, 3 * args.big))
    world = sc.publish_world(bench, t, node, 100)
    sc.wait_for_world(bench, [node], world)
    per = args.big // args.loadgens
    specs = [
        {
            "nodes": [{"url": node.url, "pid": node.pid}],
            "world": world,
            "visitors": per,
            "observers": max(1, args.observers // args.loadgens),
            "window_s": args.window,
            "spread_m": NEAR_M,
            "join_concurrency": 8,
            "seed": i,
        }
        for i in range(args.loadgens)
    ]
    results = []
    for i in range(bench.runs):
        rs = sc.run_loads(bench, specs, 120 + 2 * args.window + args.big / 5)
        results.append(rs)
        p99 = max(r["all"]["p99"] or 0 for r in rs)
        cpu = rs[0]["node_cpu_s"][0] / rs[0]["window_s"]
        print(f"  big run {i + 1}: p99 {p99:.0f} ms, node CPU {cpu:.0%}", flush=True)
    report_big(bench, results, args)
    bench.stop_all()


def main(args: argparse.Namespace) -> None:
    (ROOT / "build").mkdir(exist_ok=True)
    only = set(args.only.split(","))
    with Bench("bench_sessions", timeout_s=args.timeout, runs=args.runs) as bench:
        bench.notes.update(
            visitors=args.visitors, window_s=args.window, tick_hz=args.tick_hz, big=args.big,
            loadgens=args.loadgens, client="lean (sessions_load.py); joins: Visitor",
        )  # fmt: skip
        if only & {"crowd", "join"}:
            with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp:
                bench.scratch.append(Path(tmp))
                try:
                    crowd_and_joins(bench, args, Path(tmp), only)
                finally:
                    bench.stop_all()
                    bench.scratch.remove(Path(tmp))
        if "big" in only:
            with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp:
                bench.scratch.append(Path(tmp))
                try:
                    big(bench, args, Path(tmp))
                finally:
                    bench.stop_all()
                    bench.scratch.remove(Path(tmp))
        bench.finish()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--visitors", type=int, default=100, help="crowd: visitors over 3 nodes")
    ap.add_argument("--window", type=float, default=10.0, help="seconds measured per run")
    ap.add_argument("--tick-hz", type=int, default=10, help="the nodes' [session] tick_hz")
    ap.add_argument("--big", type=int, default=1000, help="big node: visitors on one node")
    ap.add_argument("--loadgens", type=int, default=2, help="big node: load generator processes")
    ap.add_argument("--observers", type=int, default=100, help="big node: visitors measuring")
    ap.add_argument("--joins", type=int, default=30, help="sequential joins per run")
    ap.add_argument("--concurrent", type=int, default=50, help="concurrent joins per run")
    ap.add_argument("--clicks", type=int, default=20, help="door clicks per convergence run")
    ap.add_argument("--only", default="crowd,join,big", help="which parts to run")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds for the whole bench")
    main(ap.parse_args())
