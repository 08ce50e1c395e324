"""WebSocket visitors benchmark: N visitors in one world on one node, clients in another process.

Per run, a fresh `flux-node run` (gateway on 127.0.0.1:0, `[session] max_visitors` raised to
fit N) with a public world of maxPlayers 100 published by `flux-node publish`: an instance holds
min(maxPlayers, 100) visitors, so N visitors fill N/100 instances of the one world. The clients
(bench/ws_load.py, one asyncio process) sign in over `/ws`, join, and acknowledge frames as the
real client does; `--movers` of every 100 send a transform at 10 Hz for `--window` seconds.

Figures, node vs reference, `--runs` alternating pairs after a warm-up pair, ratio pair by pair:
  memory per visitor   (VmRSS of the server with N connected - VmRSS before any) / N, KiB
  message latency p99  a mover's transform stamped when sent -> first seen by each observer
and, per side, the server's peak RSS (VmHWM of its own process, from /proc) and how long the N
took to get in. The reference (in the same run, same clients, same N) is a bare aiohttp
WebSocket broadcast server (ws_load.py `ref`): rooms of 100 by arrival, one frame per room and
tick with the changed transforms. It has no sign-in, access checks or per-viewer deltas, so it is
the floor of what an aiohttp server in Python pays per connection and per tick here.

A run whose observers got no latency sample at all measured nothing: it is printed as FAILED
and its pair is left out of every figure (its p99 would otherwise read as 0.0 ms, the best of
all); when no pair is left the bench exits non-zero.

    .venv/bin/python bench/bench_ws.py [--visitors 1000] [--runs 5] [--window 10] [--movers 10]
        [--observers 100] [--timeout 3600]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sessions_cluster as sc
from harness import Bench

ROOT = Path(__file__).resolve().parents[1]
LOAD = str(Path(__file__).with_name("ws_load.py"))
ROOM = 100  # min(maxPlayers, 100): the most an instance seats
TICK_HZ = 10


def rss_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def drive(bench: Bench, spec: dict[str, Any], server_pid: int, timeout: float) -> dict[str, Any]:
    """Run the clients against the server at `spec["url"]`; the clients' figures plus the
    server's memory before the clients, with all of them in, and at its peak."""
    time.sleep(1.0)  # let the server settle after start-up before the baseline
    before = rss_kib(server_pid)
    proc = bench.track(
        subprocess.Popen(
            [sys.executable, LOAD, "clients", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    assert proc.stdin is not None and proc.stdout is not None
    deadline = time.monotonic() + timeout
    try:
        if proc.stdout.readline().strip() != "READY":
            err = proc.stderr.read() if proc.stderr else ""
            raise SystemExit(f"clients failed before their window:\n{err[-3000:]}")
        joined = rss_kib(server_pid)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line.startswith("{"):
            err = proc.stderr.read() if proc.stderr else ""
            raise SystemExit(f"clients failed in their window:\n{err[-3000:]}")
        result: dict[str, Any] = json.loads(line)
        after = rss_kib(server_pid)
        proc.stdin.write("bye\n")
        proc.stdin.flush()
        if time.monotonic() > deadline:
            raise TimeoutError(f"the clients ran past {timeout:.0f} s")
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            print("  note: the clients took over 30 s to exit; stopped", flush=True)
    finally:
        bench.stop(proc)
    n = int(spec["visitors"])
    result.update(
        rss_before_mib=before["VmRSS"] / 1024,
        rss_joined_mib=joined["VmRSS"] / 1024,
        rss_after_mib=after["VmRSS"] / 1024,
        peak_mib=after["VmHWM"] / 1024,
        kib_per_visitor=(after["VmRSS"] - before["VmRSS"]) / n,
    )
    return result


def node_run(bench: Bench, args: argparse.Namespace, t: Path) -> Callable[[], dict[str, Any]]:
    count = [0]

    def run() -> dict[str, Any]:
        count[0] += 1
        d = t / f"node{count[0]}"
        config = f"[session]\nmax_visitors = {args.visitors + ROOM}\ntick_hz = {TICK_HZ}\n"
        node = sc.start_node(bench, d, config=config)
        try:
            pub = t / f"publish{count[0]}"
            pub.mkdir()
            world = sc.publish_world(bench, pub, node, ROOM)
            sc.wait_for_world(bench, [node], world)
            spec = {**base_spec(args), "target": "node", "url": f"{node.url}/ws", "world": world}
            r = drive(bench, spec, node.pid, 120 + args.window + args.visitors / 5)
            r["log_tracebacks"] = (t / f"node{count[0]}.log").read_text().count("Traceback")
        finally:
            bench.stop(node.proc)
        show("node", r)
        return r

    return run


def ref_run(bench: Bench, args: argparse.Namespace) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        argv = [sys.executable, LOAD, "ref", str(ROOM), str(TICK_HZ)]
        proc = bench.track(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True))
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            spec = {**base_spec(args), "target": "ref", "url": f"http://127.0.0.1:{port}/ws"}
            r = drive(bench, spec, proc.pid, 60 + args.window + args.visitors / 20)
        finally:
            bench.stop(proc)
        show("reference", r)
        return r

    return run


def base_spec(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "visitors": args.visitors,
        "room": ROOM,
        "movers": args.movers,
        "observers": args.observers,
        "hz": 10.0,
        "window_s": args.window,
    }


def failed(r: dict[str, Any]) -> bool:
    """A run whose observers got no sample has no latency figure: it measured nothing (a
    p99 of 0.0 ms would pass for the best run of all)."""
    return not r["samples"] or r["p99_ms"] is None


def show(side: str, r: dict[str, Any]) -> None:
    p99 = "(none)" if r["p99_ms"] is None else f"{r['p99_ms']:.1f} ms"
    print(
        f"  {side}{': FAILED, no latency samples' if failed(r) else ''}: "
        f"{r['kib_per_visitor']:.1f} KiB/visitor (RSS {r['rss_before_mib']:.0f} -> "
        f"{r['rss_after_mib']:.0f} MiB, peak {r['peak_mib']:.0f} MiB), p99 {p99} over "
        f"{r['samples']} samples, in after {r['join_s']:.1f} s, closed by server "
        f"{r['closed_by_server']}",
        flush=True,
    )


def main(args: argparse.Namespace) -> None:
    (ROOT / "build").mkdir(exist_ok=True)
    with (
        Bench("bench_ws", timeout_s=args.timeout, runs=args.runs) as bench,
        tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp,
    ):
        t = Path(tmp)
        bench.scratch.append(t)
        bench.notes.update(
            visitors=args.visitors, window_s=args.window, movers_per_100=args.movers,
            observers=args.observers, tick_hz=TICK_HZ, room=ROOM,
        )  # fmt: skip
        print(f"{args.visitors} visitors, {args.movers} of every {ROOM} moving at 10 Hz")
        every_ours, every_ref = bench.alternate(node_run(bench, args, t), ref_run(bench, args))
        bench.record(
            "dropped and tracebacks (every run)",
            node_closed=[r["closed_by_server"] for r in every_ours],
            ref_closed=[r["closed_by_server"] for r in every_ref],
            node_tracebacks=[r["log_tracebacks"] for r in every_ours],
        )
        # Figures are compared pair by pair: a pair with a failed run in it is left out whole.
        pairs = [(a, b) for a, b in zip(every_ours, every_ref, strict=True)
                 if not failed(a) and not failed(b)]  # fmt: skip
        bench.notes["failed_runs"] = {"node": sum(map(failed, every_ours)),
                                      "ref": sum(map(failed, every_ref))}  # fmt: skip
        if len(pairs) < len(every_ours):
            left_out = len(every_ours) - len(pairs)
            print(f"  {left_out} of {len(every_ours)} pairs left out: a run in them measured "
                  "no latency sample (its observers saw no move)", flush=True)  # fmt: skip
        if not pairs:
            bench.finish()
            raise SystemExit("bench_ws: every run failed (no latency samples): no figures")
        ours, ref = [a for a, _ in pairs], [b for _, b in pairs]
        for key, label, unit, fmt in (
            ("kib_per_visitor", "server memory per visitor", "KiB", ".1f"),
            ("p99_ms", "message latency p99", "ms", ".1f"),
        ):
            bench.compare(
                f"{label} ({args.visitors} visitors)",
                "node",
                [r[key] for r in ours],
                "aiohttp broadcast",
                [r[key] for r in ref],
                unit,
                higher_is_better=False,
                fmt=fmt,
            )
        bench.figures("node peak RSS (VmHWM)", [r["peak_mib"] for r in ours], "MiB")
        bench.figures("reference peak RSS (VmHWM)", [r["peak_mib"] for r in ref], "MiB")
        bench.figures("node: time for all to sign in and join", [r["join_s"] for r in ours], "s")
        bench.finish()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--visitors", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--window", type=float, default=10.0, help="seconds measured per run")
    ap.add_argument("--movers", type=int, default=10, help="movers in every 100 visitors")
    ap.add_argument("--observers", type=int, default=100, help="visitors measuring latency")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds for the whole bench")
    main(ap.parse_args())
