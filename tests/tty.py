"""Run the `flux-node` CLI with stdout and/or stderr on a pseudo-terminal, the way a person at a
terminal runs it, to test what only a terminal shows (tables, progress lines)."""

from __future__ import annotations

import os
import pty
import subprocess
import tempfile
from dataclasses import dataclass

from tests.conftest import FLUX, clean_env


@dataclass(frozen=True)
class TtyRun:
    returncode: int
    #: What the terminal showed (the streams that were on it, interleaved; "\r\n" line ends).
    terminal: str
    stdout: str  # only when stdout was not the terminal
    stderr: str  # only when stderr was not the terminal


def run_cli_tty(
    *args: str,
    stdout_tty: bool = True,
    stderr_tty: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> TtyRun:
    master, slave = pty.openpty()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [FLUX, *args],
            stdin=subprocess.DEVNULL,
            stdout=slave if stdout_tty else out,
            stderr=slave if stderr_tty else err,
            env=env if env is not None else clean_env(),
        )
        os.close(slave)
        shown = bytearray()
        try:
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the terminal's other end closed it
                    break
                if not chunk:
                    break
                shown += chunk
        finally:
            os.close(master)
        rc = proc.wait(timeout)
        out.seek(0)
        err.seek(0)
        return TtyRun(
            rc,
            shown.decode(errors="replace"),
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


class TtyProcess:
    """A long-running `flux-node` (e.g. `run`) with stdout and stderr on a pseudo-terminal;
    what it shows is collected by a thread. Stop it with `terminate` (by PID)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        import threading

        self._master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [FLUX, *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            env=env if env is not None else clean_env(),
        )
        os.close(slave)
        self._shown = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self._shown += chunk

    @property
    def shown(self) -> str:
        with self._lock:
            return self._shown.decode(errors="replace")

    def terminate(self, timeout: float = 10.0) -> int:
        import signal

        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        os.close(self._master)
        return self.proc.returncode
