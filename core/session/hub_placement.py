"""Placing a visitor: which instance to seat it in, or which node to send it to.

`fluxnode.core.session.instances.place` decides from the gossiped directory (our own instances
included); this module turns its answer into a room and a seat claim, or a `RedirectTo` with
the other node's gateway URL, or a `Denied`. A placement that lands on an instance whose seat
table already knows it is full (a stale directory, or the retry after a lost seat) opens a new
instance instead: an instance id derived from this node, so it never collides with another's.
A node holds at most `MAX_ROOMS` instances; a visitor who would need one more is denied.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

from fluxnode.core.errors import SessionError
from fluxnode.core.session.frames import Denied, RedirectTo
from fluxnode.core.session.instances import JoinInstance, NoRoom, derive_instance_id, place
from fluxnode.core.session.room import MAX_MEMBERS
from fluxnode.core.session.visitors import Visitor, WorldInfo

if TYPE_CHECKING:
    from fluxnode.core.session.hub import SessionHub

MAX_ROOMS: Final = 1000
DENIED_ROOMS: Final = "denied: this node holds too many instances; try again later"


def join_world(hub: SessionHub, v: Visitor, world: WorldInfo, now: float) -> None:
    """`v` (signed in, not banned) asks for `world`: its kept seat, a handed one, or a new one."""
    room = hub.rooms.get(v.instance) if v.instance is not None else None
    if room is not None:
        if not v.seated:
            hub.refuse_client(v, SessionError("a join is in progress"), now)
            return
        if room.world.world_id == world.world_id:  # back within the reconnect window
            room.presence.heartbeat(v.id, now)
            room.send_joined(v, room.slot_of(v.id) or 0)
            return
    hub.leave_room(v, now)  # another world (or a room already gone): leave it first
    v.world, v.retried = world, False
    for room in [r for r in hub.rooms.values() if r.world.world_id == world.world_id]:
        slot = room.seats.resume(v.id)  # a seat a leaving member handed to us
        if slot is not None:
            room.seat_confirmed(v, slot, now)
            hub.handle_events(room, room.flush(now), now)
            return
    place_visitor(hub, v, now)


def place_visitor(hub: SessionHub, v: Visitor, now: float, exclude: str | None = None) -> None:
    """Place `v` (its world is set) and start its seat claim, or answer it at once."""
    world = v.world
    assert world is not None
    hub.offer_own(world.world_id, now)
    placement = place(
        world.world_id,
        hub.directory,
        node=hub.node,
        now=now,
        rtt=hub.rtt,
        local_visitors=hub.local_visitors(),
        max_visitors=hub.max_visitors,
        next_instance=hub.next_instance,
        hosts=world.hosts,
    )
    if isinstance(placement, NoRoom):
        hub.out.to_client(v.id, Denied(f"denied: {placement.reason}"))
        return
    if not isinstance(placement, JoinInstance):
        load = hub.directory.load(placement.node, now)
        urls = (load.gateway,) if load is not None and load.gateway is not None else ()
        hub.out.to_client(v.id, RedirectTo(placement.node, urls, placement.instance_id))
        return
    room = hub.rooms.get(placement.instance_id)
    if room is None and len(hub.rooms) >= MAX_ROOMS:
        hub.out.refused["too_many_rooms"] += 1
        hub.out.to_client(v.id, Denied(DENIED_ROOMS))
        return
    if (
        placement.new
        or placement.instance_id == exclude
        or (room is not None and not room.seats.has_room())
    ):
        room = hub.open_room(world, _fresh_instance(hub, world.world_id), {hub.node}, now)
    elif room is None:
        view = next(
            (i for i in hub.directory.instances(world.world_id, now)
             if i.instance_id == placement.instance_id), None,
        )  # fmt: skip
        others = (m for m in (view.members if view is not None else ()) if m != hub.node)
        near = sorted(others, key=lambda m: (hub.rtt.get(m, math.inf), m))[: MAX_MEMBERS - 1]
        room = hub.open_room(world, placement.instance_id, {*near, hub.node}, now)
    hub.handle_events(room, room.claim(v, now), now)


def _fresh_instance(hub: SessionHub, world_id: str) -> str:
    while True:
        instance = derive_instance_id(world_id, hub.node, hub.next_instance)
        hub.next_instance += 1
        if instance not in hub.rooms and instance not in hub.closed:
            return instance
