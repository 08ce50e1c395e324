"""The visitor's sans-IO replica: viewer frames into peer events with ack/resync, relayed ops
and chat re-checked, our own ops planned, signed and accepted by an independent replica."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from fluxnode.chain.entry import new_session_key, verify_session_signature
from fluxnode.client import Chat, Error, PeerJoined, PeerLeft, PeerMoved, Replica, StateChanged
from fluxnode.client.replica import transform_of
from fluxnode.core.errors import ChatRejected, NoManifest, OpRejected, TransformRejected
from fluxnode.core.session.frames import Ack, Resync, StateSnapshot
from fluxnode.core.session.presence import Transform, ViewerFrame
from fluxnode.core.session.state import StateOp, WorldState
from tests.unit.client_node_double import INSTANCE, MANIFEST, NOW, Peer, visitor_id

ME_ADDRESS = "0x" + "A" * 40
NEAR = Transform((1.0, 0.0, 1.0))


def replica(manifest: bool = True) -> Replica:
    key = new_session_key()
    r = Replica(visitor_id(key), ME_ADDRESS, key)
    r.joined(INSTANCE, MANIFEST if manifest else None)
    return r


def frame(seq: int, base: int | None, changed: dict[str, Transform | None],
          removed: tuple[str, ...] = (), info: dict[str, dict[str, object]] | None = None,
          ) -> ViewerFrame:  # fmt: skip
    return ViewerFrame(seq, base, changed, removed, info or {})  # type: ignore[arg-type]


def test_frames_become_peer_events_and_acks() -> None:
    r, bob, carol = replica(), Peer(), Peer(address="0x" + "d" * 40)
    info = {bob.visitor: {"address": bob.address}, carol.visitor: {"address": carol.address}}
    events = r.receive(frame(1, None, {bob.visitor: NEAR, carol.visitor: None}, info=info), NOW)
    assert events == [
        PeerJoined(bob.visitor, bob.address),
        PeerMoved(bob.visitor, bob.address, NEAR),
        PeerJoined(carol.visitor, carol.address),  # beyond range: present, no transform
    ]
    assert r.frames_to_send() == [Ack(1)]
    far = Transform((90.0, 0.0, 0.0))
    events = r.receive(frame(2, 1, {bob.visitor: None, carol.visitor: far}), NOW)
    assert events == [
        PeerMoved(bob.visitor, bob.address, None),
        PeerMoved(carol.visitor, carol.address, far),
    ]
    assert r.receive(frame(3, 2, {}, (bob.visitor,)), NOW) == [PeerLeft(bob.visitor, bob.address)]
    assert r.frames_to_send() == [Ack(2), Ack(3)]
    assert r.peers() == {carol.visitor: carol.address}


def test_a_late_frame_is_acked_but_changes_nothing_shown() -> None:
    r, bob = replica(), Peer()
    r.receive(frame(1, None, {bob.visitor: NEAR}, info={bob.visitor: {"address": bob.address}}),
              NOW)  # fmt: skip
    r.receive(frame(3, 1, {bob.visitor: Transform((3.0, 0.0, 1.0))}), NOW)
    r.frames_to_send()
    assert r.receive(frame(2, 1, {bob.visitor: Transform((2.0, 0.0, 1.0))}), NOW) == []
    assert r.frames_to_send() == [Ack(2)]


def test_one_resync_until_a_full_frame_comes() -> None:
    r, bob = replica(), Peer()
    assert r.receive(frame(5, 4, {bob.visitor: NEAR}), NOW) == []
    assert r.receive(frame(6, 5, {bob.visitor: NEAR}), NOW) == []
    assert r.frames_to_send() == [Resync()]
    assert r.receive(frame(7, None, {bob.visitor: NEAR}), NOW)[0] == PeerJoined(bob.visitor, None)
    assert r.receive(frame(9, 8, {}), NOW) == []
    assert r.frames_to_send() == [Ack(7), Resync()]


def test_ops_before_the_manifest_are_kept_and_merged_when_it_comes() -> None:
    r, bob = replica(manifest=False), Peer()
    op = bob.door_op(True, int(NOW * 1000))
    assert r.receive(op, NOW) == [StateChanged("door", "open", True, bob.address)]
    with pytest.raises(NoManifest):
        r.interaction("door", "onClick", NOW)
    r.set_manifest(MANIFEST, NOW)
    assert r.state is not None and r.state.value("door", "open") is True
    mine, _ = r.interaction("door", "onClick", NOW)
    assert mine.value is False


def test_relayed_ops_are_checked_again() -> None:
    r, bob, mallory = replica(), Peer(), Peer()
    r.receive(frame(1, None, {bob.visitor: NEAR}, info={bob.visitor: {"address": bob.address}}),
              NOW)  # fmt: skip
    good = bob.door_op(True, int(NOW * 1000))
    forged = dataclasses.replace(good, signature=mallory.door_op(True, int(NOW * 1000)).signature)
    assert r.receive(forged, NOW) == []
    # Bob's key, but claiming another author than the address the node gave for Bob.
    other = Peer(key=bob.key, address="0x" + "e" * 40).door_op(True, int(NOW * 1000))
    assert r.receive(other, NOW) == []
    assert r.counts["ops_rejected"] == 2
    assert r.state is not None and r.state.value("door", "open") is False
    assert r.receive(good, NOW) == [StateChanged("door", "open", True, bob.address)]
    assert r.receive(good, NOW) == []  # a duplicate changes nothing


def test_snapshot_chat_is_verified_and_named() -> None:
    r, bob = replica(), Peer()
    line = bob.chat("hello", int(NOW * 1000))
    forged = dataclasses.replace(line, text="give me your keys")
    elsewhere = bob.chat("wrong room", int(NOW * 1000), instance="inst-2")
    # The history waits for the viewer frame behind the snapshot, which names its author.
    assert r.receive(StateSnapshot(INSTANCE, (), (line, forged, elsewhere)), NOW) == []
    info = {bob.visitor: {"address": bob.address}}
    events = r.receive(frame(1, None, {bob.visitor: NEAR}, info=info), NOW)
    assert events == [
        Chat(bob.visitor, bob.address, "hello", int(NOW * 1000)),
        Error("chat_rejected", "dropped a chat line its author did not sign"),
        PeerJoined(bob.visitor, bob.address),
        PeerMoved(bob.visitor, bob.address, NEAR),
    ]


def node_verify(address: str):  # type: ignore[no-untyped-def]
    def verify(op: StateOp) -> bool:
        key = base64.urlsafe_b64decode(op.hlc.actor + "=")
        return op.author == address.lower() and verify_session_signature(
            key, op.signing_bytes(), op.signature
        )

    return verify


def test_our_ops_are_signed_and_accepted_by_an_independent_replica() -> None:
    r = replica()
    other = WorldState(MANIFEST, node_verify(ME_ADDRESS))
    first, events = r.interaction("door", "onClick", NOW)
    assert events == [StateChanged("door", "open", True, ME_ADDRESS.lower())]
    second, _ = r.interaction("door", "onClick", NOW)  # same millisecond: the counter moves on
    assert (first.value, second.value) == (True, False)
    assert second.hlc > first.hlc
    red, _ = r.interaction("door", "onEnter", NOW)
    assert (red.prop, red.value) == ("color", "red")
    for op in (second, first, red):  # any order: the later click wins everywhere
        assert other.receive_op(op, NOW) in (True, False)
    assert other.value("door", "open") is False
    assert other.value("door", "color") == "red"


@pytest.mark.parametrize(
    ("object_id", "trigger", "message"),
    [
        ("statue", "onClick", "object 'statue' cannot be modified"),
        ("throne", "onClick", "object 'throne' belongs to 0xcccc"),
        ("door", "onInteract", "onInteract of 'door' is no declarative action of this world"),
        ("nothing", "onClick", "onClick of 'nothing' is no declarative action of this world"),
    ],
)
def test_ops_our_replica_refuses_are_not_made(object_id: str, trigger: str, message: str) -> None:
    r = replica()
    with pytest.raises(OpRejected) as info:
        r.interaction(object_id, trigger, NOW)
    assert message in str(info.value)
    assert r.state is not None and r.state.snapshot() == []


def test_chat_lines_are_signed_and_bounded() -> None:
    r = replica()
    m = r.chat_message("hi all", NOW)
    key = base64.urlsafe_b64decode(r.visitor + "=")
    assert (m.instance, m.author, m.sent_ms) == (INSTANCE, r.visitor, int(NOW * 1000))
    assert verify_session_signature(key, m.signing_bytes(), m.signature)
    with pytest.raises(ChatRejected, match="over the 500-character limit"):
        r.chat_message("x" * 501, NOW)
    with pytest.raises(ChatRejected, match="chat text is empty"):
        r.chat_message("   ", NOW)


def test_a_replica_refuses_a_visitor_id_that_is_not_its_key() -> None:
    with pytest.raises(ValueError, match="not this session key"):
        Replica(visitor_id(new_session_key()), ME_ADDRESS, new_session_key())


def test_a_move_is_three_numbers_and_a_quaternion() -> None:
    assert transform_of([1, 2, 3], (0, 0, 0, 1), "run") == Transform((1.0, 2.0, 3.0), anim="run")
    with pytest.raises(TransformRejected, match="position and rotation must be numbers"):
        transform_of(("a", 0, 0), (0, 0, 0, 1), "walk")  # type: ignore[arg-type]
    with pytest.raises(TransformRejected, match="position is 3 numbers and rotation 4"):
        transform_of((0, 0), (0, 0, 0, 1), "walk")
