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
