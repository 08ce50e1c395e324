"""The session hub: one node's whole live-session logic, sans-IO (docs/session-protocol.md).

The node edge feeds it what arrives (signed-in visitors and their frames, member nodes' frames,
directory gossip, measured RTTs, the time) and drains what it produces (frames for clients and
member nodes, connections to close, directory messages). No I/O and no clock here, so a test
wires hubs through an in-memory router and plays any delivery order it likes.

Who decides what:

- the edge verified each visitor's entry proof and possession and decided access before
  `sign_in`/`join`; the hub still applies the owner's bans on join and on every frame (a ban
  published mid-session takes effect at the visitor's next frame) and closes a visitor when its
  entry proof expires;
- placement (`fluxnode.core.session.instances.place`) picks an instance from the gossiped
  directory or redirects to another node's gateway when this node is at its limit; the seat
  rule (`fluxnode.core.session.seats`) then seats the visitor without overselling. A lost seat is
  placed once more (the table now knows that instance is full, so it opens or picks another);
  a second loss is ``denied: the instance filled up; try again``;
- each instance lives in a `fluxnode.core.session.room.Room`, which speaks to the other members
  and re-checks everything they send; the node-frame routing lives in `hub_routing`.

A visitor whose connection drops without `Leave` keeps its seat for the reconnect window (the
presence table's 30 s): signing in again with the same session key and joining the same world
within it gives the same instance and seat back, with a fresh snapshot.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from typing import Final

from fluxnode.core.errors import FrameInvalid, LocalError, SessionError
from fluxnode.core.session import hub_life, hub_routing
from fluxnode.core.session.directory_wire import decode_directory
from fluxnode.core.session.frames import Denied, Error, Frame, Leave, RtcConfig, VisitorIn
from fluxnode.core.session.hub_directory import HubDirectory, Publisher
from fluxnode.core.session.hub_guard import PeerGuard
from fluxnode.core.session.hub_life import CLOSE_EXPIRED, CLOSE_STOPPING
from fluxnode.core.session.hub_placement import join_world, place_visitor
from fluxnode.core.session.instances import InstanceSummary, NodeLoad
from fluxnode.core.session.join import DENIED_BANNED
from fluxnode.core.session.mesh import FAIL_FOR
from fluxnode.core.session.room import Room
from fluxnode.core.session.seat_messages import SeatConfirmed, SeatEvent, SeatExpired, SeatLost
from fluxnode.core.session.visitors import Outbox, Visitor, WorldInfo, visitor_id
from fluxnode.core.world import JsonValue

__all__ = ["DENIED_FILLED", "DENIED_STOPPING", "HubDirectory", "SessionHub", "WorldInfo"]

DENIED_FILLED: Final = "denied: the instance filled up; try again"
DENIED_STOPPING: Final = "denied: this node is stopping"
CLOSE_TOO_MANY: Final = "this node has too many visitors"
CLOSE_REFUSED: Final = "too many refused frames"
MAX_CLOSED: Final = 1024
MAX_RTT_PEERS: Final = 4096


class SessionHub:
    """One node's live sessions (sans-IO; `now` in seconds everywhere)."""

    def __init__(
        self,
        node: str,
        *,
        verify_session: Callable[[bytes, bytes, bytes], bool],
        is_banned: Callable[[str, str], bool],
        max_visitors: int,
        gateway_url: str | None,
        tick_hz: float = 10.0,
        member_timeout: float = 10.0,
        rtc: RtcConfig | None = None,
        mesh_fail_for: float = FAIL_FOR,
    ) -> None:
        if max_visitors < 0 or not tick_hz > 0 or not member_timeout > 0:
            raise ValueError("max_visitors must be >= 0, tick_hz and member_timeout > 0")
        self.node = node
        self._verify_session = verify_session
        self.is_banned = is_banned
        self.max_visitors = max_visitors if gateway_url is not None else 0
        self.gateway_url = gateway_url
        self.tick_period = 1.0 / tick_hz
        self.member_timeout = member_timeout
        self.max_records = 4 * max_visitors + 100  # signed in, seated or not
        self.out = Outbox()
        self.guard = PeerGuard(tick_hz)
        self.directory = HubDirectory(self.guard)
        self.visitors: dict[str, Visitor] = {}
        self.rooms: dict[str, Room] = {}
        self.closed: collections.OrderedDict[str, Room] = collections.OrderedDict()
        self.rtt: dict[str, float] = {}
        self.next_instance = 0
        self.next_tick: float | None = None
        self.publisher = Publisher(node)
        self.stopping = False
        self.seats_expired = 0
        self.rtc = rtc  # None: no WebRTC here (no RtcConfig, no MeshPlan, no signals relayed)
        self.mesh_fail_for = mesh_fail_for  # how long a pair whose ICE failed relays
        self.silenced: set[str] = set()  # the operator's, shared by every room's mesh

    # --- local visitors -----------------------------------------------------------------------

    def sign_in(self, visitor: str, address: str, session_key: bytes, proof: str,
                proof_signature: bytes, expires_at: float, now: float) -> None:  # fmt: skip
        """A visitor whose entry proof and possession the edge verified (again, on reconnect)."""
        if visitor != visitor_id(session_key):
            raise LocalError(f"visitor id {visitor[:60]!r} is not its session key's text")
        if self.stopping:
            self.out.closes.append((visitor, CLOSE_STOPPING))
            return
        held = self.visitors.get(visitor)
        if held is not None:
            if held.address != address and held.instance is not None:
                self.leave_room(held, now)
            held.address, held.proof, held.proof_signature = address, proof, proof_signature
            held.expires_at, held.connected = expires_at, True
            return
        if len(self.visitors) >= self.max_records:
            self.out.refused["too_many_visitors"] += 1
            self.out.closes.append((visitor, CLOSE_TOO_MANY))
            return
        self.visitors[visitor] = Visitor(
            visitor, address, session_key, proof, proof_signature, expires_at
        )

    def join(self, visitor: str, world: WorldInfo, now: float,
             info: dict[str, JsonValue] | None = None) -> None:  # fmt: skip
        """Place and seat `visitor`; the answer (Joined | Denied | RedirectTo) comes as output.
        `info` (avatar, checked wearables) is shown to the others with the address."""
        if (v := self.visitors.get(visitor)) is None or not v.connected:
            self.out.refused["unknown_visitor"] += 1
            return
        v.info = dict(info or v.info)
        if v.expires_at <= now:
            self.close_visitor(v, CLOSE_EXPIRED, now)
            return
        if self.stopping:
            self.out.to_client(visitor, Denied(DENIED_STOPPING))
            return
        if self.is_banned(world.world_id, v.address):
            self.out.to_client(visitor, Denied(DENIED_BANNED))
            return
        join_world(self, v, world, now)

    def open_room(self, world: WorldInfo, instance: str, members: set[str], now: float) -> Room:
        self.closed.pop(instance, None)  # we come back to an instance we left: a fresh table
        self.guard.forget_instance(instance)
        room = Room(
            self.node,
            instance,
            world,
            members,
            verify_session=self._verify_session,
            is_banned=self.is_banned,
            out=self.out,
            now=now,
            is_shunned=self.guard.is_shunned,
            rtc=self.rtc,
            silenced=self.silenced,
            mesh_fail_for=self.mesh_fail_for,
        )
        self.rooms[instance] = room
        room.announce(now)
        if self.next_tick is None:
            self.next_tick = now + self.tick_period
        return room

    def handle_events(self, room: Room, events: list[SeatEvent], now: float) -> None:
        """React to the seat table's events for `room`."""
        for event in events:
            if isinstance(event, SeatConfirmed):
                v = room.local.get(event.visitor)
                if v is not None and not v.seated:
                    room.seat_confirmed(v, event.slot, now)
            elif isinstance(event, SeatLost):
                v = room.local.pop(event.visitor, None)
                if v is None or self.visitors.get(v.id) is not v:
                    continue
                v.instance, v.seated = None, False
                if not v.retried and v.world is not None:
                    v.retried = True
                    place_visitor(self, v, now, exclude=room.instance)
                else:
                    self.out.to_client(v.id, Denied(DENIED_FILLED))
            elif isinstance(event, SeatExpired):
                self.seats_expired += 1
        self.maybe_leave(room, now)

    def local_visitors(self) -> int:
        """Visitors seated here or being seated: what the per-node limit counts."""
        return sum(1 for v in self.visitors.values() if v.instance is not None)

    def client_frame(self, visitor: str, frame: Frame, now: float) -> None:
        """A frame from a signed-in client; a refused one is answered with `Error`."""
        v = self.visitors.get(visitor)
        if v is None or not v.connected:
            self.out.refused["unknown_visitor"] += 1
            return
        if v.expires_at <= now:
            self.close_visitor(v, CLOSE_EXPIRED, now)
            return
        room = self.rooms.get(v.instance) if v.instance is not None else None
        if room is not None and self.is_banned(room.world.world_id, v.address):
            self.close_visitor(v, DENIED_BANNED, now)
            return
        if isinstance(frame, Leave):
            self.leave_room(v, now)
            return
        try:
            hub_routing.client_frame(v, room, frame, now)
        except SessionError as exc:
            self.refuse_client(v, exc, now)

    def refuse_client(self, v: Visitor, exc: SessionError, now: float) -> None:
        """Answer a refused frame with `Error`, a few a second (the rest are only counted);
        a client that keeps sending refused frames is closed."""
        self.out.refused[exc.code] += 1
        if not v.refusal_rate.allow(now):
            self.close_visitor(v, CLOSE_REFUSED, now)
        elif v.error_rate.allow(now):
            self.out.to_client(v.id, Error(exc.code, str(exc)))
        else:
            self.out.refused["errors_suppressed"] += 1

    def silence(self, visitor: str, on: bool, now: float) -> None:
        """The operator silences `visitor` (or lifts it) in this node's mesh plans only."""
        (self.silenced.add if on else self.silenced.discard)(visitor)

    def client_gone(self, visitor: str, now: float) -> None:
        """The connection dropped without Leave: a seat is kept for the reconnect window."""
        v = self.visitors.get(visitor)
        if v is None:
            return
        v.connected = False
        if v.instance is None:
            del self.visitors[visitor]
        elif not v.seated:
            self.leave_room(v, now)
            del self.visitors[visitor]
        elif (room := self.rooms.get(v.instance)) is not None:
            room.presence.heartbeat(v.id, now)  # the reconnect window starts now

    def leave_room(self, v: Visitor, now: float) -> None:
        room = self.rooms.get(v.instance) if v.instance is not None else None
        if room is None:
            v.instance, v.seated = None, False
            return
        self.handle_events(room, room.remove_local(v.id, now), now)

    def close_visitor(self, v: Visitor, reason: str, now: float) -> None:
        if v.connected:
            self.out.closes.append((v.id, reason))
        self.leave_room(v, now)
        self.visitors.pop(v.id, None)

    def maybe_leave(self, room: Room, now: float) -> None:
        """No visitor of ours left in `room`: we are no member any more (nothing to hand on)."""
        if room.closed_at is not None or room.has_locals():
            return
        if self.rooms.get(room.instance) is not room:
            return
        room.seats.leave(None)
        room.closed_at = now
        room.flush(now)
        del self.rooms[room.instance]
        self.closed[room.instance] = room
        while len(self.closed) > MAX_CLOSED:
            self.closed.popitem(last=False)
        self.directory.offer(self.publisher.tombstone(room, self.publisher.own_time(now)), now)

    # --- member nodes ---------------------------------------------------------------------------

    def node_frame(self, peer: str, frame: Frame, now: float) -> None:
        """A frame from member node `peer` (a VisitorIn goes through `remote_visitor`)."""
        hub_routing.node_frame(self, peer, frame, now)

    def remote_visitor(self, peer: str, frame: VisitorIn, address: str, session_key: bytes,
                       expires_at: float, now: float) -> None:  # fmt: skip
        """A VisitorIn whose entry proof the edge verified (address, key and expiry from it)."""
        hub_routing.remote_visitor(self, peer, frame, address, session_key, expires_at, now)

    def wants_visitor(self, peer: str, frame: VisitorIn, now: float) -> bool:
        """Whether `remote_visitor` would take `frame` (a room of ours, `peer` a member, room
        left, within `peer`'s budget): the edge asks before it verifies the entry proof."""
        return hub_routing.wants_visitor(self, peer, frame, now)

    def shunned(self, now: float) -> set[str]:
        """Member nodes we ignore for now (they kept flooding): the edge need not send to them
        (`node_frames` holds nothing for them) and may drop their streams."""
        return self.guard.shunned(now)

    def react_to_shuns(self, now: float) -> None:
        while self.guard.new_shuns:
            hub_life.shun(self, self.guard.new_shuns.pop(0), now)

    def node_lost(self, peer: str, now: float) -> None:
        """The edge's failure detector (or a dropped stream that did not come back)."""
        for room in list(self.rooms.values()):
            self.handle_events(room, room.lose_member(peer, now), now)

    def directory_message(self, data: bytes, author: str, now: float) -> None:
        """A directory message heard on gossip; raises `FrameInvalid` (nothing changes)."""
        message = decode_directory(data)
        if message.load.node != author:
            raise FrameInvalid(f"directory message from {author} speaks for {message.load.node}")
        if author == self.node:
            return  # gossip hands our own messages back
        self.directory.offer_load(message.load, now)
        for summary in message.summaries:
            self.directory.offer(summary, now)

    def set_rtt(self, peer: str, rtt_s: float) -> None:
        if not math.isfinite(rtt_s) or rtt_s < 0:
            raise ValueError(f"rtt must be a finite number >= 0, not {rtt_s}")
        self.rtt.pop(peer, None)
        self.rtt[peer] = rtt_s
        while len(self.rtt) > MAX_RTT_PEERS:
            del self.rtt[next(iter(self.rtt))]

    def close(self, now: float) -> None:
        """The node stops: each instance goes to its nearest other member, visitors are told."""
        hub_life.stop(self, now)

    # --- outputs ----------------------------------------------------------------------------

    def client_frames(self) -> list[tuple[str, Frame]]:
        out, self.out.client = self.out.client, []
        return out

    def client_closes(self) -> list[tuple[str, str]]:
        out, self.out.closes = self.out.closes, []
        return out

    def node_frames(self) -> list[tuple[str, Frame]]:
        out, self.out.node = self.out.node, []
        shunned = self.guard.shunned(self.guard.latest)
        return [(peer, frame) for peer, frame in out if peer not in shunned] if shunned else out

    def _summaries(self, now: float) -> list[InstanceSummary]:
        return self.publisher.summaries(self.rooms.values(), self.closed.values(), now)

    def offer_own(self, world_id: str, now: float) -> None:
        for summary in self._summaries(now):
            if summary.world_id == world_id:
                self.directory.offer(summary, now)

    def directory_to_publish(self, now: float) -> bytes | None:
        """Our load and instances, every 2 s and soon after a change; None when not due."""
        limit = 0 if self.stopping else self.max_visitors
        load = NodeLoad(self.node, self.local_visitors(), limit, now, self.gateway_url)
        data = self.publisher.publish(load, self._summaries(now), now)
        if data is not None:
            self.directory.expire(now)
        return data

    # --- time -----------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        # Never published yet: due at once (next_due is -inf, which the filter below drops,
        # and a node without instances would then never publish its load and gateway).
        times = [max(self.publisher.next_due(), 0.0)]
        if self.next_tick is not None:
            times.append(self.next_tick)
        for room in [*self.rooms.values(), *self.closed.values()]:
            if (t := room.seats.get_timer()) is not None:
                times.append(t)
        times += [v.expires_at for v in self.visitors.values()]
        finite = [t for t in times if math.isfinite(t)]
        return min(finite, default=None)

    def handle_timer(self, now: float) -> None:
        self.guard.see(now)
        hub_life.on_timer(self, now)

    def statistics(self) -> dict[str, object]:
        remote = sum(len(r.remote) for r in self.rooms.values())
        return {
            "instances": len(self.rooms),
            "instances_left": len(self.closed),
            "visitors_local": sum(1 for v in self.visitors.values() if v.seated),
            "visitors_signed_in": len(self.visitors),
            "visitors_remote": remote,
            "members": sum(len(r.heard) for r in self.rooms.values()),
            "members_lost": self.out.members_lost,
            "seats_expired": self.seats_expired,
            "refused": dict(self.out.refused),
            "client_transforms": {v.id: v.transforms for v in self.visitors.values() if v.seated},
            "silenced": sorted(self.silenced),
            "peers": self.guard.statistics(),
        }
