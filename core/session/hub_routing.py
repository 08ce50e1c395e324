"""Routing frames to the hub's rooms, with the checks that do not need a room.

Kept apart from `hub` so each module stays small; these functions are the bodies of
`SessionHub.node_frame`, `SessionHub.remote_visitor` and most of `SessionHub.client_frame`.

A seat message must come from the node it names (``key.node`` of a claim or release, the
``sender`` of an ack, nack or handover): one member cannot claim, release or hand over seats
in another member's name. A seat claim for an instance this node never held is acknowledged
with an empty member list — a node that holds nothing in an instance cannot conflict with a
claim, and a stale directory entry naming us must not make the claimer wait for its timeout.
An instance we left answers from its closed seat table for a while (`CLOSED_KEEP`), so seats we
handed over are still defended. Anything else for an unknown instance is counted and ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fluxnode.core.errors import FrameInvalid, SessionError
from fluxnode.core.session import room_remote
from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.frames import (
    Ack,
    Batch,
    Frame,
    Heartbeat,
    InstanceOps,
    MemberJoin,
    Resync,
    StateSync,
    VisitorIn,
    VisitorOut,
)
from fluxnode.core.session.presence import Transform
from fluxnode.core.session.room import Room
from fluxnode.core.session.seat_messages import (
    Handover,
    SeatAck,
    SeatClaim,
    SeatMessage,
    SeatNack,
    SeatRelease,
)
from fluxnode.core.session.state import StateOp
from fluxnode.core.session.visitors import Visitor

if TYPE_CHECKING:
    from fluxnode.core.session.hub import SessionHub

_SEAT = (SeatClaim, SeatAck, SeatNack, SeatRelease, Handover)
_ROOM_FRAMES = (*_SEAT, MemberJoin, VisitorOut, Batch, InstanceOps, StateSync, ChatMessage)


def visitor_out(room: Room, visitor: str) -> VisitorOut:
    return VisitorOut(room.instance, visitor)


def _sender_matches(peer: str, message: SeatMessage) -> bool:
    if isinstance(message, SeatClaim | SeatRelease):
        return message.key.node == peer
    return message.sender == peer


def node_frame(hub: SessionHub, peer: str, frame: Frame, now: float) -> None:
    refused = hub.out.refused
    if isinstance(frame, VisitorIn):
        refused["visitor_in_unverified"] += 1  # its proof must go through the edge first
        return
    if not isinstance(frame, _ROOM_FRAMES) or peer == hub.node:
        refused["unexpected_node_frame"] += 1
        return
    if isinstance(frame, _SEAT) and not _sender_matches(peer, frame):
        refused["forged_sender"] += 1
        return
    room = hub.rooms.get(frame.instance)
    if room is None:
        left = hub.closed.get(frame.instance)
        if left is not None and isinstance(frame, _SEAT):
            left.seat_message(peer, frame, now)
        elif isinstance(frame, SeatClaim):
            ack = SeatAck(frame.instance, frame.slot, frame.key, hub.node, ())
            hub.out.to_node(peer, ack)
        else:
            refused["unknown_instance"] += 1
        return
    if isinstance(frame, _SEAT):
        hub.handle_events(room, room.seat_message(peer, frame, now), now)
    elif isinstance(frame, MemberJoin):
        if frame.world_id != room.world.world_id or frame.capacity != room.world.capacity:
            refused["wrong_world"] += 1
            return
        hub.handle_events(room, room.on_member_join(peer, now), now)
    elif isinstance(frame, VisitorOut):
        room.on_visitor_out(peer, frame)
    elif isinstance(frame, Batch):
        room_remote.on_batch(room, peer, frame, now)
    elif isinstance(frame, InstanceOps):
        room.on_instance_ops(peer, frame, now)
    elif isinstance(frame, StateSync):
        hub.handle_events(room, room.on_state_sync(peer, frame, now), now)
    else:
        room.on_chat(peer, frame, now)


def remote_visitor(
    hub: SessionHub,
    peer: str,
    frame: VisitorIn,
    address: str,
    session_key: bytes,
    expires_at: float,
    now: float,
) -> None:
    room = hub.rooms.get(frame.instance)
    if room is None:
        hub.out.refused["unknown_instance"] += 1
        return
    if hub.is_banned(room.world.world_id, address):
        hub.out.refused["banned"] += 1
        return
    room_remote.add_remote(room, peer, frame, address, session_key, expires_at, now)


def client_frame(v: Visitor, room: Room | None, frame: Frame, now: float) -> None:
    """What a client's frame (other than Leave) does; raises a `SessionError` to refuse it."""
    if room is None or not v.seated:
        if isinstance(frame, Heartbeat):
            return
        raise SessionError("not in an instance yet: send Join first")
    room.presence.heartbeat(v.id, now)  # any frame says the client is alive
    if isinstance(frame, Heartbeat):
        return
    if isinstance(frame, Transform):
        room.client_transform(v, frame, now)
    elif isinstance(frame, Ack):
        if (viewer := room.viewers.get(v.id)) is not None:
            viewer.ack(frame.seq)
    elif isinstance(frame, Resync):
        if (viewer := room.viewers.get(v.id)) is not None:
            viewer.resync()
    elif isinstance(frame, StateOp):
        room.client_op(v, frame, now)
    elif isinstance(frame, ChatMessage):
        room.client_chat(v, frame, now)
    else:
        raise FrameInvalid(f"{type(frame).__name__} is not a frame the session hub takes")
