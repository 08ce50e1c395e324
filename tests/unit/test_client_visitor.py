"""`fluxnode.client.Visitor` against a test double of the node's session endpoint
(tests/unit/client_node_double.py): sign-in checked by the real EntryVerifier, join, redirect,
denials, snapshots, viewer frames with ack/resync, ops and chat, garbage from the node."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator

import pytest

from fluxnode.chain.entry import verify_session_signature
from fluxnode.chain.keys import WalletKey
from fluxnode.client import (
    Chat,
    Closed,
    Error,
    Event,
    PeerJoined,
    PeerLeft,
    PeerMoved,
    StateChanged,
    Visitor,
)
from fluxnode.core.errors import JoinDenied, NoManifest, SessionDenied, SessionLost
from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire
from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.presence import Transform, ViewerFrame
from fluxnode.core.session.state import StateOp, WorldState
from tests.unit.client_node_double import (
    CHAIN,
    INSTANCE,
    MANIFEST,
    NOW,
    SPAWN,
    NodeDouble,
    running,
)

WAIT = 10.0  # a guard so a broken client fails fast; nothing is asserted about time


def new_key() -> str:
    while True:
        secret = secrets.token_bytes(32)
        try:
            WalletKey.from_secret(secret)
            return secret.hex()
        except ValueError:
            continue


@pytest.fixture
async def node() -> AsyncIterator[NodeDouble]:
    async with running(NodeDouble()) as double:
        yield double


async def connect(double: NodeDouble, key: str | None = None, **kw: object) -> Visitor:
    return await Visitor.connect(double.url, key or new_key(), clock=lambda: NOW, **kw)


async def next_of(v: Visitor, kind: type) -> Event:
    async with asyncio.timeout(WAIT):
        while True:
            event = await v.next_event()
            if isinstance(event, kind):
                return event


async def frame_of(double: NodeDouble, kind: type) -> fr.Frame:
    async with asyncio.timeout(WAIT):
        return await double.next_of(kind)


def node_verify(address: str):  # type: ignore[no-untyped-def]
    """What a node checks: the op's clock actor is the session key, bound to `address`."""

    def verify(op: StateOp) -> bool:
        key = base64.urlsafe_b64decode(op.hlc.actor + "=")
        ok = verify_session_signature(key, op.signing_bytes(), op.signature)
        return ok and op.author == address.lower()

    return verify


async def test_signs_in_joins_and_gets_snapshot_peers_and_chat(node: NodeDouble) -> None:
    key = new_key()
    address = WalletKey.from_secret(bytes.fromhex(key)).address
    async with await connect(node, key, world_id="land:1", manifest=MANIFEST) as v:
        assert node.signed_in == [address]  # the real EntryVerifier admitted the proof
        assert v.address == address
        assert v.joined == fr.Joined("land:1", INSTANCE, "node-a", 3, SPAWN)
        bob = node.bob
        assert await next_of(v, StateChanged) == StateChanged("door", "open", True, bob.address)
        chat = await next_of(v, Chat)
        assert (chat.visitor, chat.text) == (bob.visitor, "hi there")
        assert await next_of(v, PeerJoined) == PeerJoined(bob.visitor, bob.address)
        moved = await next_of(v, PeerMoved)
        assert moved == PeerMoved(bob.visitor, bob.address, Transform((1.0, 0.0, 1.0)))
        assert await frame_of(node, fr.Ack) == fr.Ack(1)
        assert v.replica is not None and v.replica.peers() == {bob.visitor: bob.address}


async def test_a_replayed_nonce_is_denied_at_sign_in(node: NodeDouble) -> None:
    # A node that (wrongly) sent the same challenge twice: the second proof reuses a nonce the
    # first one spent, as a replayed proof would, and the verifier refuses it.
    nonce = node.entry_verifier().issue_nonce()
    node.challenge_override = fr.Challenge("node-a", f"127.0.0.1:{node.port}", CHAIN,
                                           f"http://127.0.0.1:{node.port}/session", nonce,
                                           b"\x07" * 32)  # fmt: skip
    async with await connect(node):
        pass
    with pytest.raises(SessionDenied) as info:
        await connect(node)
    assert info.value.reason == "denied: entry proof refused (nonce_reused)"


