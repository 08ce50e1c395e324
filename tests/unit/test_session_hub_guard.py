"""The hub under floods: member-node budgets and shunning, throttled errors, ops per tick."""

from __future__ import annotations

import pytest

from fluxnode.core.session import hub_guard, hub_placement, room
from fluxnode.core.session.frames import (
    Ack,
    Batch,
    Denied,
    Error,
    InstanceOps,
    Joined,
    Leave,
    MemberJoin,
    VisitorIn,
)
from fluxnode.core.session.hub import CLOSE_REFUSED
from fluxnode.core.session.presence import Transform, ViewerFrame
from fluxnode.core.session.state import StateOp

from .hub_net import WORLD, Client, Net, world


def joined(c: Client) -> Joined:
    last = c.of(Joined)[-1]
    assert isinstance(last, Joined)
    return last


def ack(net: Net, *clients: Client) -> None:
    for c in clients:
        frames = c.of(ViewerFrame)
        if frames:
            last = frames[-1]
            assert isinstance(last, ViewerFrame)
            net.send(c, Ack(last.seq))


def three_in_one() -> tuple[Net, Client, Client, Client]:
    net = Net(("h1", "h2", "h3"))
    alice = net.client("alice", "h1")
    net.join(alice)
    net.advance(2.1)
    bob, mallory = net.client("bob", "h2"), net.client("mallory", "h3")
    net.join(bob)
    net.join(mallory)
    instance = joined(alice).instance_id
    assert joined(bob).instance_id == instance == joined(mallory).instance_id
    net.advance(0.5)
    ack(net, alice, bob)
    assert mallory.id in alice.view.current() and bob.id in alice.view.current()
    return net, alice, bob, mallory


def position(c: Client, of: Client) -> tuple[float, float, float] | None:
    seen = c.view.current().get(of.id)
    return None if seen is None else seen.position


def test_a_flooding_member_is_shunned_while_honest_members_keep_every_tick() -> None:
    net, alice, bob, mallory = three_in_one()
    instance = joined(alice).instance_id
    h1, h2 = net.hubs["h1"], net.hubs["h2"]
    prev = 0.0
    for k in range(1, 31):
        x = 0.1 * k
        net.send(alice, Transform((x, 0.0, 0.0)))
        net.send(bob, Transform((0.0, 0.0, x)))
        for target in (h1, h2):  # h3 floods: 40 batches a tick where 1 is due
            for n in range(40):
                target.node_frame("h3", Batch(instance, 10_000 + n, {}), net.now)
        net.advance(0.1)
        ack(net, alice, bob)
        # Whatever h3 does, each honest visitor sees the other's transform of this tick or
        # the one before (two hubs' ticks need not line up: one tick is the relay's delay).
        assert position(bob, alice) in {(x, 0.0, 0.0), (prev, 0.0, 0.0)}
        assert position(alice, bob) in {(0.0, 0.0, x), (0.0, 0.0, prev)}
        prev = x
    net.advance(0.1)
    assert position(bob, alice) == (prev, 0.0, 0.0) and position(alice, bob) == (0.0, 0.0, prev)
    for hub in (h1, h2):
        assert hub.shunned(net.now) == {"h3"}
        stats = hub.statistics()
        peers = stats["peers"]
        assert isinstance(peers, dict) and peers["h3"]["shunned"] is True
        assert peers["h3"]["refused"] >= hub_guard.SHUN_AT
        assert "h2" not in peers and "h1" not in peers  # the honest ones were never refused
        refused = stats["refused"]
        assert isinstance(refused, dict) and refused["shunned"] > 0
        # Its visitor left our rooms; it is out of placement; we send it nothing.
        assert mallory.id not in hub.rooms[instance].remote
        assert "h3" not in hub.rooms[instance].heard
        assert not hub.directory.accepting("h3", net.now)
        (view,) = hub.directory.instances(WORLD, net.now)
        assert "h3" not in view.members
        assert all(peer != "h3" for peer, _ in hub.node_frames())
    assert mallory.id not in alice.view.current() and mallory.id not in bob.view.current()
    removed = [f for f in alice.of(ViewerFrame) if isinstance(f, ViewerFrame) and f.removed]
    assert any(mallory.id in f.removed for f in removed)
    # The shun ends; h3 is a stranger again, with a clean score.
    net.keepalive([alice, bob], hub_guard.SHUN_FOR + 1)
    assert h1.shunned(net.now) == set()
    assert h1.statistics()["peers"]["h3"]["score"] == 0  # type: ignore[index]


