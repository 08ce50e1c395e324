"""`flux-node status` for a person at a terminal: the status JSON as a few small tables.

Written by hand: the project has no table library as a dependency, and a column layout of
left-aligned cells is twenty lines, not worth a new dependency. Every field is read with a
default, so a node older or newer than this CLI still renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    table = [list(header), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]


def human_bytes(n: int | None) -> str:
    if n is None:
        return "unlimited"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {s:02d}s"


def format_status(st: dict[str, Any]) -> str:
    lines = [
        f"node     {st.get('peer_id', '?')}",
        f"version  {st.get('version', '?')}, up {human_duration(float(st.get('uptime_s', 0)))}",
        f"gateway  {st.get('gateway_url') or 'off'}",
    ]
    lines += [f"listen   {a}" for a in st.get("addrs", [])]
    lines += _peers(st) + _worlds(st) + _instances(st) + _chain(st) + _disk(st) + _loops(st)
    return "\n".join(lines) + "\n"


def _section(title: str) -> list[str]:
    return ["", title]


def _peers(st: dict[str, Any]) -> list[str]:
    peers = st.get("peers", [])
    out = _section(f"PEERS ({len(peers)})")
    if not peers:
        return [*out, "  none connected"]
    rows = [(p.get("peer_id", "?"), (p.get("addrs") or ["-"])[0]) for p in peers]
    return out + ["  " + line for line in format_table(("PEER ID", "ADDRESS"), rows)]


def _worlds(st: dict[str, Any]) -> list[str]:
    hosting = st.get("hosting")
    if hosting is None:
        return []
    replicas = hosting.get("replicas", [])
    here = sum(1 for r in replicas if r.get("hosted_here"))
    out = _section(
        f"WORLDS ({len(replicas)} known, {here} hosted here; mode {hosting.get('mode', '?')}, "
        f"replication target {hosting.get('target', '?')})"
    )
    if not replicas:
        return [*out, "  none known"]
    rows = [
        (
            r.get("world_id", "?"),
            f"{r.get('replicas', 0)}/{r.get('target', '?')}",
            "yes" if r.get("hosted_here") else "no",
            r.get("cid", "?") + ("" if r.get("current", True) else " (superseded)"),
        )
        for r in replicas
    ]
    header = ("WORLD", "REPLICAS", "HERE", "CID")
    return out + ["  " + line for line in format_table(header, rows)]


def _instances(st: dict[str, Any]) -> list[str]:
    sessions = st.get("sessions")
    if sessions is None:
        return []
    instances = sessions.get("instances", [])
    hub = sessions.get("hub", {})
    out = _section(
        f"INSTANCES ({len(instances)}; visitors here {hub.get('visitors_local', 0)}, "
        f"via other nodes {hub.get('visitors_remote', 0)})"
    )
    if not instances:
        return [*out, "  none open"]
    rows = [
        (
            i.get("world_id", "?"),
            i.get("instance", "?"),
            str(i.get("visitors_local", 0)),
            str(i.get("visitors_remote", 0)),
            str(i.get("capacity", "?")),
            str(i.get("member_nodes", "?")),
        )
        for i in instances
    ]
    header = ("WORLD", "INSTANCE", "HERE", "REMOTE", "CAPACITY", "NODES")
    return out + ["  " + line for line in format_table(header, rows)]


def _chain(st: dict[str, Any]) -> list[str]:
    chain = st.get("chain")
    if chain is None:
        return [*_section("CHAIN"), "  not configured (ticketed and private land worlds deny)"]
    endpoints = chain.get("endpoints", [])
    healthy = chain.get("healthy_endpoints", 0)
    oracle = chain.get("oracle", {})
    verdict = "ok" if healthy else "DOWN: ticketed and private worlds deny"
    out = _section(f"CHAIN ({healthy}/{len(endpoints)} endpoints healthy: {verdict})")
    out.append(
        f"  last indexed block {chain.get('last_indexed_block', '?')}; oracle answers: "
        f"{oracle.get('warm', 0)} cached, {oracle.get('cold', 0)} from the chain, "
        f"{oracle.get('unavailable', 0)} unavailable"
    )
    rows = [
        (
            e.get("url", "?"),
            e.get("state", "?"),
            str(e.get("failures", 0)),
            (e.get("last_error") or "-")[:80],
        )
        for e in endpoints
    ]
    header = ("ENDPOINT", "STATE", "FAILURES", "LAST ERROR")
    return out + ["  " + line for line in format_table(header, rows)]


def _disk(st: dict[str, Any]) -> list[str]:
    disk = st.get("disk")
    if disk is None:
        return []
    used, quota = int(disk.get("used_bytes", 0)), disk.get("max_bytes")
    share = f" ({100 * used / quota:.1f}%)" if quota else ""
    return [
        *_section("DISK"),
        f"  store {human_bytes(used)} of {human_bytes(quota)}{share}, {disk.get('pins', 0)} pins; "
        f"file system free {human_bytes(disk.get('fs_free_bytes'))}",
    ]


def _loops(st: dict[str, Any]) -> list[str]:
    """Only the background loops that failed: a healthy node shows nothing here."""
    failing = {
        name: h
        for name, h in st.get("loops", {}).items()
        if h.get("failures", 0) or h.get("crashes", 0)
    }
    if not failing:
        return []
    rows = [
        (
            name,
            f"{h.get('failures', 0)}/{h.get('rounds', 0)}",
            str(h.get("crashes", 0)),
            (h.get("last_error") or "-")[:80],
        )
        for name, h in sorted(failing.items())
    ]
    header = ("LOOP", "FAILED/ROUNDS", "CRASHES", "LAST ERROR")
    return _section("PROBLEMS") + ["  " + line for line in format_table(header, rows)]
