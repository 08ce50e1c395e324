"""Progress of long operations (add, publish, pin, car import, replication fetch) for a person
watching a terminal: one line on stderr, redrawn in place.

Only when stderr is a terminal: piped or redirected output, and JSON logs, stay exactly as
they are without it. The operations themselves know nothing of terminals; they take a plain
callback (`progress(done)`), and this module is what the CLI and the daemon hand them.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

#: Seconds between redraws: often enough to look alive, rare enough to cost nothing.
REDRAW_S = 0.1


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


class StatusLine:
    """The one line being redrawn on a terminal. Log records written while it is shown first
    clear it and then draw it again below themselves (see `keep_below_logs`)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _isatty(self.stream)
        self.text = ""

    def show(self, text: str) -> None:
        if self.enabled:
            self.text = text
            self.stream.write(f"\r{text}\x1b[K")
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled and self.text:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def finish(self) -> None:
        """Leave the last state on screen and move to a new line."""
        if self.enabled and self.text:
            self.stream.write("\n")
            self.stream.flush()
            self.text = ""

    def keep_below_logs(self, handler: logging.Handler) -> None:
        """Wrap `handler` (writing to the same terminal) so a log line never lands in the
        middle of the progress line."""
        if not self.enabled:
            return
        emit = handler.emit

        def emit_around(record: logging.LogRecord) -> None:
            self.clear()
            emit(record)
            if self.text:
                self.stream.write(f"\r{self.text}\x1b[K")
                self.stream.flush()

        handler.emit = emit_around  # type: ignore[method-assign]


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a real stream
        return False


class Progress:
    """`progress(done)` with the amount done so far (bytes or blocks); redrawn at most every
    REDRAW_S seconds. Does nothing unless its line is on a terminal."""

    def __init__(
        self,
        what: str,
        *,
        unit: str = "bytes",
        total: int | None = None,
        line: StatusLine | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.unit, self.total = what, unit, total
        self.line = line if line is not None else StatusLine()
        self.done = 0
        self._clock = clock
        self._drawn_at = -REDRAW_S

    @property
    def enabled(self) -> bool:
        return self.line.enabled

    def __call__(self, done: int) -> None:
        self.done = done
        if self.line.enabled and self._clock() - self._drawn_at >= REDRAW_S:
            self._draw()

    def add(self, n: int) -> None:
        self(self.done + n)

    def _draw(self) -> None:
        self._drawn_at = self._clock()
        self.line.show(f"{self.what}: {self.describe()}")

    def describe(self) -> str:
        fmt = _human if self.unit == "bytes" else (lambda n: f"{n:,} {self.unit}")
        if self.total:
            share = min(100.0, 100 * self.done / self.total)
            return f"{fmt(self.done)} of {fmt(self.total)} ({share:.0f}%)"
        return fmt(self.done)

    def close(self) -> None:
        """Draw the final count (if anything was shown or done) and end the line."""
        if self.line.enabled and self.done:
            self._draw()
        self.line.finish()


class CountingReader:
    """A binary stream that reports the bytes read through it (for CAR import)."""

    def __init__(self, stream: IO[bytes], progress: Callable[[int], None]) -> None:
        self._stream = stream
        self._progress = progress
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self.count += len(data)
        self._progress(self.count)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        n = self._stream.readinto(buffer)  # type: ignore[attr-defined]
        self.count += n or 0
        self._progress(self.count)
        return int(n or 0)


class FetchMeter:
    """Replication fetches as the running node sees them: blocks arriving over Bitswap are
    counted (`block`), and a progress line runs while a world is fetched (`fetching`). Blocks
    stored outside a fetch are counted in the totals only."""

    def __init__(self, line: StatusLine | None = None) -> None:
        self.line = line
        self.blocks = 0
        self.bytes = 0
        self._current: Progress | None = None

    def block(self, nbytes: int) -> None:
        self.blocks += 1
        self.bytes += nbytes
        if self._current is not None:
            self._current.add(nbytes)

    @contextmanager
    def fetching(self, what: str) -> Iterator[None]:
        if self.line is None or not self.line.enabled or self._current is not None:
            yield  # not on a terminal, or another fetch already owns the line
            return
        self._current = Progress(f"fetching {what}", line=self.line)
        try:
            yield
        finally:
            self._current.close()
            self._current = None
