"""Shared helper for the benches: repeated runs, same-run references, a hard timeout, peak RSS.

Every bench builds one `Bench` and measures through it:

- `pair(...)` runs a measurement of ours (A) and of its reference (B) N >= 5 times, pair by
  pair, alternating the order (A B, B A, A B, ...) so neither side always runs on the warmer or
  quieter half of a pair. One discarded warm-up of each side comes first. It prints the median
  and min-max of each side and of the ratio A/B computed pair by pair: a ratio of medians would
  hide how much the machine moved between the two halves of one pair.
- `series(...)` is the same for a figure with no reference.
- `peak_rss(...)` runs a FRESH child under `/usr/bin/time` and reads its own ru_maxrss, next to
  the same child doing nothing (the interpreter baseline). Reading ru_maxrss of a child with
  `os.wait4` straight from the bench process is wrong on Linux: the kernel carries the parent's
  high-water mark over fork+exec into the child's figure, so a bench that holds 500 MiB would
  report every child at >= 500 MiB. `/usr/bin/time` is a small process, so what it reports is the
  child's own peak.
- A watchdog ends a bench that runs past its timeout: it prints why, kills every process the
  bench registered (by PID) and exits 124, instead of waiting forever.
- Load averages (and the busiest processes) are printed at the start and the end, so a reader
  can judge how noisy the run was; the last line of output is a JSON summary.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

TIMEOUT_EXIT = 124
MIN_RUNS = 5
T = TypeVar("T")

# Reaps the grandchild itself when /usr/bin/time is missing: this launcher is small, so the
# grandchild's ru_maxrss starts from the launcher's footprint, not the bench's.
_LAUNCHER = (
    "import os,sys,subprocess;p=subprocess.Popen(sys.argv[1:]);"
    "_,s,r=os.wait4(p.pid,0);print(r.ru_maxrss,os.waitstatus_to_exitcode(s))"
)


def loadavg() -> tuple[float, float, float]:
    return os.getloadavg()


def busiest(n: int = 5) -> list[str]:
    """The processes using the most CPU right now (ps), to show what else shares the machine."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pcpu,rss,comm", "--sort=-pcpu", "--no-headers"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [" ".join(line.split()) for line in out.splitlines()[:n]]


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


@dataclass
class Stats:
    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def lo(self) -> float:
        return min(self.values)

    @property
    def hi(self) -> float:
        return max(self.values)

    def text(self, fmt: str = ".1f") -> str:
        return f"median {self.median:{fmt}} (min-max {self.lo:{fmt}}-{self.hi:{fmt}})"

    def json(self) -> dict[str, Any]:
        return {"median": self.median, "min": self.lo, "max": self.hi, "values": self.values}


