"""Moderation across two node processes: a ban list signed with `flux-node world ban` on A
reaches B by gossip (validated on the way), a forged one goes nowhere, both nodes keep the
newest list across a restart; `flux-node reports` shows what visitors reported."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from fluxnode.node.reports_store import REPORTS_DB, ReportsStore
from tests.conftest import NodeFactory, run_cli
from tests.helpers import status, wait_for, write_owner_key

pytestmark = pytest.mark.slow

ALICE = "0x" + "ab" * 20
BOB = "0x" + "cd" * 20


def ban(data_dir: Path, key: Path, *args: str) -> Any:
    return run_cli("world", "ban", "--data-dir", str(data_dir), "--key-file", str(key), *args)


def bans(data_dir: Path) -> dict[str, Any]:
    return dict(status(data_dir)["bans"])


def test_ban_list_travels_persists_and_forgeries_go_nowhere(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    a = nodes.start("a")
    a_addr = a.wait_ready()["addrs"][0]
    b = nodes.start("b", "--bootstrap", a_addr)
    b.wait_ready()
    time.sleep(3)  # gossip meshes form on heartbeats

    key = tmp_path / "owner.key"
    owner = write_owner_key(key)
    world = f"{owner.address.lower()}/plaza"

    out = ban(a.data_dir, key, world, ALICE, BOB.upper().replace("0X", "0x"))
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)
    assert (first["world_id"], first["banned"], first["added"]) == (world, 2, [ALICE, BOB])
    took = wait_for(
        lambda: bans(b.data_dir)["banned"] == 2,
        "the ban list to reach B",
        timeout=20,
        detail=lambda: bans(b.data_dir),
    )
    print(f"ban list propagation A -> B: {took:.2f} s")
    assert bans(b.data_dir)["worlds"] == 1

    # the next list lifts one ban; it replaces the first everywhere
    out = ban(a.data_dir, key, world, "--unban", ALICE)
    assert out.returncode == 0, out.stderr
    second = json.loads(out.stdout)
    assert second["seq"] > first["seq"] and second["lifted"] == [ALICE]
    wait_for(lambda: bans(b.data_dir)["banned"] == 1, "the second list to reach B", timeout=20)

    # someone else's key: refused by A (exit 1, the reason named), so nothing is gossiped
    mallory = tmp_path / "mallory.key"
    write_owner_key(mallory)
    before = bans(a.data_dir)
    out = ban(a.data_dir, mallory, world, "--unban", BOB)
    assert out.returncode == 1
    assert "belongs to" in out.stderr and "Traceback" not in out.stderr
    after = bans(a.data_dir)
    assert after["rejections"].get("not_world_owner", 0) == (
        before["rejections"].get("not_world_owner", 0) + 1
    )
    assert after["accepted"] == before["accepted"] and after["banned"] == 1

    # usage errors change nothing and exit 2
    for argv in ([world], [world, "0x1234"], ["not-a-world", ALICE], [world, BOB, "--unban", BOB]):
        out = ban(a.data_dir, key, *argv)
        assert out.returncode == 2, (argv, out.stderr)
        assert "Traceback" not in out.stderr

    # both keep the newest list across a restart
    for name in ("a", "b"):
        node = a if name == "a" else b
        node.terminate()
        assert node.proc.returncode == 0, node.log()
        node = nodes.start(name)
        node.wait_ready()
        got = bans(node.data_dir)
        assert (got["loaded"], got["worlds"], got["banned"]) == (1, 1, 1), got
        node.terminate()


def test_reports_are_listed_for_the_operator(nodes: NodeFactory) -> None:
    a = nodes.start("a")
    a.wait_ready()

    async def file_reports() -> None:
        # What the session engine does when a visitor reports, on the node's own file (SQLite
        # WAL is safe across processes).
        store = ReportsStore(a.data_dir / REPORTS_DB)
        try:
            await store.add(reporter=ALICE, world_id="land:7", reason="spam in chat", subject=BOB)
            await store.add(reporter=BOB, world_id=f"{ALICE}/plaza", reason="broken door")
        finally:
            await store.aclose()

    asyncio.run(file_reports())
    out = run_cli("reports", "--data-dir", str(a.data_dir))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("ID") and len(lines) == 3
    assert lines[1].endswith("broken door") and lines[2].endswith("spam in chat")

    out = run_cli("reports", "--data-dir", str(a.data_dir), "--world", "land:7", "--json")
    assert out.returncode == 0, out.stderr
    (only,) = json.loads(out.stdout)["reports"]
    assert (only["reporter"], only["subject"], only["reason"]) == (ALICE, BOB, "spam in chat")

    out = run_cli("reports", "--data-dir", str(a.data_dir), "--world", "nope")
    assert out.returncode == 1 and "bad world id" in out.stderr
    out = run_cli("reports", "--data-dir", str(a.data_dir), "--limit", "0")
    assert out.returncode == 2
    a.terminate()
    assert a.proc.returncode == 0, a.log()
