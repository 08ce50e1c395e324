"""Properties of the hub: replicas converge whatever the network does; bad input never raises."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fluxnode.core.errors import FrameInvalid
from fluxnode.core.session import wire
from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.frames import (
    Batch,
    Frame,
    Handover,
    InstanceOps,
    Joined,
    MemberJoin,
    StateSync,
    VisitorIn,
    VisitorOut,
)
from fluxnode.core.session.hlc import Hlc
from fluxnode.core.session.presence import Transform
from fluxnode.core.session.seat_messages import (
    ClaimKey,
    HandedSeat,
    SeatAck,
    SeatClaim,
    SeatNack,
    SeatRelease,
)
from fluxnode.core.session.state import OpKind, StateOp

from .hub_net import WORLD, Client, Net

# --- convergence --------------------------------------------------------------------------------

ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["alice", "bob"]),
        st.sampled_from(["door", "crate"]),
        st.integers(0, 3),  # the door's value / where the crate goes
        st.sampled_from([0.0, 0.001, 0.1]),  # time before the next action
    ),
    min_size=1,
    max_size=10,
)


def joined(c: Client) -> Joined:
    last = c.of(Joined)[-1]
    assert isinstance(last, Joined)
    return last


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.randoms(use_true_random=False),
    ACTIONS,
    st.sampled_from([0.0, 0.3]),
    st.sampled_from([0.0, 0.4]),
)
def test_replicas_converge_under_reordering_duplication_and_loss(
    rng: random.Random, actions: list[tuple[str, str, int, float]], dup: float, loss: float
) -> None:
    net = Net(("h1", "h2", "h3"))
    alice = net.client("alice", "h1")
    net.join(alice)
    net.advance(2.1)
    bob = net.client("bob", "h2")
    net.join(bob)
    instance = joined(alice).instance_id
    assert joined(bob).instance_id == instance
    who = {"alice": alice, "bob": bob}
    net.auto = False
    for name, target, n, pause in actions:
        c = who[name]
        op = (
            c.op("door", n % 2 == 0, net.now)
            if target == "door"
            else c.move("crate", (float(n), 0.0, 0.0), net.now)
        )
        net.hubs[c.hub].client_frame(c.id, op, net.now)
        if pause:
            net.tick()
        # Deliver some of what is in flight: any link first, some frames twice, ops lost.
        while net.ready() and rng.random() < 0.7:
            link = rng.choice(net.ready())
            head = net.links[link][0]
            if isinstance(head, InstanceOps | StateSync) and rng.random() < loss:
                net.links[link].popleft()
                continue
            net.deliver(link, duplicate=rng.random() < dup)
    net.tick()
    net.pump_random(rng, dup)
    net.auto = True
    carol = net.client("carol", "h3")  # a late joiner: its replica starts from the snapshots
    net.join(carol)
    assert joined(carol).instance_id == instance
    net.keepalive([alice, bob, carol], 5.0)  # lossless now: the periodic repair runs
    replicas = [h.rooms[instance].state for h in net.hubs.values()]
    for register in (("door", "open"), ("crate", "position")):
        assert len({repr(r.value(*register)) for r in replicas}) == 1, register
    assert replicas[0].snapshot() == replicas[1].snapshot() == replicas[2].snapshot()


# --- nothing raises on bad input ----------------------------------------------------------------

NAMES = st.sampled_from(["h1", "h2", "h3", "x"])
TEXT = st.text(max_size=4)
NUM = st.integers(-3, 200)
POS = st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.floats(-1e3, 1e3))
TRANSFORMS = st.builds(Transform, POS)


def frames(instance: str, visitors: list[str]) -> st.SearchStrategy[Frame]:
    inst = st.sampled_from([instance, "nope"])
    vis = st.sampled_from([*visitors, "A" * 43])
    key = st.builds(ClaimKey, st.integers(0, 2**40), NAMES, NUM)
    hlc = st.builds(Hlc, st.integers(0, 2**45), st.integers(0, 100), vis)
    op = st.builds(
        StateOp,
        st.sampled_from(["door", "crate", "throne", "x"]),
        st.sampled_from(list(OpKind)),
        st.sampled_from(["open", "position", "deleted", "lit"]),
        st.one_of(st.booleans(), st.just([1.0, 2.0, 3.0]), st.none()),
        st.sampled_from(["onClick", None]),
        hlc,
        st.sampled_from(["0x" + "a" * 40, "0x" + "c" * 40]),
        st.binary(max_size=64),
    )
    chat = st.builds(ChatMessage, inst, vis, TEXT, st.integers(0, 2**45), st.binary(max_size=64))
    return st.one_of(
        st.builds(SeatClaim, inst, NUM, key, vis),
        st.builds(SeatAck, inst, NUM, key, NAMES, st.lists(NAMES, max_size=3).map(tuple)),
        st.builds(SeatNack, inst, NUM, key, NAMES),
        st.builds(SeatRelease, inst, NUM, key),
        st.builds(
            Handover,
            inst,
            NAMES,
            st.one_of(st.none(), NAMES),
            st.lists(st.builds(HandedSeat, NUM, key, vis), max_size=3).map(tuple),
        ),
        st.builds(MemberJoin, st.sampled_from([WORLD, "land:9"]), inst, st.integers(1, 100)),
        st.builds(VisitorOut, inst, vis),
        st.builds(Batch, inst, NUM, st.dictionaries(vis, TRANSFORMS, max_size=3)),
        st.builds(InstanceOps, inst, st.lists(op, max_size=3).map(tuple)),
        st.builds(
            StateSync,
            inst,
            st.lists(op, max_size=3).map(tuple),
            st.lists(chat, max_size=2).map(tuple),
        ),
        chat,
        op,
        TRANSFORMS,
        st.builds(VisitorIn, inst, vis, TEXT, st.binary(max_size=4), st.just({}), TRANSFORMS),
    )


def on_the_wire(frame: Frame) -> Frame:
    try:
        return wire.decode(wire.encode(frame))
    except FrameInvalid:
        assume(False)
        raise


NET = Net(("h1", "h2"))
ALICE = NET.client("alice", "h1")
NET.join(ALICE)
NET.advance(2.1)
BOB = NET.client("bob", "h2")
NET.join(BOB)
INSTANCE = joined(ALICE).instance_id


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["node", "client", "visitor_in"]), NAMES,
                          frames(INSTANCE, [ALICE.id, BOB.id])), max_size=8))  # fmt: skip
def test_no_frame_from_a_member_or_client_makes_the_hub_raise(
    inputs: list[tuple[str, str, Frame]],
) -> None:
    hub = NET.hubs["h1"]
    for how, peer, frame in inputs:
        frame = on_the_wire(frame)
        if how == "client":
            hub.client_frame(ALICE.id, frame, NET.now)
        elif how == "visitor_in" and isinstance(frame, VisitorIn):
            hub.wants_visitor(peer, frame, NET.now)
            hub.remote_visitor(peer, frame, BOB.address, BOB.public, 1e12, NET.now)
        else:
            hub.node_frame(peer, frame, NET.now)
        NET.collect()
    NET.now += 0.05
    hub.handle_timer(NET.now)
    NET.collect()
    for link in NET.links.values():
        link.clear()