@dataclass
class Bench:
    name: str
    timeout_s: float
    runs: int = MIN_RUNS
    results: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    #: Removed by the watchdog too (a TemporaryDirectory's cleanup does not run on os._exit).
    scratch: list[Path] = field(default_factory=list)
    _procs: dict[int, subprocess.Popen[Any]] = field(default_factory=dict)
    _timer: threading.Timer | None = None
    _load_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    _t0: float = 0.0

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Bench:
        if self.runs < MIN_RUNS:
            print(f"note: {self.runs} runs requested; fewer than {MIN_RUNS} is only a smoke run")
        self._t0 = time.monotonic()
        self._load_start = loadavg()
        print(f"== {self.name}: {self.runs} runs per figure, timeout {self.timeout_s:.0f} s")
        print(f"machine: {os.cpu_count()} CPUs; {self._load_text('start')}")
        for line in busiest():
            print(f"  busy at start: {line}")
        self._timer = threading.Timer(self.timeout_s, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.stop_all()

    def _load_text(self, when: str) -> str:
        a, b, c = loadavg()
        return f"load average at {when} {a:.2f} {b:.2f} {c:.2f} (1, 5, 15 min)"

    def _expire(self) -> None:
        sys.stdout.flush()
        print(
            f"\n{self.name}: TIMEOUT after {self.timeout_s:.0f} s; stopping "
            f"{len(self._procs)} child process(es) and exiting {TIMEOUT_EXIT}",
            file=sys.stderr,
            flush=True,
        )
        for pid in list(self._procs):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for path in self.scratch:
            shutil.rmtree(path, ignore_errors=True)
        os._exit(TIMEOUT_EXIT)

    def check_time(self, what: str) -> None:
        """For waits that poll: fail with a message well before the watchdog has to fire."""
        if time.monotonic() - self._t0 > self.timeout_s:
            raise TimeoutError(f"{self.name}: gave up waiting for {what}")

    # -- child processes -------------------------------------------------------------------
    def track(self, proc: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
        self._procs[proc.pid] = proc
        return proc

    def stop(self, proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
        """SIGTERM by PID, then SIGKILL if it does not exit in time."""
        self._procs.pop(proc.pid, None)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()

    def stop_all(self) -> None:
        for proc in list(self._procs.values()):
            self.stop(proc)

    # -- measurements ----------------------------------------------------------------------
    def pair(
        self,
        label: str,
        ours: tuple[str, Callable[[], float]],
        ref: tuple[str, Callable[[], float]],
        unit: str,
        *,
        goal: str = "",
        higher_is_better: bool = True,
        warmup: bool = True,
        fmt: str = ".1f",
    ) -> dict[str, Any]:
        """Each callable returns one figure in `unit`. The ratio is ours/ref for each pair."""
        (a_name, a_fn), (b_name, b_fn) = ours, ref
        a, b = self.alternate(a_fn, b_fn, warmup=warmup)
        return self.compare(
            label, a_name, a, b_name, b, unit, goal=goal, higher_is_better=higher_is_better, fmt=fmt
        )

    def alternate(
        self, a_fn: Callable[[], T], b_fn: Callable[[], T], *, warmup: bool = True
    ) -> tuple[list[T], list[T]]:
        """`runs` pairs of A and B, the order flipped every pair, after one discarded warm-up
        of each."""
        if warmup:
            a_fn()
            b_fn()
        a: list[T] = []
        b: list[T] = []
        for i in range(self.runs):
            if i % 2 == 0:
                a.append(a_fn())
                b.append(b_fn())
            else:
                b.append(b_fn())
                a.append(a_fn())
        return a, b

    def compare(
        self,
        label: str,
        a_name: str,
        a: Sequence[float],
        b_name: str,
        b: Sequence[float],
        unit: str,
        *,
        goal: str = "",
        higher_is_better: bool = True,
        fmt: str = ".1f",
    ) -> dict[str, Any]:
        """Print and record pairs measured elsewhere: a[i] and b[i] come from the same pair."""
        ratios = Stats([x / y if y else float("inf") for x, y in zip(a, b, strict=True)])
        sa, sb = Stats(list(a)), Stats(list(b))
        better = "higher" if higher_is_better else "lower"
        print(f"{label} ({len(a)} pairs, {better} is better)")
        print(f"  {a_name:<28} {sa.text(fmt)} {unit}")
        print(f"  {b_name:<28} {sb.text(fmt)} {unit}")
        line = f"  ratio {a_name} / {b_name}: {ratios.text('.3g')}"
        print(line + (f"   goal {goal}" if goal else ""), flush=True)
        result = {
            "label": label,
            "unit": unit,
            "ours": {"name": a_name, **sa.json()},
            "ref": {"name": b_name, **sb.json()},
            "ratio": ratios.json(),
            "goal": goal,
        }
        self.results.append(result)
        return result

    def series(
        self, label: str, fn: Callable[[], float], unit: str, *, goal: str = "", fmt: str = ".1f"
    ) -> dict[str, Any]:
        return self.figures(label, [fn() for _ in range(self.runs)], unit, goal=goal, fmt=fmt)

    def figures(
        self, label: str, values: Sequence[float], unit: str, *, goal: str = "", fmt: str = ".1f"
    ) -> dict[str, Any]:
        """Print and record figures with no reference, measured elsewhere."""
        s = Stats(list(values))
        tail = f"   goal {goal}" if goal else ""
        print(f"{label} ({len(values)} runs): {s.text(fmt)} {unit}{tail}", flush=True)
        result = {"label": label, "unit": unit, **s.json(), "goal": goal}
        self.results.append(result)
        return result

    def record(self, label: str, **fields: Any) -> None:
        """A figure measured some other way (e.g. RSS sampled from /proc)."""
        self.results.append({"label": label, **fields})

    def peak_rss(
        self,
        label: str,
        work: Sequence[str],
        baseline: Sequence[str],
        *,
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Peak RSS (MiB) of a fresh child doing `work` vs the same child doing `baseline`."""
        base = child_peak_rss_mib(baseline, env=env)
        peak = child_peak_rss_mib(work, env=env)
        print(
            f"{label}: baseline {base:.1f} MiB, with the work {peak:.1f} MiB "
            f"(+{peak - base:.1f} MiB)"
        )
        result = {"label": label, "unit": "MiB", "baseline": base, "peak": peak}
        self.results.append(result)
        return result

    # -- end -------------------------------------------------------------------------------
    def finish(self) -> None:
        print(self._load_text("end"))
        for line in busiest():
            print(f"  busy at end: {line}")
        summary = {
            "bench": self.name,
            "runs": self.runs,
            "seconds": round(time.monotonic() - self._t0, 1),
            "cpus": os.cpu_count(),
            "load_start": self._load_start,
            "load_end": loadavg(),
            "notes": self.notes,
            "results": self.results,
        }
        print("JSON " + json.dumps(summary, separators=(",", ":")), flush=True)


def child_peak_rss_mib(argv: Sequence[str], *, env: dict[str, str] | None = None) -> float:
    """ru_maxrss of a fresh child running `argv` (which must succeed), in MiB."""
    timer = "/usr/bin/time"
    if Path(timer).exists():
        with tempfile.NamedTemporaryFile("r", suffix=".rss") as out:
            subprocess.run(
                [timer, "-f", "%M", "-o", out.name, *argv],
                check=True,
                stdout=subprocess.DEVNULL,
                env=env,
            )
            return int(out.read().split()[-1]) / 1024
    res = subprocess.run(
        [sys.executable, "-S", "-c", _LAUNCHER, *argv],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    kib, code = res.stdout.split()[-2:]
    if int(code) != 0:
        raise subprocess.CalledProcessError(int(code), list(argv))
    return int(kib) / 1024
