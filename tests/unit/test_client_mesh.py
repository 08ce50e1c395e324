"""`fluxnode.client.mesh` over real aiortc on loopback, nodes played by `SignalHub`."""

from __future__ import annotations

import pytest
from aiortc import RTCIceServer

from fluxnode.client.events import PeerMoved
from fluxnode.client.mesh import Mesh
from fluxnode.client.rtc_link import PeerLink
from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire
from fluxnode.core.session.presence import Transform
from tests.unit.mesh_double import FULL, SignalHub, plan_for, until

A, B, C = "aaa", "bbb", "ccc"


pytestmark = pytest.mark.usefixtures("loopback_ice")


async def sent(mesh: Mesh, transform: Transform, hub: SignalHub, visitor: str) -> None:
    async def to_node(frame: fr.Frame) -> None:
        await hub._from(visitor, frame)

    await mesh.move(transform, to_node)


def ice_servers(link: PeerLink) -> list[RTCIceServer]:
    """What the peer connection itself was configured with (aiortc has no getter)."""
    config = link.pc._RTCPeerConnection__configuration  # type: ignore[attr-defined]
    assert config is link.config and config.iceServers is not None
    return config.iceServers


def moved(hub: SignalHub, visitor: str, source: str) -> list[PeerMoved]:
    return [e for e in hub.events[visitor] if isinstance(e, PeerMoved) and e.visitor == source]


async def test_three_visitors_form_a_mesh_and_move_peer_to_peer(hub: SignalHub) -> None:
    meshes = {v: hub.add(v) for v in (A, B, C)}
    await hub.start()
    for v, mesh in meshes.items():
        others = tuple(sorted({A, B, C} - {v}))
        await until(lambda m=mesh, o=others: m.connected() == set(o))
        await until(lambda v=v, o=others: hub.status[v][-1:] == [o])
    offers = [(s, f.peer) for s, f in hub.signals if f.kind == "offer"]
    assert sorted(offers) == [(A, B), (A, C), (B, C)]  # the smaller id offers, once a pair
    t = Transform((1.0, 2.0, 3.0), (0.0, 0.0, 0.0, 1.0), "walk")
    await sent(meshes[A], t, hub, A)
    await until(lambda: moved(hub, B, A) and moved(hub, C, A))
    assert moved(hub, B, A) == [PeerMoved(A, f"addr-{A}", t, direct=True)]
    # Everyone gets A's moves directly: the node gets one (presence), then none within 1 s.
    await sent(meshes[A], Transform((1.1, 2.0, 3.0)), hub, A)
    assert hub.transforms[A] == 1
    assert meshes[A].stats["node_transforms_skipped"] == 1
    await until(lambda: len(moved(hub, C, A)) == 2)


async def test_full_rate_to_the_node_while_a_data_link_is_not_open(hub: SignalHub) -> None:
    a, _ = hub.add(A), hub.add(B)
    hub.swallow.add((A, B, "offer"))  # B never hears of the link: it never opens
    await hub.start()
    for x in range(3):
        await sent(a, Transform((float(x), 0.0, 0.0)), hub, A)
    assert hub.transforms[A] == 3
    assert a.connected() == set()


async def test_a_link_that_does_not_connect_is_reported_failed_and_not_retried() -> None:
    hub = SignalHub()
    a = hub.add(A, connect_timeout=0.3)
    hub.add(B)
    hub.swallow.add((A, B, "offer"))
    try:
        await hub.start()
        await until(lambda: any(f.kind == "failed" and f.peer == B for _, f in hub.signals))
        assert B in a.failed and B not in a.links
        await a.receive(plan_for(A, [A, B], epoch=2))  # the same link named again: not retried
        assert [f.kind for s, f in hub.signals if s == A] == ["offer", "failed"]
        await a.receive(fr.MeshPlan(3, "mesh", {}))  # a plan without it clears the mark
        assert not a.failed
    finally:
        await hub.close()


async def test_a_link_left_out_of_the_plan_is_closed_with_bye(hub: SignalHub) -> None:
    a, b = hub.add(A), hub.add(B)
    await hub.start()
    await until(lambda: a.connected() == {B} and b.connected() == {A})
    await a.receive(fr.MeshPlan(2, "relay", {}))
    assert (A, fr.Signal(B, "bye", "")) in hub.signals
    assert a.links == {}
    await until(lambda: b.links == {} and hub.status[B][-1] == ())
    assert hub.status[A][-1] == ()


