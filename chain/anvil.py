"""A local anvil chain for tests and devnets (never for production).

`start_anvil()` runs the anvil binary that `scripts/setup-npm.sh` installs from npm into
`contracts/node_modules` (see `fluxnode.contracts.anvil_binary`), listening on 127.0.0.1 only, on
the given port (0 = a free one, read back from its "Listening on 127.0.0.1:PORT" line). Its output
is drained by a thread into a bounded buffer (`AnvilProcess.output()`), so it never blocks on a
full pipe. `stop()` ends it by PID (SIGTERM, then SIGKILL). Its funded dev accounts are the
well-known public ones derived from "test test ... junk": test/devnet only.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

from fluxnode.contracts import anvil_binary
from fluxnode.core.errors import AnvilError as AnvilError  # re-exported

__all__ = [
    "ANVIL_DEV_KEY_0",
    "AnvilError",
    "AnvilProcess",
    "start_anvil",
]

HOST = "127.0.0.1"
# Anvil's public dev account #0 (0xf39F...2266), funded on every anvil chain. Tests/devnet only.
ANVIL_DEV_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

_LISTENING = re.compile(r"^Listening on 127\.0\.0\.1:(\d{1,5})\s*$")
_OUTPUT_LINES = 400


class AnvilProcess:
    """A running anvil; a context manager that stops it on exit."""

    def __init__(self, proc: subprocess.Popen[str], chain_id: int) -> None:
        self._proc = proc
        self.chain_id = chain_id
        self.host = HOST
        self.port = 0
        self._lines: collections.deque[str] = collections.deque(maxlen=_OUTPUT_LINES)
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._drain, name="anvil-output", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def running(self) -> bool:
        return self._proc.poll() is None

    def output(self) -> str:
        """The last few hundred lines anvil printed."""
        return "".join(list(self._lines))

    def _drain(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        for line in stdout:
            self._lines.append(line)
            if not self._listening.is_set():
                match = _LISTENING.match(line)
                if match:
                    self.port = int(match.group(1))
                    self._listening.set()

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.02):
            if self._proc.poll() is not None:
                self._reader.join(1.0)
                if self._listening.is_set():
                    break
                raise AnvilError(
                    f"anvil exited with {self._proc.returncode} before listening:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise AnvilError(f"anvil not listening after {timeout} s:\n{self.output()}")
        if not 0 < self.port < 65536:
            self.stop()
            raise AnvilError(f"anvil reported a bad port {self.port}")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM by PID, then SIGKILL if it has not exited after `timeout` s. Idempotent."""
        proc = self._proc
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        self._reader.join(2.0)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> AnvilProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running() else f"exited {self._proc.returncode}"
        return f"<AnvilProcess pid={self.pid} {self.rpc_url} chain_id={self.chain_id} {state}>"


def start_anvil(
    port: int = 0,
    *,
    chain_id: int = 80002,
    block_time: float | None = None,
    hardfork: str = "prague",
    binary: Path | None = None,
    startup_timeout: float = 15.0,
    own_process_group: bool = False,
) -> AnvilProcess:
    """Start anvil on 127.0.0.1:`port` (0 = any free port) and wait until it listens.

    `block_time` None = mine a block per transaction (automine), else seconds between blocks.
    `binary` defaults to the npm-installed one (`fluxnode.contracts.anvil_binary()`).
    `own_process_group` starts it in a process group of its own, so a terminal's Ctrl-C reaches
    only its supervisor, which then stops it in order. Use as a context manager, or call `stop()`.
    """
    if not 0 <= port < 65536:
        raise ValueError(f"bad port {port}")
    if chain_id <= 0:
        raise ValueError(f"bad chain id {chain_id}")
    if block_time is not None and not block_time > 0:
        raise ValueError(f"block_time must be > 0 (or None for automine), got {block_time}")
    if not re.fullmatch(r"[a-z0-9]+", hardfork):
        raise ValueError(f"bad hardfork name {hardfork!r}")
    try:
        exe = binary if binary is not None else anvil_binary()
    except FileNotFoundError as exc:
        raise AnvilError(str(exc)) from None
    argv = [str(exe), "--host", HOST, "--port", str(port), "--chain-id", str(chain_id)]
    argv += ["--hardfork", hardfork, "--color", "never"]
    if block_time is not None:
        argv += ["--block-time", format(block_time, "g")]
    # ANVIL_IP_ADDR would only matter without --host; drop it anyway, and colours.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANVIL_")}
    env["NO_COLOR"] = "1"
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=env,
            process_group=0 if own_process_group else None,
        )
    except OSError as exc:
        raise AnvilError(f"cannot run {exe}: {exc}") from None
    anvil = AnvilProcess(proc, chain_id)
    try:
        anvil._wait_listening(startup_timeout)
    except BaseException:
        anvil.stop()  # also on KeyboardInterrupt: never leave it running
        raise
    return anvil