async def test_a_proof_for_another_chain_is_denied_with_the_reason(node: NodeDouble) -> None:
    node.challenge_override = fr.Challenge("node-a", f"127.0.0.1:{node.port}", 1,
                                           f"http://127.0.0.1:{node.port}/session", "abcdefgh12",
                                           b"\x07" * 32)  # fmt: skip
    with pytest.raises(SessionDenied) as info:
        await connect(node)
    assert info.value.reason == "denied: entry proof refused (wrong_chain)"
    assert not isinstance(info.value, JoinDenied)


async def test_a_denied_join_names_the_reason_and_another_join_may_follow(
    node: NodeDouble,
) -> None:
    async with await connect(node) as v:
        with pytest.raises(JoinDenied) as info:
            await v.join("land:2")
        assert info.value.reason == "denied: no valid ticket for this world"
        joined = await v.join("land:1")
        assert joined.instance_id == INSTANCE


async def test_one_redirect_is_followed_to_the_node_it_names() -> None:
    async with running(NodeDouble("node-a")) as a, running(NodeDouble("node-b")) as b:
        a.redirect_to = b.url
        key = new_key()
        async with await connect(a, key) as v:
            joined = await v.join("land:3")
            assert joined.node == "node-b"
            assert v.node_url == b.url
            assert b.signed_in == a.signed_in  # signed in again there, same wallet
            assert v.statistics().redirects == 1
            await v.say("made it")
            said = await frame_of(b, ChatMessage)
            assert isinstance(said, ChatMessage) and said.text == "made it"
            async with asyncio.timeout(WAIT):
                await a.closed.wait()  # the first connection was closed by the client


async def test_a_second_redirect_is_a_denial(node: NodeDouble) -> None:
    async with await connect(node) as v:
        with pytest.raises(JoinDenied, match="redirected again"):
            await v.join("land:4")


async def test_interact_sends_an_op_every_replica_accepts(node: NodeDouble) -> None:
    # The double sends the snapshot only once our first heartbeat came: a join that returned
    # at `Joined` would plan the click against the bare manifest's closed door.
    node.snapshot_after = fr.Heartbeat
    async with await connect(
        node, world_id="land:1", manifest=MANIFEST, heartbeat_interval=0.05
    ) as v:
        # join returned after the snapshot was applied: the click plans against Bob's open door
        assert v.replica is not None and v.replica.state is not None
        assert v.replica.state.value("door", "open") is True
        op = await v.interact("door")
        assert op.value is False  # Bob opened it: our click closes it
        assert op.author == v.address.lower() and op.hlc.actor == v.visitor
        sent = await frame_of(node, StateOp)
        assert sent == op
        other = WorldState(MANIFEST, node_verify(v.address))
        assert other.receive_op(sent, NOW) is True  # the real Ed25519 check, on another replica
        bobs = await next_of(v, StateChanged)
        assert bobs == StateChanged("door", "open", True, node.bob.address)
        ours = await next_of(v, StateChanged)
        assert ours == StateChanged("door", "open", False, v.address.lower())


async def test_a_join_without_its_snapshot_times_out_naming_it(node: NodeDouble) -> None:
    node.snapshot_after = fr.Report  # never sent: the snapshot never comes
    async with await connect(node, timeout=0.5) as v:
        with pytest.raises(SessionLost, match=r"^the node sent no StateSnapshot after Joined "
                           r"within 0\.5 s$"):  # fmt: skip
            await v.join("land:1")


async def test_interact_without_a_manifest_is_refused_and_sends_nothing(node: NodeDouble) -> None:
    node.manifests.clear()  # the node has none to serve either
    async with await connect(node, world_id="land:1") as v:
        with pytest.raises(NoManifest):
            await v.interact("door")
        await v.move((1.0, 0.0, 1.0))
        # The next frame after Join and the snapshot's Ack is the Transform: no op in between.
        assert isinstance(await frame_of(node, fr.Join), fr.Join)
        assert await frame_of(node, fr.Ack) == fr.Ack(1)
        assert isinstance(await node.received.get(), Transform)


async def test_move_report_and_say_send_their_frames(node: NodeDouble) -> None:
    async with await connect(node, world_id="land:1") as v:
        await v.move((2, 0, 3), anim="run")
        assert await frame_of(node, Transform) == Transform((2.0, 0.0, 3.0), (0, 0, 0, 1), "run")
        await v.report(None, "spam")
        assert await frame_of(node, fr.Report) == fr.Report("land:1", None, "spam")
        await v.say("hello")
        said = await frame_of(node, ChatMessage)
        assert isinstance(said, ChatMessage)
        assert (said.instance, said.author, said.text) == (INSTANCE, v.visitor, "hello")
        key = base64.urlsafe_b64decode(v.visitor + "=")
        assert verify_session_signature(key, said.signing_bytes(), said.signature)


