"""What a room does with what other members send: their visitors, batches, ops and chat.

A member's `VisitorIn` has had its entry proof verified by the edge; here it must also fit: the
id must be the session key's text, the visitor must not be ours or another member's, its proof
must not have expired and the instance must have room. A `Batch` is that member's heartbeat
for all its visitors, and each transform in it must be for one of them, from a visitor not
banned since, and within the same bounds as a client's own (speed, rate, world box). An op or
chat line must be its visitor's and passes the same checks as a client's; a `StateSync` (a
late joiner's answer, or a member's periodic repair of lost ops) is checked op by op.
"""

from __future__ import annotations

from fluxnode.core.errors import ChatRejected, OpRejected, TransformRejected
from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.frames import Batch, InstanceOps, StateSync, VisitorIn
from fluxnode.core.session.room import Room
from fluxnode.core.session.seat_messages import SeatEvent
from fluxnode.core.session.visitors import RemoteVisitor, session_key_of


def add_remote(
    room: Room, peer: str, frame: VisitorIn, address: str, key: bytes, expires_at: float, now: float
) -> None:
    """A member seated a visitor (the edge verified its entry proof; bans checked)."""
    if peer not in room.heard:
        room.out.refused["not_a_member"] += 1
        return
    known = room.remote.get(frame.visitor)
    if (
        frame.visitor in room.local
        or (known is not None and known.owner != peer)
        or session_key_of(frame.visitor) != key
    ):
        room.out.refused["visitor_conflict"] += 1
        return
    if expires_at <= now:
        room.out.refused["proof_expired"] += 1
        return
    if known is None and len(room.presence) >= room.world.capacity:
        room.out.refused["instance_full"] += 1
        return
    info: dict[str, object] = {**frame.info, "address": address}
    try:
        room.presence.join(frame.visitor, frame.transform, now, info)
        room.frame_viewers()
    except TransformRejected:
        room.out.refused["remote_transform_rejected"] += 1
        return
    room.remote[frame.visitor] = RemoteVisitor(frame.visitor, peer, address, key, expires_at)
    room.signatures.bind(frame.visitor, address.lower(), key)


def on_batch(room: Room, peer: str, batch: Batch, now: float) -> None:
    if peer not in room.heard:
        room.out.refused["not_a_member"] += 1
        return
    room.heard_from(peer, now)
    for known in room.remote.values():
        if known.owner == peer:  # the batch is that member's heartbeat for all of them
            room.presence.heartbeat(known.id, now)
    for vid, transform in batch.transforms.items():
        remote = room.owned_by(peer, vid)
        if remote is None:
            continue
        if room.is_banned(room.world.world_id, remote.address) or remote.expires_at <= now:
            room.out.refused["banned_or_expired"] += 1
            room.drop_remote(vid)
            continue
        try:
            room.presence.receive_transform(vid, transform, now)
        except TransformRejected:
            room.out.refused["remote_transform_rejected"] += 1


def on_instance_ops(room: Room, peer: str, frame: InstanceOps, now: float) -> None:
    room.heard_from(peer, now)
    for op in frame.ops:
        if room.owned_by(peer, op.hlc.actor) is None:
            continue
        try:
            if room.state.receive_op(op, now):
                room.relay_local(op)
        except OpRejected:
            room.out.refused["op_rejected"] += 1


def on_state_sync(room: Room, peer: str, frame: StateSync, now: float) -> list[SeatEvent]:
    if peer not in room.heard:
        room.out.refused["not_a_member"] += 1
        return []
    room.heard_from(peer, now)
    room.signatures.syncing = True
    try:
        for op in frame.ops:
            try:
                if room.state.receive_op(op, now):
                    room.relay_local(op)
            except OpRejected:
                room.out.refused["op_rejected"] += 1
    finally:
        room.signatures.syncing = False
    for message in frame.chat:
        try:
            if room.chat.merge_history(message):
                room.relay_local(message)
        except ChatRejected:
            room.out.refused["chat_rejected"] += 1
    return room.answered(peer, now)


def on_chat(room: Room, peer: str, message: ChatMessage, now: float) -> None:
    room.heard_from(peer, now)
    if room.owned_by(peer, message.author) is None:
        return
    try:
        if room.chat.receive(message, now):
            room.relay_local(message)
    except ChatRejected:
        room.out.refused["chat_rejected"] += 1
