"""The session hub's edges: the directory message, leaving, stopping, expiry, bounds."""

from __future__ import annotations

import msgpack
import pytest

from fluxnode.core.errors import FrameInvalid
from fluxnode.core.session.directory_wire import (
    DirectoryMessage,
    decode_directory,
    encode_directory,
)
from fluxnode.core.session.frames import (
    Batch,
    Denied,
    Error,
    Joined,
    Leave,
    StateSnapshot,
    StateSync,
    VisitorIn,
)
from fluxnode.core.session.hub import SessionHub
from fluxnode.core.session.instances import InstanceSummary, NodeLoad
from fluxnode.core.session.presence import Transform, ViewerFrame

from .hub_net import WORLD, Client, Net, verify_session


def joined(c: Client) -> Joined:
    last = c.of(Joined)[-1]
    assert isinstance(last, Joined)
    return last


# --- the directory message ------------------------------------------------------------------


def message(node: str = "h1", origin: str = "h1") -> DirectoryMessage:
    load = NodeLoad(node, 3, 10, 100.0, "ws://h1.test/session")
    return DirectoryMessage(load, (InstanceSummary(WORLD, "i1", ("h1",), 3, 8, 100.0, origin),))


def test_directory_message_round_trips() -> None:
    assert decode_directory(encode_directory(message())) == message()
    empty = DirectoryMessage(NodeLoad("h2", 0, 0, 5.0, None), ())
    assert decode_directory(encode_directory(empty)) == empty


def test_a_hub_with_no_visitors_yet_publishes_its_load_at_once_and_every_2_s() -> None:
    # Members check a relayed visitor's proof against its node's gateway, known from this
    # load: a node that waited for its first visitor to announce itself got them refused.
    hub = SessionHub("h1", verify_session=verify_session, is_banned=lambda w, a: False,
                     max_visitors=10, gateway_url="ws://h1.test/session")  # fmt: skip
    now = 1000.0
    due = hub.get_timer()
    assert due is not None and due <= now
    data = hub.directory_to_publish(now)
    assert data is not None
    assert decode_directory(data).load == NodeLoad("h1", 0, 10, now, "ws://h1.test/session")
    assert hub.get_timer() == now + 2.0


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ([2, ["h1", 0, 1, None, 1.0], []], "version"),
        ([1, ["h1", 0, 1, None], []], "node load"),
        ([1, ["h1", -1, 1, None, 1.0], []], "visitors"),
        ([1, ["h1", 0, 1, 7, 1.0], []], "gateway"),
        ([1, ["h1", 0, 1, None, float("nan")], []], "updated_at"),
        ([1, ["", 0, 1, None, 1.0], []], "node"),
        ([1, ["h1", 0, 1, None, 1.0], [[WORLD, "i1", ["h1"], 9, 8, 1.0, "h1"]]], "count"),
        ([1, ["h1", 0, 1, None, 1.0], [[WORLD, "i1", ["h1"], 1, 8, 1.0, "h2"]]], "not from h1"),
        ([1, ["h1", 0, 1, None, 1.0], [None] * 513], "at most 512"),
        ({"v": 1}, "msgpack|must be"),
    ],
)
def test_bad_directory_messages_raise_frame_invalid(body: object, match: str) -> None:
    with pytest.raises(FrameInvalid, match=match):
        decode_directory(msgpack.packb(body))


def test_directory_garbage_and_oversize_raise_frame_invalid() -> None:
    with pytest.raises(FrameInvalid, match="msgpack"):
        decode_directory(b"\xc1")
    with pytest.raises(FrameInvalid, match="over"):
        decode_directory(b"\x90" * (300 << 10))


def test_a_directory_message_must_come_from_the_node_it_names() -> None:
    net = Net(("h1", "h2"))
    h2 = net.hubs["h2"]
    before = h2.directory.load("h1", net.now)
    fresh = DirectoryMessage(NodeLoad("h1", 9, 10, net.now + 1, "ws://evil.test"), ())
    with pytest.raises(FrameInvalid, match="speaks for h1"):
        h2.directory_message(encode_directory(fresh), "h3", net.now)
    assert h2.directory.load("h1", net.now) == before  # nothing changed


# --- leaving, stopping, expiry ----------------------------------------------------------------


def two() -> tuple[Net, Client, Client]:
    net = Net(("h1", "h2"))
    alice, bob = net.client("alice", "h1"), net.client("bob", "h2")
    net.join(alice)
    net.advance(2.1)
    net.join(bob)
    assert joined(alice).instance_id == joined(bob).instance_id
    return net, alice, bob


def test_a_node_whose_last_visitor_leaves_leaves_the_instance_and_says_it_is_closed() -> None:
    net, alice, bob = two()
    instance = joined(alice).instance_id
    net.send(bob, Leave())
    assert instance not in net.hubs["h2"].rooms
    assert net.hubs["h1"].rooms[instance].heard == {}  # h1 saw h2's handover
    net.advance(2.1)
    net.send(alice, Leave())
    net.advance(2.1)
    # Both published count 0: a third node's directory has no open instance of the world.
    for hub in net.hubs.values():
        assert hub.directory.instances(WORLD, net.now) == []
    net.join(alice)  # and Join again after Leave works: a fresh instance
    assert joined(alice).instance_id != instance


