"""Replication across separate node processes: auto nodes bring a world to R holders, the
world outlives its publisher, and a node that lost the data fails its retrieval challenge."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import NodeFactory, run_cli
from tests.helpers import EXAMPLE_WORLD, publish, status, wait_for, write_owner_key

pytestmark = pytest.mark.slow


def configure(d: Path, text: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.toml").write_text(text)


def pinned_worlds(d: Path) -> set[str]:
    out = run_cli("pin", "ls", "--data-dir", str(d))
    return {
        json.loads(line)["cid"]
        for line in out.stdout.splitlines()
        if (json.loads(line).get("name") or "").startswith("world:")
    }


def test_world_reaches_r_holders_survives_its_publisher_and_liars_are_caught(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    auto = '[hosting]\nmode = "auto"\nreplication = 2\ninterval = 0.5\ngrace = 0\n'
    a = nodes.start("a")
    a_addr = a.wait_ready()["addrs"][0]
    for name in ("b", "c"):
        configure(tmp_path / name, auto)
    b = nodes.start("b", "--bootstrap", a_addr)
    c = nodes.start("c", "--bootstrap", a_addr)
    b_addr = b.wait_ready()["addrs"][0]
    c.wait_ready()
    time.sleep(2)

    key = tmp_path / "owner.key"
    write_owner_key(key)
    world = publish(a.data_dir, EXAMPLE_WORLD, key)
    cid, world_id = world["cid"], world["world_id"]

    # The publisher's own pin counts toward R, so while it is up one auto node is enough (and
    # which one depends on the ranking of the random peer ids against the CID).
    took = wait_for(
        lambda: cid in pinned_worlds(b.data_dir) | pinned_worlds(c.data_dir),
        "B or C to host the world",
    )
    print(f"publish to a second replica: {took:.1f} s")
    # the publisher leaves: once its claim expires, both auto nodes hold the world
    a.terminate()
    wait_for(
        lambda: cid in pinned_worlds(b.data_dir) and cid in pinned_worlds(c.data_dir),
        "B and C to host the world after its publisher left",
        timeout=90.0,
    )
    for d in (b.data_dir, c.data_dir):
        assert json.loads(run_cli("repo", "verify", "--data-dir", str(d)).stdout)["corrupted"] == []

    # a new node that wants the world gets it from B or C
    configure(tmp_path / "d", f'[hosting]\nworlds = ["{world_id}"]\ninterval = 0.5\n')
    d = nodes.start("d", "--bootstrap", b_addr)
    d.wait_ready()
    # D joined after the publication, so gossip never brought it the record: it finds it in
    # the DHT (stored there by A at publication), verifies it, and fetches the world.
    wait_for(lambda: cid in pinned_worlds(d.data_dir), "D to fetch the world from B or C")
    got = run_cli("cat", "--data-dir", str(d.data_dir), f"{cid}/world.json")
    assert got.stdout == (EXAMPLE_WORLD / "world.json").read_text()

    # D loses its blocks but still claims the world: B or C challenge it and drop the claim.
    for block in (d.data_dir / "blocks").rglob("*.data"):
        block.unlink()

    def d_caught() -> bool:
        for node in (b, c):
            failed = status(node.data_dir).get("hosting", {}).get("failed_claims", {})
            if any(cid in cids for cids in failed.values()):
                return True
        return False

    wait_for(d_caught, "a challenge to catch D's false claim")
    for node in (b, c, d):
        node.terminate()
