"""Publishing a world across three node processes: signed records travel by gossip, validated
on every hop; forged, replayed and oversized records are refused and go nowhere. The world
directory outlives a restart of the node, so a restart cannot roll a world back."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from fluxnode.chain.records import sign_record
from fluxnode.core.errors import RecordInvalid, RemoteError
from fluxnode.node.admin import admin_request
from tests.conftest import NodeFactory
from tests.helpers import (
    EXAMPLE_WORLD,
    publish,
    status,
    wait_for_world,
    worlds,
    write_owner_key,
)

pytestmark = pytest.mark.slow


def post(d: Path, body: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(admin_request(d, "POST", "/v0/publish", body))


def second_version(tmp_path: Path) -> Path:
    v2 = tmp_path / "v2"
    shutil.copytree(EXAMPLE_WORLD, v2)
    manifest = json.loads((v2 / "world.json").read_text())
    manifest["description"] = "version two"
    (v2 / "world.json").write_text(json.dumps(manifest))
    return v2


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

    key = tmp_path / "owner.key"
    owner = write_owner_key(key)
    first = publish(a.data_dir, EXAMPLE_WORLD, key, seq=1)
    assert first["world_id"] == f"{owner.address.lower()}/hello"
    assert any(w["cid"] == first["cid"] for w in worlds(a.data_dir))
    print(
        f"record propagation: b {wait_for_world(b.data_dir, first['cid']):.2f} s, "
        f"c {wait_for_world(c.data_dir, first['cid']):.2f} s"
    )

    # a new version (higher seq) replaces the old one everywhere
    second = publish(a.data_dir, second_version(tmp_path), key, seq=2)
    assert second["cid"] != first["cid"]
    for node in (b, c):
        wait_for_world(node.data_dir, second["cid"])
        assert [w["seq"] for w in worlds(node.data_dir)] == [2]

    now = int(time.time())
    mallory = write_owner_key(tmp_path / "mallory.key")
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
    before = status(a.data_dir)["worlds"]
    refusals: list[tuple[dict[str, str], type[Exception], str]] = [
        ({"record": forged.to_wire().decode()}, RecordInvalid, "not_world_owner"),
        ({"record": replay.to_wire().decode()}, RecordInvalid, "stale"),
        ({"record": '{"v": 1}'}, RecordInvalid, "malformed"),
        # refused by the admin endpoint's body limit (413) before any record check
        ({"record": "x" * 20_000}, RemoteError, "Too Large"),
    ]
    for body, error, why in refusals:
        with pytest.raises(error, match=why):
            post(a.data_dir, body)
    # The refusals were counted, so A processed every one of them; a refused record is
    # neither stored nor gossiped, so nothing can be on its way to B or C.
    after = status(a.data_dir)["worlds"]
    assert after["rejections"].get("not_world_owner", 0) == (
        before["rejections"].get("not_world_owner", 0) + 1
    )
    assert after["rejections"].get("malformed", 0) == before["rejections"].get("malformed", 0) + 1
    assert after["stale"] == before["stale"] + 1
    assert after["accepted"] == before["accepted"]
    for node in (a, b, c):
        assert [(w["seq"], w["cid"]) for w in worlds(node.data_dir)] == [(2, second["cid"])]
    assert status(a.data_dir)["worlds"]["known"] == 1
    for node in (a, b, c):
        node.terminate()


def test_world_directory_survives_a_restart_and_refuses_a_rollback(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    key = tmp_path / "owner.key"
    owner = write_owner_key(key)
    a = nodes.start("a")
    a.wait_ready()
    publish(a.data_dir, EXAMPLE_WORLD, key, seq=1)
    second = publish(a.data_dir, second_version(tmp_path), key, seq=2)
    listed = worlds(a.data_dir)
    a.terminate()
    assert a.proc.returncode == 0, a.log()

    a = nodes.start("a")
    a.wait_ready()
    assert worlds(a.data_dir) == listed
    assert [(w["seq"], w["cid"]) for w in listed] == [(2, second["cid"])]
    assert status(a.data_dir)["worlds"]["loaded"] == 1

    older = sign_record(
        world_id=second["world_id"],
        cid=second["cid"],
        seq=1,
        visibility="public",
        issued_at=int(time.time()),
        account=owner,
    )
    with pytest.raises(RecordInvalid, match="stale"):
        post(a.data_dir, {"record": older.to_wire().decode()})
    assert [w["seq"] for w in worlds(a.data_dir)] == [2]
    a.terminate()
