"""The seat rule: member nodes admitting at once never oversell an instance (sans-IO, no clock)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxnode.core.errors import SeatUnavailable
from fluxnode.core.session.seat_messages import (
    Handover,
    SeatClaim,
    SeatConfirmed,
    SeatEvent,
    SeatLost,
    SeatMessage,
    SeatRelease,
)
from fluxnode.core.session.seats import SeatTable


@dataclass
class Net:
    """Member nodes wired through an in-memory network the test controls message by message."""

    tables: dict[str, SeatTable]
    now: float = 1000.0
    inflight: list[tuple[str, SeatMessage]] = field(default_factory=list)
    events: dict[str, list[SeatEvent]] = field(default_factory=dict)

    @classmethod
    def of(cls, names: list[str], capacity: int, **kw: float) -> Net:
        tables = {n: SeatTable(n, "inst", capacity, names, **kw) for n in names}  # type: ignore[arg-type]
        return cls(tables, events={n: [] for n in names})

    def collect(self) -> None:
        for name, table in self.tables.items():
            self.inflight += table.messages_to_send()
            self.events[name] += table.events()

    def deliver(self, index: int = 0, keep: bool = False) -> None:
        dest, message = self.inflight[index] if keep else self.inflight.pop(index)
        self.tables[dest].receive(message, self.now)
        self.collect()

    def run(self) -> None:
        while self.inflight:
            self.deliver(0)

    def held(self) -> list[tuple[int, str]]:
        return [(slot, n) for n, t in self.tables.items() for slot in t.held()]


def confirmed_visitors(net: Net) -> set[str]:
    return {v for t in net.tables.values() for v in t.held().values()}


def test_lone_node_confirms_at_once() -> None:
    alice = SeatTable("alice", "inst", 2)
    alice.claim("v1", now=0.0)
    assert alice.events() == [SeatConfirmed("v1", 0)]
    assert alice.messages_to_send() == []
    alice.claim("v2", now=0.0)
    with pytest.raises(SeatUnavailable, match="full"):
        alice.claim("v3", now=0.0)
    assert alice.held() == {0: "v1", 1: "v2"}


def test_claim_waits_for_every_member_then_confirms() -> None:
    net = Net.of(["alice", "bob", "carol"], 4)
    net.tables["alice"].claim("va", net.now)
    net.collect()
    assert net.events["alice"] == []  # not "joined" before everyone answered
    assert {d for d, m in net.inflight if isinstance(m, SeatClaim)} == {"bob", "carol"}
    net.run()
    assert net.events["alice"] == [SeatConfirmed("va", 0)]
    # the others now see slot 0 as taken and pick slot 1
    net.tables["bob"].claim("vb", net.now)
    net.collect()
    net.run()
    assert net.events["bob"] == [SeatConfirmed("vb", 1)]


def test_two_nodes_race_for_the_last_seat_exactly_one_wins() -> None:
    net = Net.of(["alice", "bob"], 1, max_attempts=3)
    net.tables["alice"].claim("va", net.now)
    net.now += 0.001  # bob's claim is later: alice's key is lower and wins the tie-break
    net.tables["bob"].claim("vb", net.now)
    net.collect()
    net.run()
    assert net.events["alice"] == [SeatConfirmed("va", 0)]
    assert net.events["bob"] == [SeatLost("vb", "slot 0 went to an earlier claim")]
    assert net.held() == [(0, "alice")]


def test_timeout_loses_the_claim_and_never_confirms() -> None:
    net = Net.of(["alice", "bob"], 2, claim_timeout=2.0, max_attempts=1)
    alice = net.tables["alice"]
    alice.claim("va", net.now)
    net.collect()
    net.inflight.clear()  # bob never answers
    assert alice.get_timer() == net.now + 2.0
    alice.handle_timer(net.now + 1.9)
    assert alice.events() == []
    alice.handle_timer(net.now + 2.0)
    (lost,) = alice.events()
    assert isinstance(lost, SeatLost)
    assert "no answer from ['bob']" in lost.reason
    assert alice.held() == {}
    assert [type(m) for _, m in alice.messages_to_send()] == [SeatRelease]


def test_member_lists_in_acks_make_strangers_ask_each_other() -> None:
    # carol and dave only know alice (a stale directory); alice introduces them to each other.
    tables = {
        "alice": SeatTable("alice", "inst", 1, ["alice"]),
        "carol": SeatTable("carol", "inst", 1, ["alice"]),
        "dave": SeatTable("dave", "inst", 1, ["alice"]),
    }
    net = Net(tables, events={n: [] for n in tables})
    tables["carol"].claim("vc", net.now)
    tables["dave"].claim("vd", net.now + 0.001)
    net.collect()
    net.run()
    assert len(net.held()) == 1
    assert net.events["carol"] == [SeatConfirmed("vc", 0)]
    assert [type(e) for e in net.events["dave"]] == [SeatLost]


def test_strangers_whose_later_claim_arrives_first_still_ask_each_other() -> None:
    # dave's claim reaches alice first, but carol's key is lower (her clock is behind): alice's
    # ACK to carol names dave, so carol must ask dave too; without that both would confirm.
    tables = {
        "alice": SeatTable("alice", "inst", 1, ["alice"]),
        "carol": SeatTable("carol", "inst", 1, ["alice"]),
        "dave": SeatTable("dave", "inst", 1, ["alice"]),
    }
    net = Net(tables, events={n: [] for n in tables})
    tables["dave"].claim("vd", net.now)
    net.collect()
    net.deliver(0)  # dave's claim -> alice, who ACKs
    tables["carol"].claim("vc", net.now - 1.0)
    net.collect()
    net.run()
    assert len(net.held()) == 1


def test_confirmed_seat_refuses_a_latecomer_with_a_lower_key() -> None:
    # alice does not know bob yet and confirms alone; bob's older claim (clock behind) arrives
    # afterwards: a confirmed seat holds against it whatever the keys say.
    tables = {
        "alice": SeatTable("alice", "inst", 1, ["alice"]),
        "bob": SeatTable("bob", "inst", 1, ["alice", "bob"]),
    }
    net = Net(tables, events={n: [] for n in tables})
    tables["alice"].claim("va", net.now)
    tables["bob"].claim("vb", net.now - 1.0)
    net.collect()
    assert net.events["alice"] == [SeatConfirmed("va", 0)]
    net.run()
    assert net.held() == [(0, "alice")]
    assert [type(e) for e in net.events["bob"]] == [SeatLost]


def test_released_seat_is_free_again_and_late_claim_is_not_resurrected() -> None:
    net = Net.of(["alice", "bob"], 1)
    net.tables["alice"].claim("va", net.now)
    net.collect()
    claim = net.inflight[0]
    net.run()
    net.tables["alice"].release("va")
    net.collect()
    net.run()
    assert net.tables["bob"].has_room()
    net.tables["bob"].receive(claim[1], net.now)  # a duplicate of the old claim arrives late
    assert net.tables["bob"].has_room()
    net.tables["bob"].claim("vb", net.now)
    net.collect()
    net.run()
    assert net.events["bob"] == [SeatConfirmed("vb", 0)]


def test_handover_keeps_the_seat_for_the_reconnect_window() -> None:
    net = Net.of(["alice", "bob", "carol"], 1, reconnect_window=30.0)
    net.tables["alice"].claim("va", net.now)
    net.collect()
    net.run()
    net.tables["alice"].leave(successor="bob")
    net.collect()
    assert {type(m) for _, m in net.inflight} == {Handover}
    net.run()
    assert net.held() == [(0, "bob")]
    assert not net.tables["carol"].has_room()  # the seat is not up for grabs meanwhile
    assert net.tables["bob"].resume("va") == 0
    net.tables["bob"].release("va")
    net.collect()
    net.run()
    assert net.tables["carol"].has_room()
    assert net.tables["carol"].members == {"bob", "carol"}


def test_unclaimed_handed_seat_expires() -> None:
    net = Net.of(["alice", "bob"], 1, reconnect_window=30.0)
    net.tables["alice"].claim("va", net.now)
    net.collect()
    net.run()
    net.tables["alice"].leave(successor="bob")
    net.collect()
    net.run()
    bob = net.tables["bob"]
    assert bob.get_timer() == net.now + 30.0
    bob.handle_timer(net.now + 30.0)
    assert bob.held() == {}
    assert bob.is_empty()


def test_crashed_member_frees_its_seats_and_unblocks_pending_claims() -> None:
    net = Net.of(["alice", "bob", "carol"], 2)
    net.tables["carol"].claim("vc", net.now)
    net.collect()
    net.run()
    net.tables["alice"].claim("va", net.now)
    net.collect()
    net.inflight = [(d, m) for d, m in net.inflight if d != "carol"]  # carol has crashed
    net.run()
    assert net.events["alice"] == []
    net.tables["alice"].member_lost("carol", net.now)
    net.tables["bob"].member_lost("carol", net.now)
    net.collect()
    assert net.events["alice"] == [SeatConfirmed("va", 1)]
    assert net.tables["alice"].occupied() == 1


# --- the race: many nodes, arbitrary delivery order, duplicates, loss, timeouts ---------------

NODES = ["n0", "n1", "n2", "n3"]

action = st.one_of(
    st.tuples(st.just("claim"), st.sampled_from(NODES)),
    st.tuples(st.just("deliver"), st.integers(0, 1000)),
    st.tuples(st.just("duplicate"), st.integers(0, 1000)),
    st.tuples(st.just("drop"), st.integers(0, 1000)),
    st.tuples(st.just("tick"), st.floats(0.0, 3.0)),
    st.tuples(st.just("release"), st.sampled_from(NODES)),
    st.tuples(st.just("leave"), st.sampled_from(NODES[1:])),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    capacity=st.integers(1, 4),
    known=st.lists(st.sets(st.sampled_from(NODES[1:])), min_size=4, max_size=4),
    skew=st.lists(st.floats(-5.0, 5.0), min_size=4, max_size=4),
    actions=st.lists(action, max_size=120),
)
def test_no_slot_is_ever_held_twice_whatever_the_network_does(
    capacity: int,
    known: list[set[str]],
    skew: list[float],
    actions: list[tuple[str, object]],
) -> None:
    # Everyone knows n0 (the directory named it); beyond that each node's view is arbitrary.
    tables = {n: SeatTable(n, "inst", capacity, {"n0"} | known[i]) for i, n in enumerate(NODES)}
    net = Net(tables, events={n: [] for n in NODES})
    offset = dict(zip(NODES, skew, strict=True))
    counter = 0
    left: set[str] = set()
    for kind, arg in actions:
        if kind == "claim" and isinstance(arg, str) and arg not in left:
            counter += 1
            table = tables[arg]
            if table.has_room():
                table.claim(f"{arg}-v{counter}", net.now + offset[arg])
        elif kind in ("deliver", "duplicate", "drop") and net.inflight and isinstance(arg, int):
            i = arg % len(net.inflight)
            if kind == "drop":
                net.inflight.pop(i)
            else:
                dest = net.inflight[i][0]
                message = net.inflight[i][1] if kind == "duplicate" else net.inflight.pop(i)[1]
                tables[dest].receive(message, net.now + offset[dest])
        elif kind == "tick" and isinstance(arg, float):
            net.now += arg
            for name, table in tables.items():
                table.handle_timer(net.now + offset[name])
        elif kind == "release" and isinstance(arg, str):
            held = tables[arg].held()
            if held:
                tables[arg].release(min(held.values()))
        elif kind == "leave" and isinstance(arg, str) and arg not in left:
            left.add(arg)
            tables[arg].leave(successor="n0")
        net.collect()
        slots = [slot for slot, _ in net.held()]
        assert len(slots) == len(set(slots)), f"a slot is held twice: {net.held()}"
        assert len(slots) <= capacity


@settings(max_examples=100, deadline=None)
@given(
    capacity=st.integers(1, 6),
    demand=st.lists(st.integers(0, 6), min_size=4, max_size=4),
    order=st.randoms(use_true_random=False),
)
def test_with_every_message_delivered_the_instance_fills_up_to_capacity(
    capacity: int, demand: list[int], order: object
) -> None:
    import random

    assert isinstance(order, random.Random)
    net = Net.of(NODES, capacity, max_attempts=100)
    for i, node in enumerate(NODES):
        for k in range(demand[i]):
            if net.tables[node].has_room():
                net.tables[node].claim(f"{node}-{k}", net.now)
    net.collect()
    while net.inflight:
        net.deliver(order.randrange(len(net.inflight)))
    held = net.held()
    assert len(held) == len({s for s, _ in held}) <= capacity
    lost = sum(isinstance(e, SeatLost) for evs in net.events.values() for e in evs)
    asked = sum(1 for evs in net.events.values() for e in evs)
    assert len(held) + lost == asked
    # Every slot anyone knows as taken is held by someone, so no seat was wasted.
    assert len(held) == max(t.occupied() for t in net.tables.values())
