"""What a hub tells the directory topic about itself, and how it reads what others say.

Each node publishes its load (visitors against its limit, gateway URL) and a summary per
instance it is a member of, every `PUBLISH_EVERY` seconds and soon after a change (at most one
per `PUBLISH_GAP`, so a burst of joins is one message). An instance this node left is published
with count 0 for `SUMMARY_TTL` seconds: every directory that hears it drops the instance at once
instead of offering a stale seat count for a minute. Our own summaries also go into our own
directory so placement sees our instances with the same rules as everyone else's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from fluxnode.core.session.directory_wire import MAX_SUMMARIES, DirectoryMessage, encode_directory
from fluxnode.core.session.hub_guard import PeerGuard
from fluxnode.core.session.instances import (
    SUMMARY_TTL,
    Directory,
    InstanceSummary,
    InstanceView,
    NodeLoad,
    summarize,
)

if TYPE_CHECKING:
    from fluxnode.core.session.room import Room

PUBLISH_EVERY: Final = 2.0
PUBLISH_GAP: Final = 0.25


class HubDirectory(Directory):
    """The directory as a hub's placement sees it: a node is a redirect target only when its
    fresh load says it accepts visitors and names a gateway URL to send them to. A node the
    guard shuns does not exist for placement: what it says is dropped, it is no redirect
    target and no member of any instance we might join (an instance only it holds is not
    offered)."""

    def __init__(self, guard: PeerGuard | None = None) -> None:
        super().__init__()
        self.guard = guard if guard is not None else PeerGuard(10.0)

    def forget(self, node: str) -> None:
        """Drop everything `node` said (it was just shunned)."""
        self._loads.pop(node, None)
        for key in [k for k in self._summaries if k[2] == node]:
            del self._summaries[key]

    def offer(self, summary: InstanceSummary, now: float) -> bool:
        if self.guard.is_shunned(summary.origin, now):
            return False
        return super().offer(summary, now)

    def offer_load(self, load: NodeLoad, now: float) -> bool:
        if self.guard.is_shunned(load.node, now):
            return False
        return super().offer_load(load, now)

    def accepting(self, node: str, now: float) -> bool:
        load = self.load(node, now)
        return load is not None and load.gateway is not None and load.accepting

    def instances(self, world_id: str, now: float) -> list[InstanceView]:
        views = []
        for view in super().instances(world_id, now):
            members = frozenset(m for m in view.members if not self.guard.is_shunned(m, now))
            if members:
                views.append(dataclasses.replace(view, members=members))
        return views


class Publisher:
    """When to publish, and what."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.last = -math.inf
        self._published: object = None
        self._clock = 0.0

    def changed(self) -> None:
        """Publish at the next chance (a stopping node's empty load, say)."""
        self._published = None

    def own_time(self, now: float) -> float:
        # Strictly increasing, so a directory takes each of our summaries as newer than the last.
        self._clock = max(now, self._clock + 1e-6)
        return self._clock

    def tombstone(self, room: Room, at: float) -> InstanceSummary:
        return InstanceSummary(room.world.world_id, room.instance, (), 0,
                               room.world.capacity, at, self.node)  # fmt: skip

    def summaries(
        self, rooms: Iterable[Room], left: Iterable[Room], now: float
    ) -> list[InstanceSummary]:
        at = self.own_time(now)
        live = [summarize(r.seats, r.world.world_id, at) for r in rooms]
        dead = [
            self.tombstone(r, at)
            for r in left
            if r.closed_at is not None and r.closed_at + SUMMARY_TTL > now
        ]
        return (live + dead)[:MAX_SUMMARIES]

    def next_due(self) -> float:
        # Never published: due at once (finite, so it is a timer), visitors or not — members
        # check the visitors we relay against the gateway this load names.
        return self.last + PUBLISH_EVERY if math.isfinite(self.last) else 0.0

    def publish(self, load: NodeLoad, summaries: list[InstanceSummary], now: float) -> bytes | None:
        """The message to gossip now, or None when it is not due."""
        state = (load.visitors, load.max_visitors,
                 tuple((s.instance_id, s.count, s.members) for s in summaries))  # fmt: skip
        since = now - self.last
        if since < PUBLISH_EVERY and (state == self._published or since < PUBLISH_GAP):
            return None
        self.last, self._published = now, state
        return encode_directory(DirectoryMessage(load, tuple(summaries)))