async def test_deltas_move_and_remove_peers_and_a_missing_base_asks_one_resync(
    node: NodeDouble,
) -> None:
    bob = node.bob
    async with await connect(node, world_id="land:1") as v:
        await next_of(v, PeerMoved)
        assert await frame_of(node, fr.Ack) == fr.Ack(1)
        await node.send(ViewerFrame(2, 1, {bob.visitor: Transform((2.0, 0.0, 1.0))}, (), {}))
        moved = await next_of(v, PeerMoved)
        assert moved == PeerMoved(bob.visitor, bob.address, Transform((2.0, 0.0, 1.0)))
        assert await node.received.get() == fr.Ack(2)
        await node.send(ViewerFrame(9, 8, {}, (), {}))  # base 8 was never sent
        await node.send(ViewerFrame(10, 9, {}, (), {}))  # still no base: no second Resync
        await node.send(ViewerFrame(11, 2, {}, (bob.visitor,), {}))
        assert await node.received.get() == fr.Resync()
        assert await node.received.get() == fr.Ack(11)
        assert await next_of(v, PeerLeft) == PeerLeft(bob.visitor, bob.address)


async def test_garbage_from_the_node_is_an_error_event_not_a_crash(node: NodeDouble) -> None:
    async with await connect(node, world_id="land:1") as v:
        await node.send_raw(b"\xc1")  # never valid msgpack
        first = await next_of(v, Error)
        assert first.code == "frame_invalid" and "bad frame" in first.message
        await node.send_raw("hello")
        second = await next_of(v, Error)
        assert second.message == "the node sent a text message (frames are binary)"
        await node.send(fr.Join("land:9"))  # a client's frame
        third = await next_of(v, Error)
        assert third.message == "the node sent an unexpected Join frame"
        await node.send(fr.Error("op_rejected", "object 'door' cannot be moved"))
        assert await next_of(v, Error) == Error("op_rejected", "object 'door' cannot be moved")
        await v.say("still here")  # the session goes on
        assert isinstance(await frame_of(node, ChatMessage), ChatMessage)
        assert v.statistics().bad_frames == 3


async def test_a_node_that_keeps_sending_garbage_is_left(node: NodeDouble) -> None:
    async with await connect(node, world_id="land:1") as v:
        for _ in range(21):
            await node.send_raw(wire.encode(fr.Hello("x", b"", b"", b"")))
        closed = await next_of(v, Closed)
        assert closed == Closed("the node sent more than 20 bad frames")
        with pytest.raises(SessionLost):
            await v.move((0, 0, 0))


async def test_the_node_closing_ends_the_events_with_closed(node: NodeDouble) -> None:
    async with await connect(node, world_id="land:1") as v:
        await node.close_visitor()
        events = [e async for e in v.events()]
        assert events[-1] == Closed("the node closed the session")
        assert sum(isinstance(e, Closed) for e in events) == 1


async def test_close_completes_the_closing_handshake_after_a_last_frame(node: NodeDouble) -> None:
    # Without the handshake the socket is dropped with frames unread, and the reset can cost
    # the node the frames we sent last (a Leave then stays seated for the reconnect window).
    v = await connect(node, world_id="land:1")
    assert v._link is not None
    ws = v._link.ws
    await v.leave()
    await v.close()
    assert ws.close_code == 1000, ws.close_code
    assert await frame_of(node, fr.Leave) == fr.Leave()


async def test_an_idle_visitor_sends_heartbeats(node: NodeDouble) -> None:
    async with await connect(node, world_id="land:1", heartbeat_interval=0.05):
        assert await frame_of(node, fr.Heartbeat) == fr.Heartbeat()


async def test_garbage_instead_of_a_challenge_is_session_lost(node: NodeDouble) -> None:
    node.first_frame = b"\x92\x01"
    with pytest.raises(SessionLost, match="bad frame instead of a Challenge"):
        await connect(node)


async def test_a_node_that_is_not_there_is_session_lost() -> None:
    async with running(NodeDouble()) as gone:
        url = gone.url
    with pytest.raises(SessionLost, match=r"cannot open the session at ws://127\.0\.0\.1"):
        await Visitor.connect(url, new_key())
