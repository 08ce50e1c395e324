"""WebRTC in the hub: mesh plans, signalling (local and relayed), MeshStatus, silencing."""

from __future__ import annotations

import dataclasses

import pytest

from fluxnode.core.errors import FrameInvalid
from fluxnode.core.session import wire
from fluxnode.core.session.frames import (
    LINK_AUDIO,
    LINK_DATA,
    LINK_OFFER,
    NODE_PEER,
    Ack,
    Error,
    IceServer,
    Joined,
    Leave,
    MeshPlan,
    MeshStatus,
    RtcConfig,
    Signal,
    SignalRelay,
    Silence,
    StateSnapshot,
)
from fluxnode.core.session.hub import WorldInfo
from fluxnode.core.session.mesh import FAIL_FOR
from fluxnode.core.session.presence import Transform, ViewerFrame

from .hub_net import Client, Net, world

RTC = RtcConfig(
    (IceServer(("stun:stun.example.org:3478",)), IceServer(("turn:t.example",), "u", "p"))
)


def plan(c: Client) -> MeshPlan:
    plans = c.of(MeshPlan)
    assert plans, f"{c.name} got no MeshPlan: {[type(f).__name__ for f in c.frames]}"
    last = plans[-1]
    assert isinstance(last, MeshPlan)
    return last


def instance_of(c: Client) -> str:
    last = c.of(Joined)[-1]
    assert isinstance(last, Joined)
    return last.instance_id


def errors(c: Client) -> list[tuple[str, str]]:
    return [(f.code, f.message) for f in c.of(Error) if isinstance(f, Error)]


def crowd(n1: int, n2: int, w: WorldInfo | None = None,
          fail_for: float = FAIL_FOR) -> tuple[Net, list[Client]]:  # fmt: skip
    """`n1` visitors on h1 and `n2` on h2, all in one instance of a 16-seat world."""
    net = Net(("h1", "h2"), rtc=RTC, mesh_fail_for=fail_for)
    w = w or world(16)
    clients = [net.client(f"a{i}", "h1") for i in range(n1)]
    clients += [net.client(f"b{i}", "h2") for i in range(n2)]
    net.join(clients[0], w)
    net.advance(2.1)  # h1's directory reaches h2
    for c in clients[1:]:
        net.join(c, w)
    net.advance(1.2)
    assert len({instance_of(c) for c in clients}) == 1
    return net, clients


def check_mesh(clients: list[Client]) -> None:
    for c in clients:
        p = plan(c)
        assert p.mode == "mesh"
        assert set(p.links) == {o.id for o in clients} - {c.id}
        for o in clients:
            if o is c:
                continue
            mine, theirs = p.links[o.id], plan(o).links[c.id]
            assert mine & ~LINK_OFFER == theirs & ~LINK_OFFER == LINK_DATA | LINK_AUDIO
            assert bool(mine & LINK_OFFER) == (c.id < o.id) != bool(theirs & LINK_OFFER)


def test_rtc_config_comes_right_after_joined_and_a_node_without_webrtc_sends_none() -> None:
    _, (alice,) = crowd(1, 0)
    kinds = [type(f) for f in alice.frames]
    assert kinds[:3] == [Joined, RtcConfig, StateSnapshot]
    assert alice.of(RtcConfig) == [RTC]
    plain = Net(("h1",))
    bob = plain.client("bob", "h1")
    plain.join(bob)
    plain.advance(1.5)
    assert not bob.of(RtcConfig) and not bob.of(MeshPlan)
    plain.send(bob, Signal(bob.id, "offer", "v=0"))
    assert errors(bob) == [("signal_refused", "this node does not relay WebRTC signals")]


def test_eight_visitors_on_two_hubs_mesh_then_the_ninth_relays_and_eight_mesh_again() -> None:
    net, clients = crowd(4, 4)
    check_mesh(clients)
    epochs = {c.id: plan(c).epoch for c in clients}
    ninth = net.client("b4", "h2")
    net.join(ninth, world(16))
    net.advance(1.2)
    everyone = [*clients, ninth]
    for c in everyone:
        p = plan(c)
        assert p.mode == "relay"
        assert all(f & ~LINK_OFFER == LINK_AUDIO for f in p.links.values())
        assert len(p.links) <= 8
        for peer, flags in p.links.items():
            back = plan(next(o for o in everyone if o.id == peer)).links[c.id]
            assert bool(flags & LINK_OFFER) != bool(back & LINK_OFFER)
    assert all(plan(c).epoch == epochs[c.id] + 1 for c in clients)
    net.send(ninth, Leave())
    net.advance(1.2)
    check_mesh(clients)


