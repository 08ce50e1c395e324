"""SIGKILL at random points during `add`, `pin add` and `gc`: the store must verify clean after.

"Clean" means `flux-node repo verify` finds no block that fails its hash and no pin whose DAG
is incomplete, whatever instant the process died at.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import FLUX, clean_env, run_cli

pytestmark = pytest.mark.slow

TARGET_KILLS = 24
MAX_ROUNDS = 80


def _kill_at(argv: list[str], delay: float) -> int | None:
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env()
    )
    try:
        proc.wait(delay)
        return proc.returncode  # finished before the kill point
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def _verify(d: Path) -> dict:
    out = run_cli("repo", "verify", "--data-dir", str(d))
    report = json.loads(out.stdout)
    assert out.returncode == 0, report
    assert report["corrupted"] == []
    assert report["incomplete_pins"] == []
    return report


def _duration(argv: list[str]) -> float:
    start = time.monotonic()
    assert subprocess.run(argv, capture_output=True, env=clean_env(), timeout=120).returncode == 0
    return time.monotonic() - start


def test_sigkill_during_add_pin_and_gc_leaves_a_consistent_store(tmp_path: Path) -> None:
    rng = random.Random(1234)
    d = tmp_path / "node"
    dd = ["--data-dir", str(d)]
    assert run_cli("init", *dd).returncode == 0
    files = []
    for i in range(8):
        f = tmp_path / f"in{i}.bin"
        f.write_bytes(rng.randbytes(8 * 1024 * 1024 + i))
        files.append(f)

    # How long each command takes when left alone, so kill points land inside its run.
    add_time = _duration([FLUX, "add", *dd, "-q", "--no-pin", str(files[0])])
    probe = run_cli("add", *dd, "-q", "--no-pin", "--cid-version", "1", str(files[0]))
    pin_time = _duration([FLUX, "pin", "add", *dd, probe.stdout.strip()])
    gc_time = _duration([FLUX, "gc", *dd])

    kills = {"add": 0, "pin": 0, "gc": 0}
    for round_no in range(MAX_ROUNDS):
        if sum(kills.values()) >= TARGET_KILLS:
            break
        f = files[round_no % len(files)]
        which = ("add", "pin", "gc")[round_no % 3]
        if which == "add":
            argv = [FLUX, "add", *dd, "-q", "--cid-version", str(round_no % 2), str(f)]
            full = add_time
        elif which == "pin":
            out = run_cli("add", *dd, "-q", "--no-pin", "--cid-version", "1", str(f))
            argv = [FLUX, "pin", "add", *dd, out.stdout.strip()]
            full = pin_time
        else:
            run_cli("add", *dd, "-q", "--no-pin", str(f))  # something unpinned for gc to delete
            argv = [FLUX, "gc", *dd]
            full = gc_time
        if _kill_at(argv, rng.uniform(0.05, 0.95 * full)) is None:
            kills[which] += 1
        _verify(d)

    assert sum(kills.values()) >= 20, kills
    assert min(kills.values()) >= 3, kills
    # After all that, gc and every pinned file still reads back intact.
    assert run_cli("gc", *dd).returncode == 0
    report = _verify(d)
    assert report["blocks"] > 0
    pins = [json.loads(line) for line in run_cli("pin", "ls", *dd).stdout.splitlines()]
    sizes = {f.stat().st_size for f in files}
    for pin in pins:
        out = subprocess.run(
            [FLUX, "cat", *dd, pin["cid"]], capture_output=True, env=clean_env(), timeout=120
        )
        assert out.returncode == 0
        assert len(out.stdout) in sizes
