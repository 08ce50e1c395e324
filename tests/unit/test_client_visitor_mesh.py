"""`Visitor` with a mesh: the node double sends `RtcConfig` and `MeshPlan`, Bob's side of the
link is a `Mesh` the test wires to the double, and real aiortc connects them on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from fluxnode.client import PeerMoved, Visitor
from fluxnode.client.events import Event
from fluxnode.client.mesh import Mesh
from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire
from fluxnode.core.session.presence import Transform
from tests.unit.client_node_double import NOW, NodeDouble, running
from tests.unit.mesh_double import until
from tests.unit.test_client_visitor import new_key, next_of

FULL = fr.LINK_DATA | fr.LINK_AUDIO


pytestmark = pytest.mark.usefixtures("loopback_ice")


@pytest.fixture
async def node() -> AsyncIterator[NodeDouble]:
    async with running(NodeDouble()) as double:
        yield double


async def bob_for(node: NodeDouble, v: Visitor, events: list[Event]) -> Mesh:
    """Bob's side: his signals reach the visitor through the double, as from his node."""
    bob = node.bob.visitor

    async def send(frame: fr.Frame) -> None:
        if isinstance(frame, fr.Signal):
            await node.send(fr.Signal(bob, frame.kind, frame.payload))

    mesh = Mesh(send, events.append, lambda: [v.visitor], lambda _: v.address, voice=True)
    await mesh.receive(fr.RtcConfig(()))
    await mesh.receive(fr.MeshPlan(1, "mesh", {v.visitor: FULL}))
    return mesh


async def pump(
    node: NodeDouble, v: Visitor, bob: Mesh, transforms: list[Transform],
    statuses: list[tuple[str, ...]],
) -> None:  # fmt: skip
    """What the visitor sends its node: signals go on to Bob, transforms are kept."""
    while True:
        frame = await node.received.get()
        if isinstance(frame, fr.Signal):
            await bob.receive(fr.Signal(v.visitor, frame.kind, frame.payload))
        elif isinstance(frame, Transform):
            transforms.append(frame)
        elif isinstance(frame, fr.MeshStatus):
            statuses.append(frame.connected)


async def test_a_visitor_meshes_with_a_peer_its_node_names(node: NodeDouble) -> None:
    v = await Visitor.connect(node.url, new_key(), clock=lambda: NOW, world_id="land:1",
                              voice=True)  # fmt: skip
    bob_events: list[Event] = []
    to_node: list[Transform] = []
    statuses: list[tuple[str, ...]] = []
    bob = await bob_for(node, v, bob_events)
    pumping = asyncio.create_task(pump(node, v, bob, to_node, statuses))
    try:
        await node.send(fr.RtcConfig(()))
        await node.send(fr.MeshPlan(1, "mesh", {node.bob.visitor: FULL | fr.LINK_OFFER}))
        await until(lambda: v.mesh_peers == {node.bob.visitor})
        await until(lambda: statuses[-1:] == [(node.bob.visitor,)])
        # Bob moves: the visitor sees it as a direct PeerMoved.
        assert bob.links[v.visitor].send(wire.encode(Transform((2.0, 0.0, 2.0))))
        event = await next_of(v, PeerMoved)
        while isinstance(event, PeerMoved) and not event.direct:  # the join's relayed one
            event = await next_of(v, PeerMoved)
        assert isinstance(event, PeerMoved)
        assert event.visitor == node.bob.visitor and event.transform == Transform((2.0, 0.0, 2.0))
        # We move twice: both reach Bob directly, only the first reaches the node.
        await v.move((1.0, 0.0, 1.1))
        await v.move((1.0, 0.0, 1.2))
        await until(lambda: len([e for e in bob_events if isinstance(e, PeerMoved)]) == 2)
        await until(lambda: len(to_node) == 1)
        assert v.mesh.stats["node_transforms_skipped"] == 1
        # Voice both ways.
        await until(lambda: v.audio_frames[node.bob.visitor] > 10)
        assert bob.voice is not None
        await until(lambda: bob.voice is not None and bob.voice.frames[v.visitor] > 10)
    finally:
        pumping.cancel()
        await bob.close()
        await v.close()
