"""A pair whose ICE fails, between Python visitors on two real node processes (see
`mesh_nodes`): three visitors in one mesh-mode instance, the pair across the two nodes.

ICE genuinely fails for that one pair: the test process rewrites the candidates in the SDP each
of the two gets from the other to a UDP port nobody answers on, so both ends' checks go
nowhere. The offerer's link times out and is reported `failed`; the answerer's link is left to
wait (its own deadline is held off), so its node learns of the failure only from the offerer's
node, across the node-to-node link. Both plans drop the pair, its moves relay through the nodes
while the other pairs stay direct, and once the nodes' failed-pair spell (shortened on these
nodes with the test-only `FLUX_TEST_MESH_FAIL_FOR`) is over, the pair meshes again.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fluxnode.client.mesh import Mesh
from fluxnode.client.rtc_link import PeerLink
from fluxnode.core.session import frames as fr
from fluxnode.node.rtc_loopback import MESH_FAIL_FOR_ENV
from tests.conftest import NodeFactory
from tests.integration.mesh_nodes import (
    everyone_sees_everyone_move,
    mesh_detail,
    meshed,
    start_two_nodes,
    until,
)
from tests.integration.session_visitors import Watched, join_instance, stranger, visit

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("loopback_ice")]

FAIL_FOR_S = 5.0  # the nodes' failed-pair spell here (60 s in production)


@dataclass
class BrokenPair:
    """Breaks ICE between every two visitors of this process but the spared one (so, with
    three, one pair) while `on`: the SDP each end gets from the other names `dead_port`."""

    dead_port: int
    spared: Mesh | None = None
    spared_id: str = ""
    on: bool = True

    def between(self, mesh: object, peer: str) -> bool:
        return (
            self.on
            and self.spared is not None
            and mesh is not self.spared
            and peer not in (self.spared_id, fr.NODE_PEER)
        )

    def mangle(self, sdp: str) -> str:
        """Every candidate line's port (the field after the address) becomes `dead_port`."""
        lines = []
        for line in sdp.split("\r\n"):
            if line.startswith("a=candidate:"):
                fields = line.split(" ")
                fields[5] = str(self.dead_port)
                line = " ".join(fields)
            lines.append(line)
        return "\r\n".join(lines)


@pytest.fixture
def broken(monkeypatch: pytest.MonkeyPatch) -> Iterator[BrokenPair]:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))  # bound and never read: checks sent there get no answer
    pair = BrokenPair(sink.getsockname()[1])
    receive, timed_out = Mesh.receive, PeerLink._timed_out

    async def receive_broken(self: Mesh, frame: fr.RtcConfig | fr.MeshPlan | fr.Signal) -> None:
        if (
            isinstance(frame, fr.Signal)
            and frame.kind in ("offer", "answer")
            and pair.between(self, frame.peer)
        ):
            frame = fr.Signal(frame.peer, frame.kind, pair.mangle(frame.payload))
        await receive(self, frame)

    def answerer_waits(self: PeerLink) -> None:
        if not self.offerer and pair.between(self.owner, self.peer):
            return  # the offerer's report, relayed by the nodes, closes this one
        timed_out(self)

    monkeypatch.setattr(Mesh, "receive", receive_broken)
    monkeypatch.setattr(PeerLink, "_timed_out", answerer_waits)
    try:
        yield pair
    finally:
        sink.close()


async def test_a_pair_whose_ice_fails_relays_across_nodes_then_meshes_again(
    nodes: NodeFactory, tmp_path: Path, crowd: list[Watched], broken: BrokenPair
) -> None:
    url_a, url_b, world = start_two_nodes(nodes, tmp_path, **{MESH_FAIL_FOR_ENV: str(FAIL_FOR_S)})
    third = await visit(url_a, stranger(), world, "third")
    crowd.append(third)
    broken.spared, broken.spared_id = third.v.mesh, third.v.visitor
    x = await join_instance(url_a, stranger(), world, "x", third.instance)
    crowd.append(x)
    y = await join_instance(url_b, stranger(), world, "y", third.instance)
    crowd.append(y)
    offerer, answerer = (x, y) if x.v.visitor < y.v.visitor else (y, x)

    def plans_drop_the_pair() -> bool:
        o, a = offerer.v.mesh, answerer.v.mesh
        return (
            o.stats["links_failed"] == 1
            and o.plan is not None
            and a.plan is not None
            and answerer.v.visitor not in o.plan.links
            and offerer.v.visitor not in a.plan.links
        )

    await until(plans_drop_the_pair, "both plans to drop the failed pair",
                detail=lambda: mesh_detail(crowd))  # fmt: skip
    # Only the offerer said `failed`: the answerer's node heard it from the offerer's.
    assert offerer.v.mesh.stats["signal_failed"] == 1
    assert answerer.v.mesh.stats["signal_failed"] == 0
    assert answerer.v.mesh.stats["links_failed"] == 0
    plan = third.v.mesh.plan
    assert plan is not None and plan.mode == "mesh"
    assert {x.v.visitor, y.v.visitor} <= plan.links.keys()  # the rest of the mesh stays
    await until(
        lambda: x.v.mesh_peers == {third.v.visitor} and y.v.mesh_peers == {third.v.visitor},
        "the other two pairs to mesh",
        detail=lambda: mesh_detail(crowd),
    )

    # The failed pair sees each other's moves relayed by the nodes, the others directly. (Should
    # the spell end meanwhile, the pair's new link fails the same way: it still relays.)
    def direct(mover: Watched, watcher: Watched) -> bool:
        return third in (mover, watcher)

    await everyone_sees_everyone_move(crowd, 0.1, direct)

    broken.on = False
    await until(lambda: meshed(crowd), "the pair to mesh again once the spell is over",
                detail=lambda: mesh_detail(crowd))  # fmt: skip
    await everyone_sees_everyone_move(crowd, 0.1, direct=True)
