"""Node cold start to readiness and idle RSS, against `python -c "import libp2p"`, alternated.

Readiness is the moment `node.json` appears (written after the host listens and the admin
socket and gateway are up). The reference is the bare cost of importing py-libp2p in a fresh
interpreter, measured in the same run, so the ratio shows what our start adds on top of it.

    .venv/bin/python bench/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import Bench, timed

FLUX = str(Path(sys.executable).with_name("flux-node"))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_start(bench: Bench, base: Path, i: int) -> tuple[float, float, float, float]:
    data = base / f"n{i}"
    subprocess.run([FLUX, "init", "--data-dir", str(data)], check=True, capture_output=True)
    t = time.perf_counter()
    proc = subprocess.Popen(
        [
            FLUX,
            "run",
            "--data-dir",
            str(data),
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--gateway",
            "127.0.0.1:0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bench.track(proc)
    try:
        while not (data / "node.json").exists():
            if proc.poll() is not None:
                raise SystemExit(f"node exited with {proc.returncode}")
            bench.check_time("the node to start")
            time.sleep(0.005)
        ready = time.perf_counter() - t
        time.sleep(2.0)  # idle
        idle, peak = rss_mib(proc.pid), peak_rss_mib(proc.pid)
        t = time.perf_counter()
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)
        stop = time.perf_counter() - t
    finally:
        bench.stop(proc)
    return ready, idle, peak, stop


def main(args: argparse.Namespace) -> None:
    with Bench("bench_startup", timeout_s=args.timeout, runs=args.runs) as bench:
        with tempfile.TemporaryDirectory() as tmp:
            bench.scratch.append(Path(tmp))
            counter = iter(range(10_000))
            results: list[tuple[float, float, float, float]] = []

            def ours() -> float:
                results.append(one_start(bench, Path(tmp), next(counter)))
                return results[-1][0] * 1000

            def ref() -> float:
                argv = [sys.executable, "-c", "import libp2p"]
                return timed(lambda: subprocess.run(argv, check=True)) * 1000

            bench.pair(
                "cold start to ready (node.json written) vs `python -c 'import libp2p'`",
                ("flux-node run", ours),
                ("import libp2p", ref),
                "ms",
                higher_is_better=False,
                fmt=".0f",
            )
            del results[0]  # the warm-up
            bench.figures("SIGTERM to exit", [r[3] * 1000 for r in results], "ms", fmt=".0f")
            bench.figures("idle VmRSS after 2 s", [r[1] for r in results], "MiB")
            bench.figures("VmHWM (peak RSS) at idle", [r[2] for r in results], "MiB")
        bench.finish()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=600, help="seconds for the whole bench")
    main(ap.parse_args())