def test_a_stopping_node_hands_its_seats_to_a_member_and_the_visitor_resumes_there() -> None:
    net, alice, bob = two()
    j = joined(alice)
    net.hubs["h1"].close(net.now)
    net.pump()
    assert alice.closes == ["node is stopping"]
    assert alice.id not in net.hubs["h2"].rooms[j.instance_id].presence
    assert net.hubs["h2"].rooms[j.instance_id].seats.held() == {j.seat: alice.id, 1: bob.id}
    del net.hubs["h1"]
    alice.hub, alice.frames = "h2", []
    net.hubs["h2"].sign_in(alice.id, alice.address, alice.public, "p", b"s", 1e12, net.now)
    net.join(alice)
    again = joined(alice)
    assert (again.instance_id, again.seat, again.node) == (j.instance_id, j.seat, "h2")
    net.advance(0.3)
    assert alice.id in bob.view.current()


def test_an_expired_entry_proof_closes_the_visitor() -> None:
    net = Net(("h1",))
    alice = net.client("alice", "h1")
    net.hubs["h1"].sign_in(alice.id, alice.address, alice.public, "p", b"s", net.now + 5, net.now)
    net.join(alice)
    net.advance(4.0)
    assert alice.closes == []
    net.advance(1.5)
    assert alice.closes == ["entry proof expired"]
    assert net.hubs["h1"].statistics()["visitors_signed_in"] == 0


def test_a_silent_visitor_is_dropped_and_closed() -> None:
    net, alice, bob = two()
    net.keepalive([bob], 31.0)
    assert alice.closes == ["silent for 30 s"]
    assert alice.id not in bob.view.current()


def test_node_lost_removes_its_visitors_at_once() -> None:
    net, alice, bob = two()
    net.advance(0.3)
    assert bob.id in alice.view.current()
    net.hubs["h1"].node_lost("h2", net.now)
    net.advance(0.3)
    assert bob.id not in alice.view.current()


# --- bad input ------------------------------------------------------------------------------


def test_client_frames_before_join_are_refused_with_error() -> None:
    net = Net(("h1",))
    alice = net.client("alice", "h1")
    net.send(alice, Transform((0.0, 0.0, 0.0)))
    assert alice.of(Error) == [Error("session_error", "not in an instance yet: send Join first")]


def test_frames_for_unknown_instances_are_ignored_and_counted() -> None:
    net, _, _ = two()
    h1 = net.hubs["h1"]
    h1.node_frame("h2", Batch("nope", 1, {}), net.now)
    h1.node_frame("h2", StateSync("nope", (), ()), net.now)
    assert h1.statistics()["refused"] == {"unknown_instance": 2}
    assert len(h1.rooms) == 1


def test_a_batch_from_a_node_that_is_no_member_is_refused() -> None:
    net, alice, bob = two()
    instance = joined(alice).instance_id
    h1 = net.hubs["h1"]
    h1.node_frame("h9", Batch(instance, 1, {bob.id: Transform((5.0, 0.0, 0.0))}), net.now)
    refused = h1.statistics()["refused"]
    assert isinstance(refused, dict) and refused["not_a_member"] == 1
    p = h1.rooms[instance].presence.get(bob.id)
    assert p is not None and p.transform.position == (0.0, 0.0, 0.0)


def test_the_edge_may_not_pass_a_visitor_id_that_is_not_its_key() -> None:
    from fluxnode.core.errors import LocalError

    net = Net(("h1",))
    alice = net.client("alice", "h1")
    with pytest.raises(LocalError, match="session key"):
        net.hubs["h1"].sign_in("x" * 43, alice.address, alice.public, "p", b"s", 1e12, net.now)


def test_a_visitor_joins_one_world_at_a_time_and_can_switch() -> None:
    net = Net(("h1",))
    alice = net.client("alice", "h1")
    net.join(alice)
    first = joined(alice).instance_id
    from .hub_net import world

    other = world()
    other = type(other)("land:8", other.manifest, other.hosts)
    net.join(alice, other)
    assert joined(alice).world_id == "land:8"
    assert first not in net.hubs["h1"].rooms
    assert isinstance(alice.frames[-1], StateSnapshot | ViewerFrame)
    assert not alice.of(Denied)


def test_a_banned_remote_visitor_is_dropped_on_its_next_batch_and_refused_on_arrival() -> None:
    net, alice, bob = two()
    instance = joined(alice).instance_id
    h1 = net.hubs["h1"]
    net.banned.add(bob.address)  # h1 learns of the ban; h2 has not acted on it (yet)
    h1.node_frame("h2", Batch(instance, 5, {bob.id: Transform((1.0, 0.0, 0.0))}), net.now)
    assert bob.id not in h1.rooms[instance].presence
    visitor_in = VisitorIn(instance, bob.id, "p", b"s", {}, Transform((0.0, 0.0, 0.0)))
    h1.remote_visitor("h2", visitor_in, bob.address, bob.public, 1e12, net.now)
    assert bob.id not in h1.rooms[instance].presence
    refused = h1.statistics()["refused"]
    assert refused == {"banned_or_expired": 1, "banned": 1}


def test_history_merge_takes_old_lines_past_the_rate_but_checks_signatures() -> None:
    from fluxnode.core.errors import ChatRejected
    from fluxnode.core.session.chat import ChatMessage, ChatRoom

    room = ChatRoom("i1", lambda m: m.signature == b"ok")
    old = [ChatMessage("i1", "a", f"line {i}", 1000 + i, b"ok") for i in range(20)]
    assert all(room.merge_history(m) for m in old)  # an hour old and 20 from one author
    assert not room.merge_history(old[0])  # a duplicate
    with pytest.raises(ChatRejected, match="bad signature"):
        room.merge_history(ChatMessage("i1", "a", "forged", 5, b"no"))
    assert len(room.history()) == 20
