"""`fluxnode.client.Visitor` over a session's life, against the node double
(tests/unit/client_node_double.py): where `Joined` puts us, `Leave` on close, the manifest
from the node's route, reconnecting (same key, same world, fallbacks, bounded), and the
replica's handling of addresses and of a rejoined instance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fluxnode.chain.entry import new_session_key, session_public_key
from fluxnode.client import (
    Chat,
    Closed,
    Error,
    Event,
    PeerJoined,
    PeerLeft,
    Reconnect,
    Reconnected,
    Replica,
    StateChanged,
    Visitor,
    manifest_url,
)
from fluxnode.client.connection import ending_of_close
from fluxnode.core.errors import BadRequest, NoManifest
from fluxnode.core.session import frames as fr
from fluxnode.core.session.presence import Transform, ViewerFrame
from fluxnode.core.session.state import StateOp
from tests.unit.client_node_double import (
    INSTANCE,
    MANIFEST,
    NOW,
    SPAWN,
    NodeDouble,
    Peer,
    running,
    visitor_id,
)
from tests.unit.test_client_visitor import WAIT, frame_of, new_key, next_of

FAST = Reconnect(rounds=3, first_delay=0.01, max_delay=0.02)
OWNER = "0x" + "ab" * 20


@pytest.fixture
async def node() -> AsyncIterator[NodeDouble]:
    async with running(NodeDouble()) as double:
        yield double


async def connect(double: NodeDouble, **kw: object) -> Visitor:
    return await Visitor.connect(double.url, new_key(), clock=lambda: NOW, **kw)


async def events_until(v: Visitor, kind: type) -> list[Event]:
    """Every event up to and including the first of type `kind`."""
    out: list[Event] = []
    async with asyncio.timeout(WAIT):
        while not isinstance(out[-1] if out else None, kind):
            out.append(await v.next_event())
    return out


# --- where we stand ----------------------------------------------------------------------------


async def test_position_is_where_joined_put_us_then_where_we_moved(node: NodeDouble) -> None:
    node.spawn = Transform((4.0, 0.5, -3.0))
    async with await connect(node) as v:
        assert v.position is None
        await v.join("land:1")
        assert v.position == (4.0, 0.5, -3.0)
        await v.move((4.1, 0.5, -3.0))
        assert v.position == (4.1, 0.5, -3.0)
        await v.leave()
        assert v.position is None


# --- leaving -----------------------------------------------------------------------------------


async def test_close_sends_leave_before_closing(node: NodeDouble) -> None:
    v = await connect(node, world_id="land:1")
    await v.close("done")
    assert isinstance(await frame_of(node, fr.Leave), fr.Leave)
    assert await next_of(v, Closed) == Closed("done")


async def test_close_outside_a_world_sends_no_leave(node: NodeDouble) -> None:
    v = await connect(node)
    await v.close()
    async with asyncio.timeout(WAIT):
        await node.closed.wait()
    assert node.received.empty()  # nothing at all was sent after Hello


# --- the manifest from the node ----------------------------------------------------------------


async def test_interact_fetches_the_manifest_from_the_node_route(node: NodeDouble) -> None:
    world = OWNER + "/plaza"
    node.open_worlds.add(world)
    node.manifests[world] = node.manifests["land:1"]
    async with await connect(node, world_id=world) as v:
        op = await v.interact("door")
        assert node.manifest_asks == [world]  # the "/" of the id stayed a "/"
        assert await frame_of(node, StateOp) == op
        await v.interact("door")
        assert node.manifest_asks == [world]  # fetched once


def test_manifest_url_keeps_the_slash_of_a_world_id() -> None:
    assert manifest_url("ws://127.0.0.1:8080/session", OWNER + "/plaza") == (
        f"http://127.0.0.1:8080/api/worlds/{OWNER}/plaza/manifest"
    )
    assert manifest_url("https://n.example", "land:7") == (
        "https://n.example/api/worlds/land:7/manifest"
    )


async def test_a_node_without_the_manifest_is_no_manifest(node: NodeDouble) -> None:
    node.manifests.clear()
    async with await connect(node, world_id="land:1") as v:
        with pytest.raises(NoManifest, match="HTTP 404"):
            await v.interact("door")


# --- reconnecting ------------------------------------------------------------------------------


async def test_a_dropped_connection_rejoins_with_the_same_key_and_shows_only_news(
    node: NodeDouble,
) -> None:
    async with await connect(node, world_id="land:1", manifest=MANIFEST, reconnect=FAST) as v:
        first = await events_until(v, Chat)  # snapshot: door state, then the chat line
        first += await events_until(v, PeerJoined)
        await node.close_visitor(1001, b"going away")
        events = await events_until(v, Reconnected)
        assert events[-1] == Reconnected(
            node.url, "the node closed the session (code 1001: going away)", 1, "land:1",
            INSTANCE, "node-a", 3,
        )  # fmt: skip
        assert node.session_keys[0] == node.session_keys[1]  # the same session key
        assert len(node.signed_in) == 2
        # The same snapshot and viewer frame again, then one new line: only that one is news.
        await node.send(node.bob.chat("welcome back", int(NOW * 1000)))
        after = await events_until(v, Chat)
        assert [type(e) for e in after] == [Chat]
        assert isinstance(after[0], Chat) and after[0].text == "welcome back"
        assert after[0].address == node.bob.address
        assert v.statistics().reconnects == 1
        assert v.position == SPAWN.position


async def test_reconnect_moves_on_to_a_fallback_node() -> None:
    async with running(NodeDouble("node-b")) as b:
        policy = Reconnect(fallbacks=(b.url,), rounds=2, first_delay=0.01, max_delay=0.02)
        async with running(NodeDouble("node-a")) as a:
            v = await connect(a, world_id="land:1", reconnect=policy)
            await a.close_visitor()
        # a is gone now: its URL refuses connections, so the next try is b's
        try:
            event = (await events_until(v, Reconnected))[-1]
            assert isinstance(event, Reconnected)
            assert (event.node_url, event.node, event.tries) == (b.url, "node-b", 2)
            assert v.node_url == b.url
            assert isinstance(await frame_of(b, fr.Join), fr.Join)
        finally:
            await v.close()


async def test_reconnect_gives_up_after_its_rounds() -> None:
    async with running(NodeDouble()) as a:
        v = await connect(a, world_id="land:1", reconnect=FAST)
        await a.close_visitor()
    closed = (await events_until(v, Closed))[-1]
    assert isinstance(closed, Closed)
    assert closed.reason.startswith("the node closed the session; no reconnect in 3 tries")
    assert "cannot open the session" in closed.reason
    await v.close()


async def test_a_policy_close_is_not_retried(node: NodeDouble) -> None:
    async with await connect(node, world_id="land:1", reconnect=FAST) as v:
        await node.close_visitor(1008, b"denied: you are banned from this world")
        events = await events_until(v, Closed)
        assert events[-1] == Closed(
            "the node closed the session (code 1008: denied: you are banned from this world)"
        )
        assert not any(isinstance(e, Reconnected) for e in events)
        assert len(node.signed_in) == 1


#: Longer than a close message can carry (123 bytes): the node's close says only its start.
LONG_DENIAL = "denied: banned by the world owner: " + "spamming the plaza " * 8


@pytest.mark.parametrize("close_text", [LONG_DENIAL[:100].encode(), b""], ids=["cut", "empty"])
async def test_a_denial_before_the_close_is_the_closed_reason(
    node: NodeDouble, close_text: bytes
) -> None:
    async with await connect(node, world_id="land:1", reconnect=FAST) as v:
        await node.send(fr.Denied(LONG_DENIAL))  # as the node does when it bans mid-session
        await node.close_visitor(1008, close_text)
        events = await events_until(v, Closed)
        assert events[-1] == Closed(f"the node closed the session (code 1008: {LONG_DENIAL})")
        assert Error("denied", LONG_DENIAL) in events
        assert not any(isinstance(e, Reconnected) for e in events)


async def test_a_denial_then_a_normal_close_is_not_retried(node: NodeDouble) -> None:
    async with await connect(node, world_id="land:1", reconnect=FAST) as v:
        await node.send(fr.Denied("denied: this world's record has expired"))
        await node.close_visitor()
        events = await events_until(v, Closed)
        assert events[-1] == Closed(
            "the node closed the session: denied: this world's record has expired"
        )
        assert not any(isinstance(e, Reconnected) for e in events)
        assert len(node.signed_in) == 1


def test_close_endings_say_why_and_whether_to_retry() -> None:
    assert ending_of_close(1000, "node stopping").retry is True
    assert ending_of_close(1000, "signed in elsewhere").retry is False
    assert ending_of_close(1008, "too many bad frames").retry is False
    assert ending_of_close(None, None).reason == "the node closed the session"


def test_reconnect_policy_orders_nodes_and_bounds_its_pauses() -> None:
    policy = Reconnect(fallbacks=("http://b:1", "http://a:1/", "ws://b:1/session"), rounds=5,
                       first_delay=0.5, max_delay=1.5)  # fmt: skip
    assert policy.urls("http://a:1") == ["http://a:1", "http://b:1"]
    assert list(policy.delays()) == [0.0, 0.5, 1.0, 1.5, 1.5]
    with pytest.raises(BadRequest):
        Reconnect(fallbacks=("ftp://x",))
    with pytest.raises(BadRequest):
        Reconnect(rounds=0)


# --- the replica: addresses and rejoining ------------------------------------------------------


def _replica() -> tuple[Replica, Ed25519PrivateKey]:
    key = new_session_key()
    me = visitor_id(key)
    assert session_public_key(key)
    return Replica(me, "0x" + "1" * 40, key), key


def test_a_chat_author_is_named_from_its_op_when_no_viewer_frame_named_it() -> None:
    replica, _ = _replica()
    replica.joined(INSTANCE, MANIFEST)
    carol, dave = Peer(address="0x" + "c" * 40), Peer(address="0x" + "d" * 40)
    replica.receive(carol.door_op(True, int(NOW * 1000)), NOW)
    (said,) = replica.receive(carol.chat("the door is open", int(NOW * 1000)), NOW)
    assert said == Chat(carol.visitor, carol.address, "the door is open", int(NOW * 1000))
    (unknown,) = replica.receive(dave.chat("who am I", int(NOW * 1000)), NOW)
    assert isinstance(unknown, Chat) and unknown.address is None


def test_joining_another_instance_lets_the_old_peers_leave() -> None:
    replica, _ = _replica()
    replica.joined(INSTANCE)
    bob = Peer()
    replica.receive(ViewerFrame(1, None, {bob.visitor: Transform((0.0, 0.0, 0.0))}, (),
                                {bob.visitor: {"address": bob.address}}), NOW)  # fmt: skip
    assert replica.joined(INSTANCE) == []  # the same instance: bob is still shown
    assert replica.peers() == {bob.visitor: bob.address}
    assert replica.joined("inst-2") == [PeerLeft(bob.visitor, bob.address)]
    assert replica.peers() == {}


def test_a_new_world_does_not_keep_the_old_manifest() -> None:
    replica, _ = _replica()
    replica.joined(INSTANCE, MANIFEST)
    replica.joined("inst-2")
    assert replica.state is None and replica.manifest is None


def test_a_rejoined_instance_does_not_repeat_state_or_chat() -> None:
    replica, _ = _replica()
    bob = Peer()
    snapshot = fr.StateSnapshot(INSTANCE, (bob.door_op(True, 1000),), (bob.chat("hi", 1001),))
    empty_view = ViewerFrame(1, None, {}, (), {})
    replica.joined(INSTANCE, MANIFEST)
    events = replica.receive(snapshot, NOW) + replica.receive(empty_view, NOW)
    assert [type(e) for e in events] == [StateChanged, Chat]
    replica.joined(INSTANCE, MANIFEST)
    assert replica.receive(snapshot, NOW) + replica.receive(empty_view, NOW) == []


def test_snapshot_chat_waits_for_the_viewer_frame_that_names_its_author() -> None:
    replica, _ = _replica()
    replica.joined(INSTANCE)
    bob = Peer()
    history = fr.StateSnapshot(INSTANCE, (), (bob.chat("said before you came", 1000),))
    assert replica.receive(history, NOW) == []
    view = ViewerFrame(1, None, {bob.visitor: Transform((0.0, 0.0, 0.0))}, (),
                       {bob.visitor: {"address": bob.address}})  # fmt: skip
    events = replica.receive(view, NOW)
    assert events[0] == Chat(bob.visitor, bob.address, "said before you came", 1000)
    assert isinstance(events[1], PeerJoined)


def test_held_chat_comes_out_before_a_live_line() -> None:
    replica, _ = _replica()
    replica.joined(INSTANCE)
    bob = Peer()
    replica.receive(fr.StateSnapshot(INSTANCE, (), (bob.chat("old", 1000),)), NOW)
    events = replica.receive(bob.chat("new", 2000), NOW)
    assert [e.text for e in events if isinstance(e, Chat)] == ["old", "new"]
