"""Node cold start to readiness (median of N) and idle RSS, against `python -c "import libp2p"`.

Readiness is the moment `node.json` appears (written after the host listens and the admin
socket and gateway are up). The reference is the bare cost of importing py-libp2p in a fresh
interpreter, measured in the same run, so the ratio shows what our start adds on top of it.

    .venv/bin/python bench/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def one_start(base: Path, i: int) -> tuple[float, float, float, float]:
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
    try:
        while not (data / "node.json").exists():
            if proc.poll() is not None:
                raise SystemExit(f"node exited with {proc.returncode}")
            time.sleep(0.005)
        ready = time.perf_counter() - t
        time.sleep(2.0)  # idle
        idle, peak = rss_mib(proc.pid), peak_rss_mib(proc.pid)
        t = time.perf_counter()
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)
        stop = time.perf_counter() - t
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return ready, idle, peak, stop


def main(runs: int) -> None:
    ref = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import libp2p"], check=True)
        ref.append(time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        results = [one_start(Path(tmp), i) for i in range(runs)]
    ready = statistics.median(r[0] for r in results)
    idle = statistics.median(r[1] for r in results)
    peak = max(r[2] for r in results)
    stop = statistics.median(r[3] for r in results)
    ref_med = statistics.median(ref)
    print(f"cold start to ready   median {ready * 1000:7.0f} ms  (n={runs})")
    print(f"python -c 'import libp2p'  {ref_med * 1000:7.0f} ms  (reference)")
    print(f"  ratio start/reference: {ready / ref_med:.2f}x")
    print(f"SIGTERM to exit       median {stop * 1000:7.0f} ms")
    print(f"idle RSS median {idle:.1f} MiB; peak RSS {peak:.1f} MiB")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    main(ap.parse_args().runs)
