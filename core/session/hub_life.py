"""The hub's clock work and its stop, kept apart from `hub` so each module stays small.

`on_timer` is the body of `SessionHub.handle_timer`: seat-table deadlines, expired proofs,
claims that may go ahead, silent members and visitors, the tick (one Batch per member, one
viewer frame per viewer, the ops of the tick) and instances we no longer have visitors in.
`stop` is `SessionHub.close`: each instance goes to its nearest other member, visitors are told.
`shun` drops a node the guard just shunned from every room, as if it had crashed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

from fluxnode.core.session import hub_routing

if TYPE_CHECKING:
    from fluxnode.core.session.hub import SessionHub

CLOSE_EXPIRED: Final = "entry proof expired"
CLOSE_SILENT: Final = "silent for 30 s"
CLOSE_STOPPING: Final = "node is stopping"
CLOSED_KEEP: Final = 90.0  # a left instance's table still answers claims (handed seats) this long


def on_timer(hub: SessionHub, now: float) -> None:
    for room in [*hub.rooms.values(), *hub.closed.values()]:
        room.seats.handle_timer(now)
        events = room.flush(now)
        if room.closed_at is None:
            hub.handle_events(room, events, now)
    for v in [v for v in hub.visitors.values() if v.expires_at <= now]:
        hub.close_visitor(v, CLOSE_EXPIRED, now)
    for room in list(hub.rooms.values()):
        hub.handle_events(room, room.release_claims(now), now)
        hub.handle_events(room, room.check_members(now, hub.member_timeout), now)
        for vid in room.expire(now):
            silent = hub.visitors.get(vid)
            hub.handle_events(room, room.remove_local(vid, now), now)
            if silent is not None:
                hub.close_visitor(silent, CLOSE_SILENT, now)
    if hub.next_tick is not None and now >= hub.next_tick:
        for room in hub.rooms.values():
            room.tick(now)
        hub.next_tick += hub.tick_period
        if hub.next_tick <= now:
            hub.next_tick = now + hub.tick_period
    for room in list(hub.rooms.values()):
        hub.maybe_leave(room, now)
    if not hub.rooms:
        hub.next_tick = None
    while hub.closed:
        first = next(iter(hub.closed.values()))
        if first.closed_at is not None and first.closed_at + CLOSED_KEEP > now:
            break
        hub.closed.popitem(last=False)


def stop(hub: SessionHub, now: float) -> None:
    hub.stopping = True
    for room in list(hub.rooms.values()):
        room.send_ops()
        heirs = sorted(room.heard, key=lambda m: (hub.rtt.get(m, math.inf), m))
        for v in room.local.values():
            if v.seated:
                for member in sorted(room.heard):
                    hub.out.to_node(member, hub_routing.visitor_out(room, v.id))
        room.seats.leave(heirs[0] if heirs else None)
        room.closed_at = now
        room.flush(now)
        hub.closed[room.instance] = room
    hub.rooms.clear()
    for v in hub.visitors.values():
        if v.connected:
            hub.out.closes.append((v.id, CLOSE_STOPPING))
    hub.visitors.clear()
    hub.next_tick = None
    hub.publisher.changed()  # publish the empty load at once


def shun(hub: SessionHub, peer: str, now: float) -> None:
    """`peer` keeps flooding: its visitors leave our rooms (our viewers see them go), its seats
    are gone as if it crashed, and the directory forgets what it said."""
    hub.directory.forget(peer)
    for room in list(hub.rooms.values()):
        hub.handle_events(room, room.lose_member(peer, now), now)
    hub.out.node = [(dest, frame) for dest, frame in hub.out.node if dest != peer]
