"""Progress lines: drawn in place on a terminal, throttled, kept below log lines, and nothing at
all when stderr is not a terminal."""

from __future__ import annotations

import io
import logging

from fluxnode.node.progress import CountingReader, FetchMeter, Progress, StatusLine


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_progress_redraws_one_line_in_place_at_most_every_tenth_of_a_second() -> None:
    out, clock = Tty(), Clock()
    p = Progress("importing", total=4 << 20, line=StatusLine(out), clock=clock)
    p(1 << 20)
    p(2 << 20)  # same instant: not redrawn
    clock.t = 0.2
    p(3 << 20)
    p.close()
    assert out.getvalue().split("\r")[1:] == [
        "importing: 1.0 MiB of 4.0 MiB (25%)\x1b[K",
        "importing: 3.0 MiB of 4.0 MiB (75%)\x1b[K",
        "importing: 3.0 MiB of 4.0 MiB (75%)\x1b[K\n",
    ]


def test_block_counts() -> None:
    out = Tty()
    p = Progress("pinning", unit="blocks verified", line=StatusLine(out))
    p(1234)
    p.close()
    assert out.getvalue().endswith("pinning: 1,234 blocks verified\x1b[K\n")


def test_nothing_is_written_when_the_stream_is_no_terminal() -> None:
    out = io.StringIO()
    p = Progress("importing", line=StatusLine(out))
    p(5)
    p.close()
    meter = FetchMeter(StatusLine(out))
    with meter.fetching("land:1"):
        meter.block(100)
    assert out.getvalue() == "" and meter.blocks == 1 and meter.bytes == 100


def test_a_log_line_is_printed_above_the_progress_line() -> None:
    out = Tty()
    line = StatusLine(out)
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    line.keep_below_logs(handler)
    log = logging.getLogger("fluxnode.test_progress")
    log.propagate = False
    log.addHandler(handler)
    try:
        meter = FetchMeter(line)
        with meter.fetching("land:1"):
            meter.block(2048)
            log.warning("peer went away")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    text = out.getvalue()
    # the progress line is cleared, the log line written, the progress line drawn again
    assert "\r\x1b[Kpeer went away\n\rfetching land:1: 2.0 KiB\x1b[K" in text
    assert text.endswith("\n") and meter.blocks == 1


def test_counting_reader_reports_bytes_read() -> None:
    seen: list[int] = []
    reader = CountingReader(io.BytesIO(b"abcdef"), seen.append)
    assert reader.read(2) + reader.read() == b"abcdef"
    assert seen == [2, 6] and reader.count == 6
