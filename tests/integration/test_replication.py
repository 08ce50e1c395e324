"""Replication across separate node processes: auto nodes bring a world to R holders, the
world outlives its publisher, and a node that lost the data fails its retrieval challenge."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from eth_account import Account

from tests.conftest import NodeFactory, run_cli

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "hello-world"


def configure(d: Path, text: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.toml").write_text(text)


def status(d: Path) -> dict:
    out = run_cli("status", "--data-dir", str(d))
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def pinned_worlds(d: Path) -> set[str]:
    out = run_cli("pin", "ls", "--data-dir", str(d))
    return {
        json.loads(line)["cid"]
        for line in out.stdout.splitlines()
        if (json.loads(line).get("name") or "").startswith("world:")
    }


def wait(predicate, what: str, timeout: float = 60.0) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


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

    owner = Account.create()
    key = tmp_path / "owner.key"
    key.write_text(owner.key.hex())
    key.chmod(0o600)
    out = run_cli(
        "publish",
        "--data-dir",
        str(a.data_dir),
        str(EXAMPLE),
        "--slug",
        "hello",
        "--key-file",
        str(key),
    )
    assert out.returncode == 0, out.stderr
    world = json.loads(out.stdout)
    cid, world_id = world["cid"], world["world_id"]

    took = wait(
        lambda: cid in pinned_worlds(b.data_dir) and cid in pinned_worlds(c.data_dir),
        "B and C to host the world",
    )
    print(f"publish to 2 replicas: {took:.1f} s")
    for d in (b.data_dir, c.data_dir):
        assert json.loads(run_cli("repo", "verify", "--data-dir", str(d)).stdout)["corrupted"] == []

    # the publisher leaves; a new node that wants the world gets it from B or C
    a.terminate()
    configure(tmp_path / "d", f'[hosting]\nworlds = ["{world_id}"]\ninterval = 0.5\n')
    d = nodes.start("d", "--bootstrap", b_addr)
    d.wait_ready()
    # D joined after the publication, so gossip never brought it the record: it finds it in
    # the DHT (stored there by A at publication), verifies it, and fetches the world.
    wait(lambda: cid in pinned_worlds(d.data_dir), "D to fetch the world from B or C")
    got = run_cli("cat", "--data-dir", str(d.data_dir), f"{cid}/world.json")
    assert got.stdout == (EXAMPLE / "world.json").read_text()

    # D loses its blocks but still claims the world: B or C challenge it and drop the claim.
    for block in (d.data_dir / "blocks").rglob("*.data"):
        block.unlink()

    def d_caught() -> bool:
        for node in (b, c):
            failed = status(node.data_dir).get("hosting", {}).get("failed_claims", {})
            if any(cid in cids for cids in failed.values()):
                return True
        return False

    wait(d_caught, "a challenge to catch D's false claim")
    for node in (b, c, d):
        node.terminate()
