"""The devnet's child processes: recorded by PID as they start, stopped by process group.

Every child runs as the leader of its own process group (`process_group=0`), so signalling the
group reaches anything it started too, and a terminal's Ctrl-C reaches only the supervisor.
`Children.record` rewrites DIR/pids.json after each start, so a devnet killed before it could
clean up leaves a list that the next run (`reap_leftovers`) stops, after checking each PID's
command line: a PID the system has since given to another program is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluxnode.atomicfile import atomic_write
from fluxnode.core.errors import ConfigError, DevnetError
from fluxnode.node import devnet_plan as plan

STOP_GRACE_S = 10.0
PIDS_FILE = "pids.json"


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[Any]
    expect: list[str]  # words of its command line (see devnet_plan.is_our_leftover)
    log: Path | None = None

    def describe_exit(self) -> str:
        tail = ""
        if self.log is not None and self.log.exists():
            lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
            tail = f"; last log line: {lines[-1][-300:]}" if lines else ""
            tail += f"; see {self.log}"
        return f"{self.name} exited with {self.proc.returncode}{tail}"


@dataclass
class Children:
    dir: Path
    started: list[Child] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)  # names `newly_exited` has reported

    def record(self, child: Child) -> None:
        self.started.append(child)
        rows = [{"name": c.name, "pid": c.proc.pid, "expect": c.expect} for c in self.started]
        doc = {"pid": os.getpid(), "children": rows}
        atomic_write(self.dir / PIDS_FILE, (json.dumps(doc, indent=2) + "\n").encode())

    def check_alive(self) -> None:
        for child in self.started:
            if child.proc.poll() is not None:
                raise DevnetError(child.describe_exit())

    def newly_exited(self) -> list[Child]:
        """The children that exited since the last call: each is reported once."""
        out = [c for c in self.started if c.proc.poll() is not None and c.name not in self.gone]
        self.gone |= {c.name for c in out}
        return out

    def stop(self, *, last: str) -> None:
        """Stop every child, the one named `last` (the chain) after all the others."""
        stop_groups([c.proc for c in self.started if c.name != last])
        stop_groups([c.proc for c in self.started if c.name == last])
        with contextlib.suppress(FileNotFoundError):
            (self.dir / PIDS_FILE).unlink()


def reap_leftovers(dir: Path) -> int:
    """Stop what an earlier supervisor, killed before it could clean up, left running; returns
    how many processes that was."""
    path = dir / PIDS_FILE
    try:
        doc = json.loads(path.read_text())
        entries = [(int(c["pid"]), [str(w) for w in c["expect"]]) for c in doc["children"]]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return 0
    stopped = 0
    for pid, expect in entries:
        if plan.is_our_leftover(cmdline(pid), expect):
            say(f"stopping pid {pid}, left running by an earlier devnet in {dir}")
            stopped += 1
            signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            while cmdline(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            signal_group(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return stopped


def stop_groups(procs: list[subprocess.Popen[Any]]) -> None:
    """SIGTERM every process group, wait up to STOP_GRACE_S for all, SIGKILL what is left."""
    for proc in procs:
        if proc.poll() is None:
            signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        # The group may outlive its leader. While any member lives its id cannot be reused,
        # and an empty group makes killpg fail harmlessly.
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait()


def signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [w.decode(errors="replace") for w in raw.split(b"\0") if w]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((plan.HOST, 0))
        return int(s.getsockname()[1])


def check_port_free(flag: str, port: int) -> None:
    with socket.socket() as s:
        try:
            s.bind((plan.HOST, port))
        except OSError:
            raise ConfigError(
                flag, f"{plan.HOST}:{port} is in use (another devnet or node?); pick another"
            ) from None


def child_env() -> dict[str, str]:
    # The devnet configures its nodes through their config.toml; a FLUX_* variable of the
    # caller's shell (FLUX_DATA_DIR, FLUX_GATEWAY, ...) would silently override it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUX_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def one_line(exc: object) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]


def say(message: str) -> None:
    print(f"devnet: {message}", file=sys.stderr, flush=True)
