"""One instance as this node holds it: seats, presence, world state, chat and the member mesh.

A `Room` exists on a node while the node is a *member* of the instance (it has, or is seating,
visitors in it). It ties the sans-IO pieces together for that one instance and speaks for it to
the other members: it answers `MemberJoin` with its own visitors and the state, sends one
`Batch` per tick with its visitors' changed transforms, relays its visitors' signed state
operations and chat, and checks everything other members send exactly as it checks its own
clients — a member never trusts another member's checks:

- a transform, op or chat line another member sends must be for a visitor THAT member seated
  (its `VisitorIn` came over that member's stream), or it is refused and counted;
- state ops and chat are checked by `fluxnode.core.session.room_checks.Signatures`.

Outputs go to a shared `Outbox` (the hub drains it), so the order of frames on each link is the
order they were produced: a `MemberJoin` always precedes the seat claim it announces.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from fluxnode.core.errors import ChatRejected, OpRejected, SeatUnavailable, TransformRejected
from fluxnode.core.session.chat import ChatMessage, ChatRoom
from fluxnode.core.session.entry import SessionVerify
from fluxnode.core.session.frames import (
    Batch,
    Frame,
    InstanceOps,
    Joined,
    MemberJoin,
    RtcConfig,
    StateSnapshot,
    StateSync,
    VisitorIn,
    VisitorOut,
)
from fluxnode.core.session.mesh import FAIL_FOR
from fluxnode.core.session.presence import PresenceTable, Transform, ViewerStream
from fluxnode.core.session.room_checks import Signatures
from fluxnode.core.session.room_mesh import RoomMesh
from fluxnode.core.session.seat_messages import SeatEvent, SeatLost, SeatMessage
from fluxnode.core.session.seats import SeatTable
from fluxnode.core.session.state import StateOp, WorldState
from fluxnode.core.session.visitors import (
    Outbox,
    RemoteVisitor,
    Visitor,
    WorldInfo,
)
from fluxnode.core.session.wire import MAX_OPS

HEARTBEAT_EVERY: Final = 1.0  # seconds: an empty Batch at least this often tells members we live
SYNC_EVERY: Final = 2.0  # seconds between repairs of ops a member may have missed
MAX_MEMBERS: Final = 16  # nodes in one instance (us included), so a tick costs at most 15 Batches


class Room:
    """This node's part of one instance (sans-IO; see the module docstring)."""

    def __init__(
        self,
        node: str,
        instance: str,
        world: WorldInfo,
        members: set[str],
        *,
        verify_session: SessionVerify,
        is_banned: Callable[[str, str], bool],
        out: Outbox,
        now: float,
        is_shunned: Callable[[str, float], bool] = lambda peer, now: False,
        rtc: RtcConfig | None = None,
        silenced: set[str] | None = None,
        mesh_fail_for: float = FAIL_FOR,
    ) -> None:
        self.node = node
        self.instance = instance
        self.world = world
        self.out = out
        self.is_banned = is_banned
        self.seats = SeatTable(node, instance, world.capacity, members)
        self.presence = PresenceTable()
        self.signatures = Signatures(world.manifest, verify_session)
        self.state = WorldState(world.manifest, self.signatures.verify_op, actor=node)
        self.chat = ChatRoom(instance, self.signatures.verify_chat)
        self.local: dict[str, Visitor] = {}  # seated here, or claiming a seat
        self.remote: dict[str, RemoteVisitor] = {}
        self.viewers: dict[str, ViewerStream] = {}
        self.heard: dict[str, float] = {m: now for m in self.seats.members if m != node}
        self.tick_no = 0
        self._sent_rev: dict[str, int] = {}
        self._last_batch = -math.inf
        self.closed_at: float | None = None
        self._awaiting: set[str] = set()  # announced members that have not answered yet
        self._await_until = -math.inf
        self._queued: list[str] = []  # visitors whose claim waits for those answers
        self._pending_ops: list[StateOp] = []  # accepted, not yet sent to the members
        self._dirty_at: float | None = None  # when the state changed after the last repair
        self._synced_seq = 0
        self.is_shunned = is_shunned
        self.mesh = RoomMesh(self, rtc, verify_session, set() if silenced is None else silenced,
                             fail_for=mesh_fail_for)  # fmt: skip

    # --- membership ---------------------------------------------------------------------------

    def announce(self, now: float) -> None:
        """We just became a member: tell the members we know of. Seat claims wait until each
        has answered (its StateSync ends the answer) or `claim_timeout` passed: a claim made
        before we know the taken slots would mostly pick one and be refused."""
        self._awaiting = set(self.heard)
        self._await_until = now + self.seats.claim_timeout
        for member in sorted(self.heard):
            self.out.to_node(member, self._member_join())

    def _member_join(self) -> MemberJoin:
        return MemberJoin(self.world.world_id, self.instance, self.world.capacity)

    def flush(self, now: float) -> list[SeatEvent]:
        """Emit the seat table's messages (after a MemberJoin to members it just learned of)."""
        messages = self.seats.messages_to_send()
        if self.closed_at is None:
            self._sync_members(now)
        for dest, message in messages:
            self.out.to_node(dest, message)
        return self.seats.events()

    def _sync_members(self, now: float) -> None:
        current = self.seats.members - {self.node}
        for member in sorted(current - self.heard.keys()):
            if self.is_shunned(member, now):
                self.seats.member_lost(member, now)  # as if crashed: not one we wait for
                continue
            if len(self.heard) >= MAX_MEMBERS - 1:
                continue  # the seat rule still asks it; we exchange no frames with it
            self.heard[member] = now  # learned second-hand: it does not know us yet
            self.out.to_node(member, self._member_join())
        for member in [m for m in self.heard if m not in current]:
            self._forget_member(member)

    def _forget_member(self, member: str) -> None:
        del self.heard[member]
        self._awaiting.discard(member)
        for visitor in [v for v, r in self.remote.items() if r.owner == member]:
            self.drop_remote(visitor)

    def heard_from(self, peer: str, now: float) -> None:
        """Any frame from `peer` for this room: it lives (a first contact knows us already)."""
        self.heard[peer] = now

    def lose_member(self, peer: str, now: float) -> list[SeatEvent]:
        if peer not in self.heard and peer not in self.seats.members:
            return []
        self.out.members_lost += 1
        self.seats.member_lost(peer, now)
        self.heard.pop(peer, None)
        self._awaiting.discard(peer)
        for visitor in [v for v, r in self.remote.items() if r.owner == peer]:
            self.drop_remote(visitor)
        return self.flush(now)

    def check_members(self, now: float, timeout: float) -> list[SeatEvent]:
        events: list[SeatEvent] = []
        for peer in [m for m, t in self.heard.items() if now - t >= timeout]:
            events += self.lose_member(peer, now)
        return events

    def seat_message(self, peer: str, message: SeatMessage, now: float) -> list[SeatEvent]:
        if self.closed_at is None:
            self.heard_from(peer, now)
        self.seats.receive(message, now)
        return self.flush(now)

    def on_member_join(self, peer: str, now: float) -> list[SeatEvent]:
        """A node became a member: it learns our seats (replayed claims) and visitors, then the
        state and chat history. Refused (and counted) past `MAX_MEMBERS`."""
        if peer not in self.heard and len(self.heard) >= MAX_MEMBERS - 1:
            self.out.refused["too_many_members"] += 1
            return []
        self.heard_from(peer, now)
        self.seats.members.add(peer)
        for claim in self.seats.held_claims():
            self.out.to_node(peer, claim)
        for visitor in self.local.values():
            if visitor.seated and (p := self.presence.get(visitor.id)) is not None:
                self.out.to_node(peer, self._visitor_in(visitor, p.transform))
        snapshot = tuple(self.state.snapshot()[-MAX_OPS:])  # newest registers if ever more
        self.out.to_node(peer, StateSync(self.instance, snapshot, tuple(self.chat.history())))
        return self.flush(now)

    def _visitor_in(self, visitor: Visitor, transform: Transform) -> VisitorIn:
        return VisitorIn(self.instance, visitor.id, visitor.proof, visitor.proof_signature,
                         visitor.shown(), transform)  # fmt: skip

    # --- local visitors -----------------------------------------------------------------------

    def answered(self, peer: str, now: float) -> list[SeatEvent]:
        """`peer`'s StateSync ended its answer to our MemberJoin: claims may go ahead."""
        self._awaiting.discard(peer)
        return self.release_claims(now)

    def has_locals(self) -> bool:
        return bool(self.local) or bool(self.seats.held())

    def claim(self, visitor: Visitor, now: float) -> list[SeatEvent]:
        """Start seating `visitor`; its answer is a `SeatConfirmed` or `SeatLost` event."""
        self.local[visitor.id] = visitor
        visitor.instance, visitor.seated = self.instance, False
        self._queued.append(visitor.id)
        return self.release_claims(now)

    def release_claims(self, now: float) -> list[SeatEvent]:
        """Make the queued claims once every announced member answered (or it took too long)."""
        if not self._queued or (self._awaiting and now < self._await_until):
            return []
        queued, self._queued = self._queued, []
        self._awaiting.clear()
        events: list[SeatEvent] = []
        for vid in queued:
            if vid not in self.local:
                continue  # left while it waited
            try:
                self.seats.claim(vid, now)
            except SeatUnavailable as exc:
                events.append(SeatLost(vid, str(exc)))
            events += self.flush(now)
        return events

    def seat_confirmed(self, visitor: Visitor, slot: int, now: float) -> None:
        spawn = self.world.spawn
        try:
            self.presence.join(visitor.id, spawn, now, visitor.shown())
        except TransformRejected:  # a spawn point outside the world box: the origin instead
            spawn = Transform((0.0, 0.0, 0.0))
            self.presence.join(visitor.id, spawn, now, visitor.shown())
        self.local[visitor.id] = visitor
        visitor.instance, visitor.seated = self.instance, True
        self.signatures.bind(visitor.id, visitor.author, visitor.session_key)
        presence = self.presence.get(visitor.id)
        assert presence is not None
        self._sent_rev[visitor.id] = presence.rev  # the VisitorIn carries this transform
        for member in sorted(self.heard):
            self.out.to_node(member, self._visitor_in(visitor, spawn))
        self.send_joined(visitor, slot)
        self.frame_viewers()

    def send_joined(self, visitor: Visitor, slot: int) -> None:
        """Joined, then the state snapshot; the next tick's viewer frame is a full snapshot."""
        here = self.presence.get(visitor.id)
        spawn = here.transform if here is not None else self.world.spawn
        self.out.to_client(
            visitor.id, Joined(self.world.world_id, self.instance, self.node, slot, spawn)
        )
        self.mesh.joined(visitor.id)
        snapshot = tuple(self.state.snapshot()[-MAX_OPS:])
        self.out.to_client(
            visitor.id, StateSnapshot(self.instance, snapshot, tuple(self.chat.history()))
        )
        viewer = self.viewers.setdefault(visitor.id, ViewerStream(visitor.id))
        viewer.resync()

    def slot_of(self, visitor: str) -> int | None:
        return next((s for s, v in self.seats.held().items() if v == visitor), None)

    def remove_local(self, visitor: str, now: float) -> list[SeatEvent]:
        """The visitor left (or expired, or was closed): free its seat, tell the members."""
        held = self.local.pop(visitor, None)
        self.seats.release(visitor)
        # An expired visitor already left the presence table; it was seated all the same.
        seated = self.presence.leave(visitor) or (held is not None and held.seated)
        self.viewers.pop(visitor, None)
        self._sent_rev.pop(visitor, None)
        if held is not None:
            held.instance, held.seated = None, False
        if seated:
            self.send_ops()  # its last ops must arrive while the members still know it
            for member in sorted(self.heard):
                self.out.to_node(member, VisitorOut(self.instance, visitor))
        return self.flush(now)

    def client_transform(self, visitor: Visitor, transform: Transform, now: float) -> None:
        visitor.transforms += 1
        self.presence.receive_transform(visitor.id, transform, now)

    def client_op(self, visitor: Visitor, op: StateOp, now: float) -> None:
        """A visitor's own op: it must speak for itself; raises `OpRejected`."""
        if op.author != visitor.author:
            raise OpRejected("a state op's author must be your own address")
        if op.hlc.actor != visitor.id:
            raise OpRejected("a state op's clock actor must be your own visitor id")
        if self.state.receive_op(op, now):
            self.relay_local(op, skip=visitor.id)
            self._pending_ops.append(op)

    def send_ops(self) -> None:
        """Our visitors' accepted ops since the last call, to each member in order: one
        `InstanceOps` per tick (before anything that must follow them, like a VisitorOut)."""
        pending, self._pending_ops = self._pending_ops, []
        for start in range(0, len(pending), MAX_OPS):
            frame = InstanceOps(self.instance, tuple(pending[start : start + MAX_OPS]))
            for member in sorted(self.heard):
                self.out.to_node(member, frame)

    def _repair(self, now: float) -> None:
        """`SYNC_EVERY` s after the state changed, the registers it changed since the last
        repair go to the members as a `StateSync` (their winning ops): an op a member missed (a
        frame its link dropped) arrives again, and one it holds costs it no signature check."""
        if self.state.seq == self._synced_seq:
            return
        if self._dirty_at is None:
            self._dirty_at = now
        if now - self._dirty_at < SYNC_EVERY:
            return
        since = self.state.ops_since(self._synced_seq)
        touched = None if since is None else {(o.object_id, o.prop) for o in since}
        ops = [
            o for o in self.state.snapshot() if touched is None or (o.object_id, o.prop) in touched
        ]
        self._dirty_at, self._synced_seq = None, self.state.seq
        for start in range(0, len(ops), MAX_OPS):
            frame = StateSync(self.instance, tuple(ops[start : start + MAX_OPS]), ())
            for member in sorted(self.heard):
                self.out.to_node(member, frame)

    def client_chat(self, visitor: Visitor, message: ChatMessage, now: float) -> None:
        if message.author != visitor.id:
            raise ChatRejected("a chat message's author must be your own visitor id")
        if message.instance != self.instance:
            raise ChatRejected("chat message is for another instance")
        if self.chat.receive(message, now):
            self.relay_local(message, skip=visitor.id)
            for member in sorted(self.heard):
                self.out.to_node(member, message)

    def relay_local(self, frame: Frame, skip: str | None = None) -> None:
        for vid, visitor in self.local.items():
            if vid != skip and visitor.seated and visitor.connected:
                self.out.to_client(vid, frame)

    # --- what other members send ----------------------------------------------------------------

    def owned_by(self, peer: str, visitor: str) -> RemoteVisitor | None:
        remote = self.remote.get(visitor)
        if remote is None or remote.owner != peer:
            self.out.refused["foreign_visitor"] += 1
            return None
        return remote

    def drop_remote(self, visitor: str) -> None:
        self.remote.pop(visitor, None)
        self.presence.leave(visitor)

    def on_visitor_out(self, peer: str, frame: VisitorOut) -> None:
        if self.owned_by(peer, frame.visitor) is not None:
            self.drop_remote(frame.visitor)

    # --- time -----------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """One Batch per member with our visitors' changes, one ViewerFrame per local viewer."""
        self.tick_no += 1
        self.send_ops()
        self._repair(now)
        changed: dict[str, Transform] = {}
        for vid, visitor in self.local.items():
            p = self.presence.get(vid)
            if visitor.seated and p is not None and self._sent_rev.get(vid) != p.rev:
                changed[vid] = p.transform
                self._sent_rev[vid] = p.rev
        if changed or now - self._last_batch >= HEARTBEAT_EVERY:
            self._last_batch = now
            for member in sorted(self.heard):
                self.out.to_node(member, Batch(self.instance, self.tick_no, changed))
        self.mesh.tick(now)
        self.frame_viewers()

    def frame_viewers(self) -> None:
        """A viewer frame for each local viewer that has news. Also called when someone
        arrives, so viewers learn of a newcomer (its address, avatar) before any chat line or
        state operation of theirs, which may follow at once."""
        for vid, viewer in self.viewers.items():
            viewer_visitor = self.local.get(vid)
            if viewer_visitor is not None and viewer_visitor.connected:
                frame = viewer.frame(self.presence, self.tick_no, self.mesh.skip(vid))
                if frame is not None:
                    self.out.to_client(vid, frame)

    def expire(self, now: float) -> list[str]:
        """Drop silent visitors and expired proofs; return the local visitors that left."""
        for remote in [r for r in self.remote.values() if r.expires_at <= now]:
            self.drop_remote(remote.id)
        gone = []
        for vid in self.presence.expire(now):
            if vid in self.local:
                gone.append(vid)
            else:
                self.remote.pop(vid, None)
        return gone