def test_a_burst_over_budget_is_refused_but_does_not_shun() -> None:
    net, alice, bob, _ = three_in_one()
    instance = joined(alice).instance_id
    h1 = net.hubs["h1"]
    before = h1.statistics()["refused"]
    assert isinstance(before, dict)
    for n in range(40):
        h1.node_frame("h2", Batch(instance, 10_000 + n, {}), net.now)
    refused = h1.statistics()["refused"]
    assert isinstance(refused, dict)
    over = refused["over_budget"] - before.get("over_budget", 0)
    assert 0 < over < hub_guard.SHUN_AT
    assert h1.shunned(net.now) == set()
    net.keepalive([alice, bob], over + 1)  # the score decays a point a second
    peers = h1.statistics()["peers"]
    assert isinstance(peers, dict) and peers["h2"]["score"] == 0
    assert bob.id in alice.view.current()


def test_visitor_in_is_budgeted_per_instance_and_the_edge_can_ask_first() -> None:
    net, alice, _, _ = three_in_one()
    instance = joined(alice).instance_id
    h1 = net.hubs["h1"]
    guest = net.client("guest", "h2")
    frame = VisitorIn(instance, guest.id, "p", b"s", {}, Transform((0.0, 0.0, 0.0)))
    assert h1.wants_visitor("h2", frame, net.now)
    assert not h1.wants_visitor("h9", frame, net.now)  # no member
    assert not h1.wants_visitor("h2", VisitorIn("nope", *list(vars(frame).values())[1:]), net.now)
    capacity = world().capacity
    for _ in range(capacity):  # the same visitor again and again: each one costs the budget
        h1.remote_visitor("h2", frame, guest.address, guest.public, 1e12, net.now)
    assert not h1.wants_visitor("h2", frame, net.now)
    refused = h1.statistics()["refused"]
    assert isinstance(refused, dict) and refused["over_budget"] >= 1


# --- clients ----------------------------------------------------------------------------------


def test_errors_to_a_flooding_client_are_throttled_and_it_is_closed_after_a_bound() -> None:
    net, alice, bob, _ = three_in_one()
    h1 = net.hubs["h1"]
    far = Transform((1e6, 0.0, 0.0))  # outside the world box: refused every time
    for _ in range(20):
        net.send(alice, far)
    errors = alice.of(Error)
    assert len(errors) == 5 and all(isinstance(e, Error) for e in errors)
    refused = h1.statistics()["refused"]
    assert isinstance(refused, dict)
    assert refused["transform_rejected"] == 20 and refused["errors_suppressed"] == 15
    assert alice.closes == []
    for _ in range(25):
        net.send(alice, far)
    assert alice.closes == [CLOSE_REFUSED]
    net.advance(0.3)
    assert alice.id not in bob.view.current()


def test_errors_come_back_after_a_quiet_second() -> None:
    net = Net(("h1",))
    alice = net.client("alice", "h1")
    for _ in range(10):
        net.send(alice, Transform((0.0, 0.0, 0.0)))  # before Join: refused
    assert len(alice.of(Error)) == 5
    net.advance(1.0)
    net.send(alice, Transform((0.0, 0.0, 0.0)))
    assert len(alice.of(Error)) == 6


def test_a_client_sending_ops_too_fast_is_rate_limited() -> None:
    net, alice, _, _ = three_in_one()
    for i in range(25):
        net.send(alice, alice.op("door", i % 2 == 0, net.now))
    refused = net.hubs["h1"].statistics()["refused"]
    assert isinstance(refused, dict) and refused["rate_limited"] == 5
    errors = [e for e in alice.of(Error) if isinstance(e, Error)]
    assert errors[0].code == "rate_limited" and "too many state operations" in errors[0].message


# --- state ops per tick -----------------------------------------------------------------------