async def test_an_offer_before_the_plan_is_answered_once_the_plan_names_it(
    hub: SignalHub,
) -> None:
    a, b = hub.add(A), hub.add(B)
    await b.receive(fr.RtcConfig(()))  # B has its config but no plan yet
    await a.receive(fr.RtcConfig(()))
    await a.receive(plan_for(A, [A, B]))
    await until(lambda: bool(b._pending))
    assert b.links == {}
    await b.receive(plan_for(B, [A, B]))
    await until(lambda: a.connected() == {B} and b.connected() == {A})


async def test_an_offer_for_a_link_not_in_the_plan_is_not_answered(hub: SignalHub) -> None:
    a, b = hub.add(A), hub.add(B)
    await b.receive(fr.RtcConfig(()))
    await b.receive(fr.MeshPlan(1, "relay", {}))
    await a.receive(fr.RtcConfig(()))
    await a.receive(plan_for(A, [A, B]))
    await until(lambda: bool(b._pending))
    await b.receive(fr.MeshPlan(2, "relay", {C: fr.LINK_AUDIO}))  # a new plan, still not A
    assert b.links == {}
    assert not [f for s, f in hub.signals if s == B]


async def test_links_wait_for_rtc_config_and_use_exactly_its_ice_servers(hub: SignalHub) -> None:
    a = hub.add(A)
    hub.add(B)
    await a.receive(plan_for(A, [A, B]))
    assert a.links == {}  # without RtcConfig aiortc would use a public STUN server
    await a.receive(fr.RtcConfig(()))
    assert ice_servers(a.links[B]) == []
    servers = (fr.IceServer(("turn:turn.example:3478",), "u", "p"),)
    c = hub.add(C)
    await c.receive(fr.RtcConfig(servers))
    await c.receive(fr.MeshPlan(1, "mesh", {"ddd": FULL | fr.LINK_OFFER}))
    (server,) = ice_servers(c.links["ddd"])
    assert (server.urls, server.username, server.credential) == (
        ["turn:turn.example:3478"], "u", "p")  # fmt: skip


async def test_bad_frames_from_a_peer_are_dropped_and_counted(hub: SignalHub) -> None:
    a, b = hub.add(A), hub.add(B)
    await hub.start()
    await until(lambda: a.connected() == {B} and b.connected() == {A})
    link = a.links[B]
    link.send(b"\xc1garbage")
    link.send(wire.encode(fr.Leave()))  # a frame, but not a transform
    link.send(wire.encode(Transform((float("nan"), 0.0, 0.0))))
    link.send(wire.encode(Transform((0.5, 0.0, 0.0))))
    await until(lambda: bool(moved(hub, B, A)))
    assert b.stats["direct_bad"] == 3  # the channel is unordered, but loopback keeps order
    assert [e.transform for e in moved(hub, B, A)] == [Transform((0.5, 0.0, 0.0))]


async def test_where_we_stand_reaches_a_peer_whose_channel_opens_after_our_last_step(
    hub: SignalHub,
) -> None:
    a, b = hub.add(A), hub.add(B)
    t = Transform((4.0, 0.0, 1.0), (0.0, 0.0, 0.0, 1.0), "idle")
    await sent(a, t, hub, A)  # before any link: only the node has it
    await hub.start()
    await until(lambda: b.connected() == {A} and a.connected() == {B})
    # B's node leaves A out of B's frames now; A stands still, yet B learns where A is.
    await until(lambda: bool(moved(hub, B, A)))
    assert moved(hub, B, A)[0] == PeerMoved(A, f"addr-{A}", t, direct=True)


async def test_a_step_the_once_a_second_rule_held_back_reaches_the_node(hub: SignalHub) -> None:
    meshes = {v: hub.add(v) for v in (A, B)}
    await hub.start()
    await until(lambda: meshes[A].connected() == {B})
    await sent(meshes[A], Transform((1.0, 0.0, 0.0)), hub, A)
    await sent(meshes[A], Transform((2.0, 0.0, 0.0)), hub, A)  # within 1 s: held back
    assert hub.transforms[A] == 1
    await until(lambda: hub.transforms[A] == 2)  # the latest, a second later at most
    assert meshes[A].stats["node_transforms"] == 2