def test_signals_reach_local_and_remote_peers_and_failed_unlinks_the_pair_on_both_hubs() -> None:
    net, (a0, a1, b0) = crowd(2, 1)
    net.send(a0, Signal(a1.id, "offer", "v=0 local"))
    net.send(a0, Signal(b0.id, "offer", "v=0 remote"))
    net.send(b0, Signal(a0.id, "answer", "v=0 back"))
    assert a1.of(Signal) == [Signal(a0.id, "offer", "v=0 local")]
    assert b0.of(Signal) == [Signal(a0.id, "offer", "v=0 remote")]
    assert a0.of(Signal) == [Signal(b0.id, "answer", "v=0 back")]
    net.send(b0, Signal(a0.id, "failed", ""))
    net.advance(1.2)
    assert b0.id not in plan(a0).links and a0.id not in plan(b0).links
    assert a1.id in plan(a0).links  # the rest of the mesh stays
    net.send(a0, Signal(b0.id, "offer", "v=0 again"))
    assert errors(a0)[-1] == ("signal_refused", f"no link to {b0.id!r} in your mesh plan")
    net.keepalive([a0, a1, b0], 60.0)
    assert b0.id in plan(a0).links and a0.id in plan(b0).links


def test_the_hubs_failed_pair_spell_is_theirs_to_set() -> None:
    # (A test-only knob on nodes: `FLUX_TEST_MESH_FAIL_FOR`.)
    net, (a0, _, b0) = crowd(2, 1, fail_for=5.0)
    net.send(a0, Signal(b0.id, "failed", ""))
    net.advance(1.2)
    assert b0.id not in plan(a0).links and a0.id not in plan(b0).links
    net.keepalive([*net.clients.values()], 5.0)
    assert b0.id in plan(a0).links and a0.id in plan(b0).links


def test_signals_to_strangers_over_the_rate_or_to_the_node_are_refused_and_go_nowhere() -> None:
    net, (a0, a1, b0) = crowd(2, 1)
    other = dataclasses.replace(world(16), world_id="land:8")
    stranger = net.client("s0", "h1")
    net.join(stranger, other)
    net.advance(1.2)
    assert instance_of(stranger) != instance_of(a0)
    net.send(a0, Signal(stranger.id, "offer", "v=0"))
    net.send(stranger, Signal(b0.id, "bye", ""))
    net.send(a0, Signal(a0.id, "offer", "v=0"))
    net.send(a0, Signal(NODE_PEER, "offer", "v=0"))
    assert not stranger.of(Signal) and not b0.of(Signal)
    assert errors(a0) == [
        ("signal_refused", f"{stranger.id!r} is not a visitor of your instance"),
        ("signal_refused", f"{a0.id!r} is not a visitor of your instance"),
        ("signal_refused", "no node channel here"),
    ]
    assert errors(stranger) == [("signal_refused", f"{b0.id!r} is not a visitor of your instance")]
    net.advance(5.0)  # the bucket is full again
    for i in range(40):
        net.send(a1, Signal(b0.id, "ice", f"candidate {i}"))
    assert len(b0.of(Signal)) == 40
    net.send(a1, Signal(b0.id, "ice", "one too many"))
    assert len(b0.of(Signal)) == 40
    assert errors(a1) == [("signal_refused", "too many signals; wait 0.1 s")]


def test_an_oversized_sdp_does_not_decode() -> None:
    big = Signal("someone", "offer", "a" * ((16 << 10) + 1))
    with pytest.raises(FrameInvalid, match="at most 16384 bytes"):
        wire.decode(wire.encode(big))
    relay = SignalRelay("i", "s", "t", "offer", "a" * ((16 << 10) + 1))
    with pytest.raises(FrameInvalid, match="at most 16384 bytes"):
        wire.decode(wire.encode(relay))


def test_a_signal_relay_is_taken_only_from_the_member_that_seated_its_source() -> None:
    net, (a0, a1, b0) = crowd(2, 1)
    h2 = net.hubs["h2"]
    instance = instance_of(a0)
    for forged in (
        SignalRelay(instance, b0.id, b0.id, "offer", "v=0"),  # h1 did not seat b0
        SignalRelay(instance, "nobody", b0.id, "offer", "v=0"),
    ):
        h2.node_frame("h1", forged, net.now)
    net.collect()
    assert not b0.of(Signal)
    assert h2.statistics()["refused"]["forged_signal"] == 2  # type: ignore[index]
    h2.node_frame("h1", SignalRelay(instance, a0.id, a1.id, "offer", "v=0"), net.now)
    net.collect()
    assert h2.statistics()["refused"]["signal_unknown_target"] == 1  # type: ignore[index]
    h2.node_frame("h1", SignalRelay(instance, a0.id, b0.id, "offer", "v=0"), net.now)
    net.collect()
    assert b0.of(Signal) == [Signal(a0.id, "offer", "v=0")]


def silence(owner: Client, instance: str, target: Client, on: bool, ms: int) -> Silence:
    s = Silence(instance, target.id, on, ms, owner.id)
    return dataclasses.replace(s, signature=owner.key.sign(s.signing_bytes()))


