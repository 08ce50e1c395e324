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

Before any of that, a frame costs its sender's budget (`fluxnode.core.session.hub_guard`): a
frame over budget is refused and counted (``over_budget``), and a shunned sender's frames are
dropped unread (``shunned``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fluxnode.core.errors import FrameInvalid, RateLimited, SessionError
from fluxnode.core.session import room_remote
from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.frames import (
    Ack,
    Batch,
    Frame,
    Heartbeat,
    InstanceOps,
    MemberJoin,
    MeshStatus,
    Resync,
    Signal,
    SignalRelay,
    Silence,
    StateSync,
    VisitorIn,
    VisitorOut,
)
from fluxnode.core.session.hub_guard import STRAY
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
_ROOM_FRAMES = (*_SEAT, MemberJoin, VisitorOut, Batch, InstanceOps, StateSync, ChatMessage,
                SignalRelay, Silence)  # fmt: skip


def visitor_out(room: Room, visitor: str) -> VisitorOut:
    return VisitorOut(room.instance, visitor)


def _sender_matches(peer: str, message: SeatMessage) -> bool:
    if isinstance(message, SeatClaim | SeatRelease):
        return message.key.node == peer
    return message.sender == peer


def _budget(frame: Frame) -> tuple[str, float]:
    """Which budget `frame` costs, and how much."""
    if isinstance(frame, Batch):
        return "batch", 1.0
    if isinstance(frame, InstanceOps):
        return "ops", float(max(1, len(frame.ops)))
    if isinstance(frame, StateSync):
        return "ops", float(max(1, len(frame.ops) + len(frame.chat)))
    if isinstance(frame, ChatMessage):
        return "ops", 1.0
    if isinstance(frame, VisitorIn):
        return "visitor_in", 1.0
    if isinstance(frame, SignalRelay | Silence):
        return "signal", 1.0
    return "seat", 1.0


def charge(hub: SessionHub, peer: str, frame: Frame, instance: str, now: float) -> bool:
    """Spend `peer`'s budget for `frame` (an instance we do not hold: the stray budget)."""
    room = hub.rooms.get(instance) or hub.closed.get(instance)
    kind, cost = _budget(frame) if room is not None else ("stray", 1.0)
    capacity = room.world.capacity if room is not None else 0
    if hub.guard.charge(peer, kind, instance if room is not None else STRAY, capacity, now, cost):
        return True
    hub.out.refused["over_budget"] += 1
    hub.react_to_shuns(now)
    return False


def node_frame(hub: SessionHub, peer: str, frame: Frame, now: float) -> None:
    refused = hub.out.refused
    if hub.guard.ignore(peer, now):
        refused["shunned"] += 1
        return
    if isinstance(frame, VisitorIn):
        refused["visitor_in_unverified"] += 1  # its proof must go through the edge first
        return
    if not isinstance(frame, _ROOM_FRAMES) or peer == hub.node:
        if charge(hub, peer, frame, STRAY, now):
            refused["unexpected_node_frame"] += 1
        return
    if isinstance(frame, _SEAT) and not _sender_matches(peer, frame):
        if charge(hub, peer, frame, STRAY, now):
            refused["forged_sender"] += 1
        return
    if not charge(hub, peer, frame, frame.instance, now):
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
        room_remote.on_instance_ops(room, peer, frame, now)
    elif isinstance(frame, StateSync):
        hub.handle_events(room, room_remote.on_state_sync(room, peer, frame, now), now)
    elif isinstance(frame, SignalRelay):
        room.mesh.relay_signal(peer, frame, now)
    elif isinstance(frame, Silence):
        room.mesh.node_silence(peer, frame, now)
    else:
        room_remote.on_chat(room, peer, frame, now)


def remote_visitor(
    hub: SessionHub,
    peer: str,
    frame: VisitorIn,
    address: str,
    session_key: bytes,
    expires_at: float,
    now: float,
) -> None:
    if hub.guard.ignore(peer, now):
        hub.out.refused["shunned"] += 1
        return
    if not charge(hub, peer, frame, frame.instance, now):
        return
    room = hub.rooms.get(frame.instance)
    if room is None:
        hub.out.refused["unknown_instance"] += 1
        return
    if hub.is_banned(room.world.world_id, address):
        hub.out.refused["banned"] += 1
        return
    room_remote.add_remote(room, peer, frame, address, session_key, expires_at, now)


def wants_visitor(hub: SessionHub, peer: str, frame: VisitorIn, now: float) -> bool:
    """Would `remote_visitor` take `frame` as far as budgets and rooms tell (nothing spent)?"""
    room = hub.rooms.get(frame.instance)
    if room is None or peer not in room.heard:
        return False
    capacity = room.world.capacity
    if frame.visitor not in room.remote and len(room.presence) >= capacity:
        return False
    return hub.guard.allows(peer, "visitor_in", frame.instance, capacity, now)


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
        if not v.op_rate.allow(now):
            raise RateLimited(f"too many state operations; wait {v.op_rate.retry_after(now):.1f} s")
        room.client_op(v, frame, now)
    elif isinstance(frame, ChatMessage):
        room.client_chat(v, frame, now)
    elif isinstance(frame, Signal):
        room.mesh.client_signal(v, frame, now)
    elif isinstance(frame, MeshStatus):
        room.mesh.status(v, frame)
    elif isinstance(frame, Silence):
        room.mesh.client_silence(v, frame, now)
    else:
        raise FrameInvalid(f"{type(frame).__name__} is not a frame the session hub takes")
