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

KILLS_PER_COMMAND = 12


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


def test_sigkill_during_add_pin_and_gc_leaves_a_consistent_store(tmp_path: Path) -> None:
    rng = random.Random(1234)
    d = tmp_path / "node"
    assert run_cli("init", "--data-dir", str(d)).returncode == 0
    files = []
    for i in range(KILLS_PER_COMMAND):
        f = tmp_path / f"in{i}.bin"
        f.write_bytes(rng.randbytes(8 * 1024 * 1024 + i))
        files.append(f)

    start = time.monotonic()
    assert run_cli("add", "--data-dir", str(d), "-q", "--no-pin", str(files[0])).returncode == 0
    full = time.monotonic() - start  # process start + import of one file, to spread kill points

    killed = finished = 0
    for i, f in enumerate(files):
        # add: killed somewhere between interpreter start and the pin commit
        rc = _kill_at([FLUX, "add", "--data-dir", str(d), "-q", str(f)], rng.uniform(0.05, full))
        killed += rc is None
        finished += rc == 0
        _verify(d)

        # pin add of a DAG that is fully stored but not pinned yet
        out = run_cli("add", "--data-dir", str(d), "-q", "--no-pin", "--cid-version", "1", str(f))
        cid = out.stdout.strip().splitlines()[-1]
        rc = _kill_at([FLUX, "pin", "add", "--data-dir", str(d), cid], rng.uniform(0.05, full))
        killed += rc is None
        _verify(d)

        if i % 3 == 0:  # gc, with unpinned blocks around to delete
            rc = _kill_at([FLUX, "gc", "--data-dir", str(d)], rng.uniform(0.05, full))
            killed += rc is None
            _verify(d)

    assert killed >= 20, f"only {killed} of the runs were killed mid-way; spread the kill points"
    # After all that, gc and every pinned file still reads back intact.
    assert run_cli("gc", "--data-dir", str(d)).returncode == 0
    report = _verify(d)
    assert report["blocks"] > 0
    pins = [
        json.loads(line) for line in run_cli("pin", "ls", "--data-dir", str(d)).stdout.splitlines()
    ]
    for pin in pins:
        out = subprocess.run(
            [FLUX, "cat", "--data-dir", str(d), pin["cid"]],
            capture_output=True,
            env=clean_env(),
            timeout=120,
        )
        assert out.returncode == 0
        assert any(len(out.stdout) == f.stat().st_size for f in files)
