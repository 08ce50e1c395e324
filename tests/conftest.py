"""Shared test helpers: run the real `flux-node` CLI and real node processes on loopback.

Every process a test starts is tracked and stopped by PID when the test ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Property tests check behaviour, not speed: hypothesis's per-example deadline (200 ms) turns a
# busy CI machine into failures, so it is off for the whole suite.
settings.register_profile("flux", deadline=None)
settings.load_profile("flux")

FLUX = str(Path(sys.executable).with_name("flux-node"))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUX_")}
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLUX, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else clean_env(),
        input=input,
    )


def snapshot(path: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `path` with its mode and bytes: to prove a command changed nothing."""
    if not path.exists():
        return {}
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(path))] = (st.st_mode, p.read_bytes() if p.is_file() else b"")
    return out


@dataclass
class NodeProc:
    data_dir: Path
    proc: subprocess.Popen[str]
    log_path: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> dict[str, Any]:
        node_json = self.data_dir / "node.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"node exited with {self.proc.returncode}:\n{self.log()}")
            if node_json.exists():
                try:
                    self.info = json.loads(node_json.read_text())
                    return self.info
                except ValueError:
                    pass  # being replaced right now; atomic rename makes the next read whole
            time.sleep(0.05)
        raise AssertionError(f"node not ready after {timeout} s:\n{self.log()}")

    def terminate(self, timeout: float = 10.0) -> float:
        """SIGTERM by PID; returns seconds until exit. Kills (and fails) if it hangs."""
        start = time.monotonic()
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired as exc:
                self.proc.kill()
                self.proc.wait()
                message = f"node ignored SIGTERM for {timeout} s:\n{self.log()}"
                raise AssertionError(message) from exc
        return time.monotonic() - start


class NodeFactory:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.nodes: list[NodeProc] = []

    def start(
        self, name: str, *args: str, env: dict[str, str] | None = None, gateway: bool = False
    ) -> NodeProc:
        data_dir = self.tmp_path / name
        log_path = self.tmp_path / f"{name}.log"
        argv = [FLUX, "run", "--data-dir", str(data_dir), "--listen", "/ip4/127.0.0.1/tcp/0"]
        argv += ["--gateway", "127.0.0.1:0"] if gateway else ["--no-gateway"]
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                argv + list(args),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env or clean_env(),
                text=True,
            )
        node = NodeProc(data_dir, proc, log_path)
        self.nodes.append(node)
        return node

    def stop_all(self) -> None:
        for node in self.nodes:
            if node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[NodeFactory]:
    factory = NodeFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()
