"""WebRTC signalling through real node processes: two `flux-node run` with gateways, a raw
session on each in one instance. Each gets `RtcConfig` (the operator's ICE servers) after
`Joined` and a mesh plan naming the other; a `Signal` crosses from one node to the other as a
`SignalRelay` on `/flux/session/1` and back; a signal to a stranger is refused; the operator
silences a visitor with `flux-node session silence` and only its node's plans change."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest

from fluxnode.core.session import frames as fr
from tests.conftest import NodeFactory, run_cli
from tests.helpers import EXAMPLE_WORLD, publish, status, wait_for, worlds, write_owner_key
from tests.integration.session_visitors import (
    DIRECTORY_WAIT_S,
    RawSession,
    raw_visitor_id,
    stranger,
)

pytestmark = pytest.mark.slow

STUN = "stun:stun.example.org:3478"


@pytest.fixture
def two_nodes(nodes: NodeFactory, tmp_path: Path) -> tuple[str, str, str, Path, Path]:
    """Gateway URLs and data dirs of two bootstrapped nodes, and a public world both know."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.toml").write_text(
            f'[webrtc]\nenabled = true\nice_servers = [{{urls = ["{STUN}"]}}]\n'
        )
    a = nodes.start("a", gateway=True)
    a_info = a.wait_ready()
    b = nodes.start("b", "--bootstrap", a_info["addrs"][0], gateway=True)
    b_info = b.wait_ready()
    world_dir = tmp_path / "world"
    shutil.copytree(EXAMPLE_WORLD, world_dir)
    owner_key = tmp_path / "owner.key"
    write_owner_key(owner_key)
    world = publish(a.data_dir, world_dir, owner_key, slug="signals")["world_id"]
    wait_for(
        lambda: world in {w["world_id"] for w in worlds(b.data_dir)},
        "the world on b",
        timeout=30,
        detail=lambda: worlds(b.data_dir),
    )
    return a_info["gateway_url"], b_info["gateway_url"], world, a.data_dir, b.data_dir


async def seated(url: str, world: str, instance: str | None = None) -> tuple[RawSession, str]:
    """A raw session joined to `world` at `url` (in `instance`, asking again until the node
    has heard of it); its RtcConfig must come right after Joined."""
    deadline = time.monotonic() + DIRECTORY_WAIT_S
    while True:
        raw = await RawSession.open(url)
        await raw.sign_in(stranger())
        await raw.send(fr.Join(world))
        joined = await raw.expect(fr.Joined)
        after = await raw.receive()
        assert after == fr.RtcConfig((fr.IceServer((STUN,)),)), after
        if instance is None or joined.instance_id == instance:
            return raw, joined.instance_id
        await raw.send(fr.Leave())
        await raw.close()
        assert time.monotonic() < deadline, f"{url} never placed a visitor in {instance}"
        await asyncio.sleep(0.3)


async def plan_naming(raw: RawSession, peer: str) -> fr.MeshPlan:
    async with asyncio.timeout(10):
        while True:
            plan = await raw.expect(fr.MeshPlan)
            if peer in plan.links:
                return plan


async def test_signals_cross_nodes_and_the_operator_silences_on_its_own_node(
    two_nodes: tuple[str, str, str, Path, Path],
) -> None:
    url_a, url_b, world, dir_a, dir_b = two_nodes
    alice, instance = await seated(url_a, world)
    bob, _ = await seated(url_b, world, instance)
    try:
        alice_id, bob_id = raw_visitor_id(alice), raw_visitor_id(bob)
        plan_a = await plan_naming(alice, bob_id)
        plan_b = await plan_naming(bob, alice_id)
        assert plan_a.mode == plan_b.mode == "mesh"
        both = fr.LINK_DATA | fr.LINK_AUDIO
        assert plan_a.links[bob_id] & both == plan_b.links[alice_id] & both == both
        offerer, answerer = (alice, bob) if alice_id < bob_id else (bob, alice)
        offerer_id, answerer_id = sorted((alice_id, bob_id))
        await offerer.send(fr.Signal(answerer_id, "offer", "v=0 offer"))
        assert await answerer.expect(fr.Signal) == fr.Signal(offerer_id, "offer", "v=0 offer")
        await answerer.send(fr.Signal(offerer_id, "answer", "v=0 answer"))
        assert await offerer.expect(fr.Signal) == fr.Signal(answerer_id, "answer", "v=0 answer")
        await alice.send(fr.Signal("not-a-visitor-here", "offer", "v=0"))
        refused = await alice.expect(fr.Error)
        assert refused.code == "signal_refused"

        out = run_cli("session", "silence", bob_id, "--data-dir", str(dir_b))
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {"visitor": bob_id, "silenced": True}
        silenced = await bob.expect(fr.MeshPlan)
        assert silenced.silenced == (bob_id,) and not silenced.links[alice_id] & fr.LINK_AUDIO
        hub_b = status(dir_b)["sessions"]["hub"]
        assert hub_b["silenced"] == [bob_id]
        assert status(dir_a)["sessions"]["hub"]["silenced"] == []
        out = run_cli("session", "silence", bob_id, "--off", "--data-dir", str(dir_b))
        assert out.returncode == 0, out.stderr
        lifted = await bob.expect(fr.MeshPlan)
        assert lifted.silenced == () and lifted.links[alice_id] & fr.LINK_AUDIO
        bad = run_cli("session", "silence", "", "--data-dir", str(dir_b))
        assert bad.returncode == 2 and "VISITOR" in bad.stderr
    finally:
        await alice.close()
        await bob.close()