def test_only_the_owners_signed_silence_applies_and_it_applies_on_every_member() -> None:
    net = Net(("h1", "h2"), rtc=RTC)
    owner = net.client("owner", "h1")
    w = dataclasses.replace(world(16), owner=owner.address)
    a1, b0 = net.client("a1", "h1"), net.client("b0", "h2")
    net.join(owner, w)
    net.advance(2.1)
    net.join(a1, w)
    net.join(b0, w)
    net.advance(1.2)
    instance = instance_of(owner)
    net.send(a1, silence(a1, instance, b0, True, 1))  # not the owner
    unsigned = dataclasses.replace(silence(owner, instance, b0, True, 1), signature=b"x" * 64)
    net.send(owner, unsigned)
    assert errors(a1) == [("silence_refused", "only the world's owner may silence visitors")]
    assert errors(owner) == [
        ("silence_refused", "the silence is not signed by its author's session key")
    ]
    net.advance(1.2)
    assert plan(a1).links[b0.id] & LINK_AUDIO and not plan(a1).silenced
    net.send(owner, silence(owner, instance, b0, True, 2))
    net.advance(1.2)
    assert plan(a1).silenced == (b0.id,) and plan(b0).silenced == (b0.id,)
    assert plan(a1).links[b0.id] & ~LINK_OFFER == LINK_DATA
    assert {p: f & ~LINK_OFFER for p, f in plan(b0).links.items()} == {
        owner.id: LINK_DATA, a1.id: LINK_DATA
    }  # fmt: skip
    net.send(owner, silence(owner, instance, b0, False, 2))  # not newer: a replay changes nothing
    net.advance(1.2)
    assert plan(b0).silenced == (b0.id,)
    net.send(owner, silence(owner, instance, b0, False, 3))
    net.advance(1.2)
    assert plan(b0).silenced == () and plan(a1).links[b0.id] & LINK_AUDIO


def test_an_operators_silence_holds_on_its_own_node_only() -> None:
    net, (a0, a1, b0) = crowd(2, 1)
    net.hubs["h1"].silence(a1.id, True, net.now)
    net.advance(1.2)
    assert plan(a0).silenced == (a1.id,) and not plan(a0).links[a1.id] & LINK_AUDIO
    assert plan(b0).silenced == () and plan(b0).links[a1.id] & LINK_AUDIO
    net.hubs["h1"].silence(a1.id, False, net.now)
    net.advance(1.2)
    assert plan(a0).silenced == () and plan(a0).links[a1.id] & LINK_AUDIO


def test_peers_a_client_reaches_directly_are_left_out_of_its_viewer_frames() -> None:
    net, (a0, a1, b0) = crowd(2, 1)

    def ack(c: Client) -> None:
        last = c.of(ViewerFrame)[-1]
        assert isinstance(last, ViewerFrame)
        net.send(c, Ack(last.seq))

    for c in (a0, a1, b0):
        ack(c)
    net.send(a0, MeshStatus((a1.id, b0.id, "someone-not-in-the-plan")))
    net.advance(0.3)
    ack(a0)
    seen = len(a0.of(ViewerFrame))
    net.send(a1, Transform((1.0, 0.0, 0.0)))
    net.send(b0, Transform((2.0, 0.0, 0.0)))
    net.advance(0.5)
    assert len(a0.of(ViewerFrame)) == seen  # nothing new for a0: both moves came peer to peer
    assert a0.view.current()[a1.id] == Transform((0.0, 0.0, 0.0))  # still present
    seen_a1 = a1.view.current()[b0.id]
    assert seen_a1 is not None and seen_a1.position == (2.0, 0.0, 0.0)  # a1 reports nothing
    net.send(a0, MeshStatus((a1.id,)))  # the channel to b0 closed: its moves come again
    net.advance(0.3)
    moved = a0.view.current()[b0.id]
    assert moved is not None and moved.position == (2.0, 0.0, 0.0)
    ack(a0)
    net.send(a1, Leave())
    net.advance(0.3)
    assert a1.id not in a0.view.current()  # its leaving still arrives
    stats = net.hubs["h1"].statistics()["client_transforms"]
    assert stats == {a0.id: 0}  # type: ignore[comparison-overlap]
    assert net.hubs["h2"].statistics()["client_transforms"] == {b0.id: 1}


def test_a_node_that_joins_the_instance_later_learns_the_owners_silences() -> None:
    net = Net(("h1", "h2", "h3"), rtc=RTC)
    owner, b0 = net.client("owner", "h1"), net.client("b0", "h2")
    w = dataclasses.replace(world(16), owner=owner.address)
    net.join(owner, w)
    net.advance(2.1)
    net.join(b0, w)
    net.advance(1.2)
    net.send(owner, silence(owner, instance_of(owner), b0, True, 5))
    net.advance(1.2)
    late = net.client("c0", "h3")
    net.join(late, w)
    net.advance(1.2)
    assert instance_of(late) == instance_of(owner)
    assert plan(late).silenced == (b0.id,) and not plan(late).links[b0.id] & LINK_AUDIO
    assert plan(late).links[owner.id] & LINK_AUDIO
    assert "forged_silence" not in net.hubs["h3"].statistics()["refused"]  # type: ignore[operator]
