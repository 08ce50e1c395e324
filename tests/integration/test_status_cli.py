"""`flux-node status` against real node processes: the JSON programs read (piped output or
--json) and the table a terminal shows, with peers, replica counts and disk use."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import NodeFactory, run_cli
from tests.helpers import EXAMPLE_WORLD, status, wait_for, write_owner_key
from tests.tty import run_cli_tty

pytestmark = pytest.mark.slow


def test_status_json_and_table_show_peers_replicas_and_disk(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.toml").write_text('[storage]\nmax_size = "64MiB"\n')
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.toml").write_text(
        '[hosting]\nmode = "auto"\nreplication = 2\ninterval = 0.5\n'
    )
    a = nodes.start("a", gateway=True)
    a_addr = a.wait_ready()["addrs"][0]
    b = nodes.start("b", "--bootstrap", a_addr)
    b.wait_ready()
    key = tmp_path / "owner.key"
    write_owner_key(key)
    time.sleep(1)  # let gossip meshes form, or the publication reaches nobody
    # Published from a terminal: a progress line on stderr, the same JSON on stdout.
    shown = run_cli_tty(
        "publish", "--data-dir", str(a.data_dir), str(EXAMPLE_WORLD), "--slug", "hello",
        "--key-file", str(key), stdout_tty=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.terminal
    assert "packing " in shown.terminal and "\r" in shown.terminal
    world = json.loads(shown.stdout)
    assert set(world) == {"world_id", "cid", "seq"}

    def replicas_on_a() -> dict[str, object] | None:
        rows = [r for r in status(a.data_dir)["hosting"]["replicas"] if r["cid"] == world["cid"]]
        return rows[0] if rows else None

    wait_for(
        lambda: (replicas_on_a() or {}).get("replicas") == 2,
        "A to count two holders of the world",
        detail=replicas_on_a,
    )
    # Piped output is the JSON it always was, with the new fields added.
    piped = json.loads(run_cli("status", "--data-dir", str(a.data_dir)).stdout)
    assert {"peer_id", "addrs", "version", "uptime_s", "peers", "bridge", "loops"} <= set(piped)
    assert [p["peer_id"] for p in piped["peers"]] == [b.info["peer_id"]]
    row = next(r for r in piped["hosting"]["replicas"] if r["cid"] == world["cid"])
    assert row == {
        "world_id": world["world_id"],
        "cid": world["cid"],
        "replicas": 2,
        "target": 2,
        "holders": sorted([a.info["peer_id"], b.info["peer_id"]]),
        "hosted_here": True,
        "current": True,
    }
    disk = piped["disk"]
    assert disk["max_bytes"] == 64 << 20 and 0 < disk["used_bytes"] < disk["max_bytes"]
    assert disk["free_bytes"] == disk["max_bytes"] - disk["used_bytes"]
    assert disk["pins"] >= 1 and disk["fs_free_bytes"] > 0
    assert piped["sessions"]["instances"] == []

    # On a terminal: the table; with --json on a terminal: JSON again.
    shown = run_cli_tty("status", "--data-dir", str(a.data_dir))
    assert shown.returncode == 0, shown.terminal
    lines = shown.terminal.replace("\r\n", "\n").splitlines()
    assert f"node     {a.info['peer_id']}" in lines
    assert "PEERS (1)" in lines
    assert any(line.split()[:3] == [world["world_id"], "2/2", "yes"] for line in lines), lines
    assert any(line.startswith("INSTANCES (0;") for line in lines)
    assert any(line.startswith("  store ") and "of 64.0 MiB" in line for line in lines)
    as_json = run_cli_tty("status", "--json", "--data-dir", str(a.data_dir))
    assert json.loads(as_json.terminal)["peer_id"] == a.info["peer_id"]