def test_accepted_ops_reach_each_member_in_one_frame_per_tick_in_order() -> None:
    net, alice, bob, _ = three_in_one()
    instance = joined(alice).instance_id
    net.held.add(("h1", "h2"))
    ops = [alice.op("door", v, net.now + 0.001 * i) for i, v in enumerate((True, False, True))]
    for op in ops:
        net.send(alice, op)
    assert not [f for f in net.links[("h1", "h2")] if isinstance(f, InstanceOps)]
    net.advance(0.1)
    sent = [f for f in net.links[("h1", "h2")] if isinstance(f, InstanceOps)]
    assert sent == [InstanceOps(instance, tuple(ops))]
    net.held.clear()
    net.pump()
    assert [f for f in bob.frames if isinstance(f, StateOp)] == ops
    assert net.hubs["h2"].rooms[instance].state.value("door", "open") is True


def test_an_op_sent_just_before_leaving_still_reaches_the_members() -> None:
    net, alice, _, _ = three_in_one()
    instance = joined(alice).instance_id
    net.send(alice, alice.op("door", True, net.now))
    net.send(alice, Leave())
    for name in ("h2", "h3"):
        assert net.hubs[name].rooms[instance].state.value("door", "open") is True
    refused = net.hubs["h2"].statistics()["refused"]
    assert isinstance(refused, dict) and "foreign_visitor" not in refused


def test_an_op_lost_on_a_link_is_repaired_by_the_next_sync() -> None:
    net, alice, bob, _ = three_in_one()
    instance = joined(alice).instance_id
    net.held.add(("h1", "h2"))
    op = alice.op("door", True, net.now)
    net.send(alice, op)
    net.advance(0.1)
    link = net.links[("h1", "h2")]
    kept = [f for f in link if not isinstance(f, InstanceOps)]
    assert len(kept) < len(link)  # the ops frame is lost
    link.clear()
    link.extend(kept)
    net.held.clear()
    net.pump()
    assert net.hubs["h2"].rooms[instance].state.value("door", "open") is False
    net.keepalive([alice, bob], room.SYNC_EVERY + 1)
    assert net.hubs["h2"].rooms[instance].state.value("door", "open") is True
    assert op in bob.frames


# --- bounds ---------------------------------------------------------------------------------


def test_a_node_at_its_room_limit_denies_a_visitor_needing_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_placement, "MAX_ROOMS", 1)
    net = Net(("h1",))
    alice, bob = net.client("alice", "h1"), net.client("bob", "h1")
    net.join(alice)
    other = world()
    net.join(bob, type(other)("land:8", other.manifest, other.hosts))
    assert bob.of(Denied) == [Denied(hub_placement.DENIED_ROOMS)]
    refused = net.hubs["h1"].statistics()["refused"]
    assert isinstance(refused, dict) and refused["too_many_rooms"] == 1
    carol = net.client("carol", "h1")
    net.join(carol)  # an instance it holds already still takes visitors
    assert joined(carol).instance_id == joined(alice).instance_id


def test_a_member_past_the_member_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net(("h1", "h2"))
    alice = net.client("alice", "h1")
    net.join(alice)
    instance = joined(alice).instance_id
    h1 = net.hubs["h1"]
    monkeypatch.setattr(room, "MAX_MEMBERS", 3)
    for peer in ("p1", "p2", "p3"):
        h1.node_frame(peer, MemberJoin(WORLD, instance, world().capacity), net.now)
    assert set(h1.rooms[instance].heard) == {"p1", "p2"}
    refused = h1.statistics()["refused"]
    assert isinstance(refused, dict) and refused["too_many_members"] == 1


def test_a_member_replaying_its_visitors_after_we_come_back_is_within_budget() -> None:
    net = Net(("h1", "h2"))
    w = world(max_players=2)
    alice, bob = net.client("alice", "h1"), net.client("bob", "h2")
    net.join(bob, w)
    net.advance(2.1)
    for _ in range(4):  # alice leaves and comes back: each time h2 replays bob's VisitorIn
        net.join(alice, w)
        assert joined(alice).instance_id == joined(bob).instance_id
        net.advance(0.3)
        assert bob.id in alice.view.current()
        net.send(alice, Leave())
        alice.view = type(alice.view)()
        net.advance(0.5)
    refused = net.hubs["h1"].statistics()["refused"]
    assert isinstance(refused, dict) and "over_budget" not in refused
