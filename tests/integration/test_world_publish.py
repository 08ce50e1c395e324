"""Publishing a world across three node processes: signed records travel by gossip, validated
on every hop; forged, replayed and oversized records are refused and go nowhere."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest
from eth_account import Account

from fluxnode.chain.records import sign_record
from fluxnode.node.admin import admin_request
from tests.conftest import NodeFactory, run_cli

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "hello-world"


def worlds(d: Path) -> list[dict]:
    out = run_cli("worlds", "--data-dir", str(d))
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout)["worlds"])


def wait_for(d: Path, cid: str, timeout: float = 20.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if any(w["cid"] == cid for w in worlds(d)):
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{cid} never reached {d}: {worlds(d)}")


def post(d: Path, body: dict) -> dict:
    return asyncio.run(admin_request(d, "POST", "/v0/publish", body))


def test_publish_reaches_every_node_and_forgeries_go_nowhere(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    a = nodes.start("a")
    a_addr = a.wait_ready()["addrs"][0]
    b = nodes.start("b", "--bootstrap", a_addr)
    b_addr = b.wait_ready()["addrs"][0]
    c = nodes.start("c", "--bootstrap", b_addr)
    c.wait_ready()
    time.sleep(3)  # gossip meshes form on heartbeats

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
        "--seq",
        "1",
    )
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)
    assert first["world_id"] == f"{owner.address.lower()}/hello"
    assert any(w["cid"] == first["cid"] for w in worlds(a.data_dir))
    print(
        f"record propagation: b {wait_for(b.data_dir, first['cid']):.2f} s, "
        f"c {wait_for(c.data_dir, first['cid']):.2f} s"
    )

    # a new version (higher seq) replaces the old one everywhere
    v2 = tmp_path / "v2"
    shutil.copytree(EXAMPLE, v2)
    manifest = json.loads((v2 / "world.json").read_text())
    manifest["description"] = "version two"
    (v2 / "world.json").write_text(json.dumps(manifest))
    out = run_cli(
        "publish",
        "--data-dir",
        str(a.data_dir),
        str(v2),
        "--slug",
        "hello",
        "--key-file",
        str(key),
        "--seq",
        "2",
    )
    second = json.loads(out.stdout)
    assert second["cid"] != first["cid"]
    wait_for(c.data_dir, second["cid"])
    assert [w["seq"] for w in worlds(c.data_dir)] == [2]

    now = int(time.time())
    mallory = Account.create()
    forged = sign_record(
        world_id=f"{owner.address.lower()}/hello",
        cid=first["cid"],
        seq=99,
        visibility="public",
        issued_at=now,
        account=mallory,
    )
    replay = sign_record(
        world_id=f"{owner.address.lower()}/hello",
        cid=first["cid"],
        seq=1,
        visibility="public",
        issued_at=now,
        account=owner,
    )
    for body, why in [
        ({"record": forged.to_wire().decode()}, "not_world_owner"),
        ({"record": replay.to_wire().decode()}, "stale"),
        ({"record": "x" * 20_000}, "Too Large"),  # refused by the admin endpoint's body limit
        ({"record": '{"v": 1}'}, "malformed"),
    ]:
        with pytest.raises(Exception, match=why):
            post(a.data_dir, body)
    time.sleep(1)
    for node in (a, b, c):
        assert [w["seq"] for w in worlds(node.data_dir)] == [2]
        assert [w["cid"] for w in worlds(node.data_dir)] == [second["cid"]]
    status = json.loads(run_cli("status", "--data-dir", str(a.data_dir)).stdout)
    assert status["worlds"]["known"] == 1
    for node in (a, b, c):
        node.terminate()
