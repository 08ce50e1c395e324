"""The session hub: joins, transforms across hubs, the seat race, state, chat (in-memory net)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxnode.core.session.frames import (
    Ack,
    Batch,
    Denied,
    Error,
    InstanceOps,
    Joined,
    RedirectTo,
    StateSnapshot,
)
from fluxnode.core.session.hub import DENIED_FILLED, SessionHub
from fluxnode.core.session.presence import Transform, ViewerFrame
from fluxnode.core.session.state import StateOp

from .hub_net import OWNER, WORLD, Client, Net, verify_session, world


def joined(c: Client) -> Joined:
    frames = c.of(Joined)
    assert frames, f"{c.name} got {c.frames}"
    last = frames[-1]
    assert isinstance(last, Joined)
    return last


def test_one_visitor_joins_and_gets_joined_snapshot_and_a_full_viewer_frame() -> None:
    net = Net(("h1",))
    alice = net.client("alice", "h1")
    net.join(alice)
    j = joined(alice)
    assert (j.world_id, j.node, j.seat) == (WORLD, "h1", 0)
    kinds = [type(f).__name__ for f in alice.frames]
    assert kinds[:2] == ["Joined", "StateSnapshot"]
    snap = alice.of(StateSnapshot)[0]
    assert isinstance(snap, StateSnapshot) and snap.instance == j.instance_id
    net.advance(0.2)
    frames = alice.of(ViewerFrame)
    assert frames and isinstance(frames[0], ViewerFrame) and frames[0].base is None
    assert net.hubs["h1"].statistics()["visitors_local"] == 1


def two_hubs_one_instance() -> tuple[Net, Client, Client]:
    net = Net(("h1", "h2"))
    alice, bob = net.client("alice", "h1"), net.client("bob", "h2")
    net.join(alice)
    net.advance(2.1)  # h1's directory reaches h2
    net.join(bob)
    assert joined(alice).instance_id == joined(bob).instance_id
    return net, alice, bob


def test_visitors_on_two_hubs_share_an_instance_and_see_each_other_move() -> None:
    net, alice, bob = two_hubs_one_instance()
    net.advance(0.3)
    assert alice.id in bob.view.current() and bob.id in alice.view.current()
    for c in (alice, bob):
        latest = c.of(ViewerFrame)[-1]
        assert isinstance(latest, ViewerFrame)
        net.send(c, Ack(latest.seq))
    net.send(alice, Transform((3.0, 0.0, 1.0)))
    net.advance(0.3)
    seen = bob.view.current()[alice.id]
    assert seen is not None and seen.position == (3.0, 0.0, 1.0)
    last = bob.of(ViewerFrame)[-1]
    assert isinstance(last, ViewerFrame) and last.base is not None  # a delta, not a snapshot
    info = [f.info for f in bob.of(ViewerFrame) if isinstance(f, ViewerFrame) and f.info]
    assert info[0][alice.id]["address"] == alice.address


def race(rng: random.Random, duplicate: float) -> tuple[Net, list[Client]]:
    """alice sits in a 2-seat instance on h1; bob (h2) and carol (h3) ask for the last seat."""
    net = Net(("h1", "h2", "h3"))
    w = world(max_players=2)
    alice = net.client("alice", "h1")
    net.join(alice, w)
    net.advance(2.1)
    bob, carol = net.client("bob", "h2"), net.client("carol", "h3")
    net.auto = False
    net.hubs["h2"].join(bob.id, w, net.now)
    net.hubs["h3"].join(carol.id, w, net.now)
    net.pump_random(rng, duplicate)
    net.auto = True
    net.advance(5.0)  # claim timeouts, retries
    return net, [alice, bob, carol]


def check_race(net: Net, clients: list[Client]) -> None:
    alice, bob, carol = clients
    first = joined(alice).instance_id
    in_first = [c for c in clients if c.of(Joined) and joined(c).instance_id == first]
    assert len(in_first) == 2, [c.frames for c in clients]
    loser = bob if carol in in_first else carol
    # The loser was placed again (a new instance) or told plainly.
    assert loser.of(Joined) or Denied(DENIED_FILLED) in loser.frames
    if loser.of(Joined):
        assert joined(loser).instance_id != first
    seats = [s for h in net.hubs.values() if (r := h.rooms.get(first)) for s in r.seats.held()]
    assert sorted(seats) == [0, 1]


@pytest.mark.parametrize("seed", range(12))
def test_concurrent_joins_for_the_last_seat_seat_exactly_one(seed: int) -> None:
    check_race(*race(random.Random(seed), duplicate=0.2 if seed % 2 else 0.0))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.sampled_from([0.0, 0.3]))
def test_concurrent_joins_never_oversell_whatever_the_order(
    rng: random.Random, duplicate: float
) -> None:
    check_race(*race(rng, duplicate))


def test_concurrent_door_toggles_converge_on_every_replica() -> None:
    net, alice, bob = two_hubs_one_instance()
    carol = net.client("carol", "h1")
    net.join(carol)
    net.auto = False
    op_a, op_b = alice.op("door", True, net.now), bob.op("door", False, net.now)
    net.hubs["h1"].client_frame(alice.id, op_a, net.now)
    net.hubs["h2"].client_frame(bob.id, op_b, net.now)
    net.tick()  # accepted ops leave with the tick
    net.pump_random(random.Random(3))
    net.auto = True
    net.pump()
    instance = joined(alice).instance_id
    values = {n: h.rooms[instance].state.value("door", "open") for n, h in net.hubs.items()}
    assert len(set(map(str, values.values()))) == 1, values
    # carol (h1) saw the remote op relayed to her; both toggles reached every client somehow.
    assert [f for f in carol.frames if isinstance(f, StateOp)]


def test_an_op_violating_permissions_is_rejected_by_the_receiving_replica() -> None:
    net, alice, bob = two_hubs_one_instance()
    instance = joined(alice).instance_id
    h2 = net.hubs["h2"]
    before = h2.statistics()["refused"]
    assert isinstance(before, dict)
    statue = alice.op("statue", True, net.now, prop="lit")  # canModify is false
    throne = alice.op("throne", True, net.now, prop="lit")  # owned by OWNER, not alice
    forged = alice.op("throne", True, net.now, author=OWNER, prop="lit")  # alice claims OWNER
    # h1 is a member that skipped its checks: it relays the ops as they are.
    h2.node_frame("h1", InstanceOps(instance, (statue, throne, forged)), net.now)
    after = h2.statistics()["refused"]
    assert isinstance(after, dict)
    assert after.get("op_rejected", 0) - before.get("op_rejected", 0) == 3
    assert h2.rooms[instance].state.value("throne", "lit") is None
    assert not [f for f in bob.frames if isinstance(f, StateOp)]


def test_client_ops_are_checked_before_relay_and_answered_with_error() -> None:
    net, alice, bob = two_hubs_one_instance()
    net.send(alice, alice.op("statue", True, net.now, prop="lit"))
    err = alice.of(Error)[-1]
    assert isinstance(err, Error) and err.code == "op_rejected"
    assert "cannot be modified" in err.message
    net.send(alice, alice.op("door", True, net.now))
    net.advance(0.1)  # ops go to the members with the tick
    assert [f for f in bob.frames if isinstance(f, StateOp)]


def test_chat_is_relayed_and_a_late_joiner_gets_the_history() -> None:
    net, alice, bob = two_hubs_one_instance()
    instance = joined(alice).instance_id
    net.send(alice, alice.chat(instance, "hello", net.now))
    assert [f.text for f in bob.frames if hasattr(f, "text")] == ["hello"]
    net.advance(2.5)
    carol = net.client("carol", "h2")
    dave = net.client("dave", "h1")
    net.join(carol)
    net.join(dave)
    for late in (carol, dave):
        snap = late.of(StateSnapshot)[-1]
        assert isinstance(snap, StateSnapshot) and [m.text for m in snap.chat] == ["hello"]


def test_a_third_hub_joining_late_learns_history_and_state_by_sync() -> None:
    net, alice, bob = two_hubs_one_instance()
    instance = joined(alice).instance_id
    net.send(alice, alice.chat(instance, "first", net.now))
    net.send(bob, bob.op("door", True, net.now))
    net.keepalive([alice, bob], 60.0)  # old enough that only a sync could carry them
    net2 = net
    net2.hubs["h3"] = SessionHub("h3", verify_session=verify_session, is_banned=lambda w, a: False,
                                 max_visitors=10, gateway_url="ws://h3.test/session")  # fmt: skip
    net2.advance(2.5)
    carol = net2.client("carol", "h3")
    net2.join(carol)
    assert joined(carol).instance_id == instance
    room = net2.hubs["h3"].rooms[instance]
    assert room.state.value("door", "open") is True
    assert [m.text for m in room.chat.history()] == ["first"]
    # The claim waited for the members' sync, so carol's snapshot already holds both.
    snap = carol.of(StateSnapshot)[-1]
    assert isinstance(snap, StateSnapshot)
    assert [m.text for m in snap.chat] == ["first"]
    assert [(o.object_id, o.value) for o in snap.ops] == [("door", True)]


def test_per_node_limit_redirects_to_the_other_nodes_gateway() -> None:
    net = Net(("h1", "h2"), max_visitors=1)
    alice, bob = net.client("alice", "h1"), net.client("bob", "h1")
    net.join(alice)
    net.advance(2.1)
    net.join(bob)
    redirect = bob.of(RedirectTo)[-1]
    assert redirect == RedirectTo("h2", ("ws://h2.test/session",), None)


def test_a_silent_member_is_lost_and_its_visitors_leave() -> None:
    net, alice, bob = two_hubs_one_instance()
    net.advance(0.5)
    assert bob.id in alice.view.current()
    for c in (alice,):
        latest = c.of(ViewerFrame)[-1]
        assert isinstance(latest, ViewerFrame)
        net.send(c, Ack(latest.seq))
    net.held.add(("h2", "h1"))  # h2 goes quiet towards h1
    net.advance(9.0)
    assert bob.id in alice.view.current()
    net.advance(1.5)
    assert bob.id not in alice.view.current()
    removed = [f for f in alice.of(ViewerFrame) if isinstance(f, ViewerFrame) and f.removed]
    assert removed and bob.id in removed[-1].removed
    stats = net.hubs["h1"].statistics()
    assert stats["members_lost"] == 1 and stats["visitors_remote"] == 0


def test_a_visitor_that_reconnects_within_30_s_gets_its_seat_back() -> None:
    net, alice, bob = two_hubs_one_instance()
    j = joined(alice)
    net.hubs["h1"].client_gone(alice.id, net.now)
    net.keepalive([bob], 20.0)
    assert alice.id in net.hubs["h2"].rooms[j.instance_id].presence
    alice.frames.clear()
    net.hubs["h1"].sign_in(alice.id, alice.address, alice.public, "proof", b"sig", 1e12, net.now)
    net.join(alice)
    again = joined(alice)
    assert (again.instance_id, again.seat) == (j.instance_id, j.seat)
    assert isinstance(alice.frames[1], StateSnapshot)


def test_a_dropped_visitor_is_gone_after_the_reconnect_window() -> None:
    net, alice, bob = two_hubs_one_instance()
    j = joined(alice)
    net.hubs["h1"].client_gone(alice.id, net.now)
    net.keepalive([bob], 31.0)
    assert alice.id not in net.hubs["h2"].rooms[j.instance_id].presence
    assert j.instance_id not in net.hubs["h1"].rooms  # h1 has nobody left there: it left


def test_a_banned_address_is_refused_on_join_and_dropped_on_its_next_frame() -> None:
    net, alice, bob = two_hubs_one_instance()
    net.banned.add(alice.address)
    mallory = net.client("mallory", "h2", address=alice.address)
    net.join(mallory)
    assert mallory.of(Denied) == [Denied("denied: banned by the world owner")]
    net.send(alice, Transform((1.0, 0.0, 0.0)))
    assert alice.closes == ["denied: banned by the world owner"]
    net.advance(0.3)
    assert alice.id not in bob.view.current()


def test_frames_for_another_visitor_are_refused() -> None:
    net, alice, bob = two_hubs_one_instance()
    instance = joined(alice).instance_id
    # alice signs an op with her key but names bob as the clock actor: not hers to send.
    op = bob.op("door", True, net.now)
    net.send(alice, op)
    err = alice.of(Error)[-1]
    assert isinstance(err, Error) and err.code == "op_rejected"
    net.send(alice, bob.chat(instance, "I am bob", net.now))
    err = alice.of(Error)[-1]
    assert isinstance(err, Error) and err.code == "chat_rejected"
    # A member's batch naming a visitor of another node is refused and counted.
    h1 = net.hubs["h1"]
    h1.node_frame("h2", Batch(instance, 99, {alice.id: Transform((9.0, 0.0, 0.0))}), net.now)
    assert h1.statistics()["refused"]["foreign_visitor"] == 1  # type: ignore[index]
    assert h1.rooms[instance].presence.get(alice.id).transform.position == (0.0, 0.0, 0.0)  # type: ignore[union-attr]


def test_a_flooding_client_is_rate_limited_without_slowing_another() -> None:
    net, alice, bob = two_hubs_one_instance()
    carol = net.client("carol", "h1")
    net.join(carol)
    for i in range(30):
        net.send(alice, Transform((0.01 * i, 0.0, 0.0)))
    errors = [f for f in alice.of(Error) if isinstance(f, Error)]
    assert errors and all(e.code == "transform_rejected" for e in errors)
    assert "transforms per second" in errors[0].message
    net.send(carol, Transform((0.5, 0.0, 0.0)))
    assert not carol.of(Error)
    net.advance(0.3)
    seen = bob.view.current()[carol.id]
    assert seen is not None and seen.position == (0.5, 0.0, 0.0)
