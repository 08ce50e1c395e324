"""Printing bench_sessions' figures through the harness (median and min-max over the runs)."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from harness import Bench


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _errors(rs: list[dict[str, Any]], key: str = "errors") -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rs:
        for code, n in r.get(key, {}).items():
            out[code] = out.get(code, 0) + n
    return out


def report_crowd(
    bench: Bench, near: list[dict[str, Any]], spread: list[dict[str, Any]], visitors: int
) -> None:
    print(f"\n-- crowd: {visitors} visitors, 3 nodes, one load generator, 10 Hz each")
    for name, rs in (("near (all within 10 m)", near), ("spread (200 m square)", spread)):
        print(f"- {name}")
        bench.compare(
            f"{name}: transform latency p50, all pairs, vs a WebSocket echo p50",
            "transform p50", [r["all"]["p50"] for r in rs],
            "aiohttp echo p50", [r["echo"]["p50"] for r in rs],
            "ms", higher_is_better=False,
        )  # fmt: skip
        bench.figures(
            f"{name}: transform latency p99, all pairs",
            [r["all"]["p99"] for r in rs], "ms", goal="< 100 ms", fmt=".0f",
        )  # fmt: skip
        bench.figures(
            f"{name}: aiohttp echo p99 (the floor)", [r["echo"]["p99"] for r in rs], "ms",
        )  # fmt: skip
        for part in ("same", "cross"):
            for q in ("p50", "p99"):
                bench.figures(
                    f"{name}: {part}-node latency {q}", [r[part][q] or 0.0 for r in rs], "ms",
                    fmt=".0f",
                )  # fmt: skip
        for i, node in enumerate("abc"):
            bench.figures(
                f"{name}: node {node} CPU (% of one core)",
                [100 * r["node_cpu_s"][i] / r["window_s"] for r in rs], "%", fmt=".0f",
            )  # fmt: skip
        bench.figures(
            f"{name}: nodes waiting for a CPU (sum of 3, % of wall)",
            [100 * sum(r["node_wait_s"]) / r["window_s"] for r in rs], "%", fmt=".0f",
        )  # fmt: skip
        bench.figures(
            f"{name}: bytes received per visitor per second",
            [r["bytes_per_visitor_s"] / 1024 for r in rs], "KiB/s",
        )  # fmt: skip
        bench.figures(
            f"{name}: load generator CPU / waiting for a CPU (% of one core)",
            [100 * r["loadgen_cpu_s"] / r["window_s"] for r in rs], "% CPU", fmt=".0f",
        )  # fmt: skip
        bench.figures(
            f"{name}: load generator waiting for a CPU",
            [100 * r["loadgen_wait_s"] / r["window_s"] for r in rs], "%", fmt=".0f",
        )  # fmt: skip
        bench.figures(
            f"{name}: transforms sent per second (target {10 * visitors})",
            [r["transforms_sent_per_s"] for r in rs], "/s", fmt=".0f",
        )  # fmt: skip
        split = [r["instances"] for r in rs]
        print(f"  instances per run (visitors in each): {split}")
        print(f"  errors from the nodes over all runs: {_errors(rs)}; connections the nodes "
              f"closed (by close code): {_errors(rs, 'closed_by_node')}")  # fmt: skip
        hwm = [max(r["node_hwm_mib"]) for r in rs]
        print(
            f"  peak RSS (VmHWM): nodes up to {max(hwm):.0f} MiB, load generator up to "
            f"{max(r['loadgen_hwm_mib'] for r in rs):.0f} MiB"
        )
        bench.record(
            f"{name}: extras", instances=split, errors=_errors(rs), node_hwm_mib=hwm,
            loadgen_hwm_mib=[r["loadgen_hwm_mib"] for r in rs],
            samples=[r["all"]["n"] for r in rs],
        )  # fmt: skip
    bench.record("crowd: raw", near=near, spread=spread)
    bench.compare(
        "what distance tiers save: bytes per visitor per second, spread vs near",
        "spread", [r["bytes_per_visitor_s"] / 1024 for r in spread],
        "near", [r["bytes_per_visitor_s"] / 1024 for r in near],
        "KiB/s", higher_is_better=False,
    )  # fmt: skip
    bench.compare(
        "CPU of the 3 nodes together, spread vs near",
        "spread", [100 * sum(r["node_cpu_s"]) / r["window_s"] for r in spread],
        "near", [100 * sum(r["node_cpu_s"]) / r["window_s"] for r in near],
        "% of one core", higher_is_better=False, fmt=".0f",
    )  # fmt: skip


def report_joins(
    bench: Bench, js: list[dict[str, Any]], cv: list[dict[str, Any]], args: argparse.Namespace
) -> None:
    print(f"\n-- warm joins on node a ({args.joins} sequential, {args.concurrent} concurrent)")
    bench.figures("sign-in + join p50 (per run)",
                  [statistics.median(j["lat_ms"]) for j in js], "ms")  # fmt: skip
    bench.figures("sign-in + join p99 (per run)", [pct(j["lat_ms"], 0.99) for j in js], "ms")
    pooled = [x for j in js for x in j["lat_ms"]]
    print(f"  pooled {len(pooled)}: p50 {statistics.median(pooled):.1f} ms, "
          f"p99 {pct(pooled, 0.99):.1f} ms")  # fmt: skip
    bench.figures(f"joins/s, {args.concurrent} at once", [j["joins_per_s"] for j in js], "/s")
    print(f"\n-- state-op convergence: door click on a until b and c see it ({args.clicks} clicks)")
    print(f"  instances seen by the 3 visitors per run: {[c['instances'] for c in cv]}; "
          f"clicks not seen by both within 5 s: {[c['missed'] for c in cv]}")  # fmt: skip
    cv = [c for c in cv if c["lat_ms"][0]]
    if not cv:
        print("  no run had all three visitors in one instance: no convergence figure")
        return
    both = [[max(x) for x in zip(*c["lat_ms"], strict=True)] for c in cv]
    bench.figures("convergence p50 (slower of b, c; per run)",
                  [statistics.median(b) for b in both], "ms")  # fmt: skip
    bench.figures("convergence p99 (slower of b, c; per run)",
                  [pct(b, 0.99) for b in both], "ms")  # fmt: skip


def report_big(bench: Bench, results: list[list[dict[str, Any]]], args: argparse.Namespace) -> None:
    print(f"\n-- big node: {args.big} visitors on one node from {args.loadgens} load generators")
    joined = [sum(sum(r["instances"]) for r in rs) for rs in results]
    seated = [
        sorted(sum(r["instance_ids"].get(i, 0) for r in rs)
               for i in {i for r in rs for i in r["instance_ids"]})
        for rs in results
    ]  # fmt: skip
    print(f"  visitors joined per run: {joined}; visitors per instance: {seated}")
    bench.figures(
        "transform latency p99 (worst load generator's observers)",
        [max(r["all"]["p99"] or 0.0 for r in rs) for rs in results], "ms",
        goal="< 100 ms", fmt=".0f",
    )  # fmt: skip
    bench.figures(
        "transform latency p50 (median of the load generators')",
        [statistics.median(r["all"]["p50"] or 0.0 for r in rs) for rs in results], "ms", fmt=".0f",
    )  # fmt: skip
    bench.figures(
        "node CPU (% of one core)",
        [100 * rs[0]["node_cpu_s"][0] / rs[0]["window_s"] for rs in results], "%",
        goal="< 100 %", fmt=".0f",
    )  # fmt: skip
    bench.figures(
        "node waiting for a CPU (% of wall)",
        [100 * rs[0]["node_wait_s"][0] / rs[0]["window_s"] for rs in results], "%", fmt=".0f",
    )  # fmt: skip
    bench.figures(
        f"transforms sent per second (target {10 * args.big})",
        [sum(r["transforms_sent_per_s"] for r in rs) for rs in results], "/s", fmt=".0f",
    )  # fmt: skip
    bench.figures(
        "load generators' CPU (sum, % of one core)",
        [sum(100 * r["loadgen_cpu_s"] / r["window_s"] for r in rs) for rs in results], "%",
        fmt=".0f",
    )  # fmt: skip
    errors = _errors([r for rs in results for r in rs])
    hwm = max(rs[0]["node_hwm_mib"][0] for rs in results)
    closed = _errors([r for rs in results for r in rs], "closed_by_node")
    print(f"  errors from the node over all runs: {errors}; connections it closed (by close "
          f"code): {closed}; node peak RSS {hwm:.0f} MiB")  # fmt: skip
    bench.record("big node: extras", joined=joined, errors=errors, node_hwm_mib=hwm)
    bench.record("big node: raw", runs=results)
