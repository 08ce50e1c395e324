"""Instances of a world: capacity, the gossiped directory of summaries, and placement.

An instance is ``(world_id, instance_id)`` with capacity ``min(maxPlayers, 100)``. Its member
nodes are the nodes with visitors in it; each member publishes an `InstanceSummary` on the
directory topic every few seconds and on change. The `Directory` keeps the newest summary per
(instance, publishing node) and forgets those older than its ``ttl``, so an instance whose
members all went quiet disappears, and one whose count fell to 0 closes at once.

Placement (`place`) for a visitor arriving at this node:

1. candidates are the world's instances with room (count < capacity);
2. ordered by the nearest member node first (measured RTT, this node counts as 0 ms, a node with
   no measurement as infinitely far), then least loaded (lowest count), then instance id so
   every node orders them alike;
3. if this node is under its per-node visitor limit: join the first candidate, or else open a
   new instance whose id `derive_instance_id` computes from (world, this node, a counter) —
   two nodes opening at once get two distinct instances, never one oversold one;
4. if this node is at its limit: redirect to the nearest other node that accepts visitors, a
   member of a candidate first (then the visitor lands in that instance), else any other node
   hosting the world; `NoRoom` when there is none. Nodes whose load we have not heard count as
   accepting; the client follows at most one redirect, so a stale load costs one refusal.

Seats themselves are taken with the rule in `fluxnode.core.session.seats`; the directory only
guides where to try, so a stale summary can cost a retry but never an oversold seat.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

from fluxnode.core.errors import FrameInvalid
from fluxnode.core.session.seats import SeatTable

MAX_CAPACITY: Final = 100
SUMMARY_TTL: Final = 60.0  # seconds without a refresh before a summary is forgotten
MAX_MEMBERS: Final = 100  # an instance holds at most 100 visitors, so at most 100 nodes
MAX_ID_CHARS: Final = 128


def capacity_for(max_players: int) -> int:
    """Seats in one instance of a world whose manifest says `max_players`."""
    if max_players < 1:
        raise ValueError(f"maxPlayers must be at least 1, not {max_players}")
    return min(max_players, MAX_CAPACITY)


def derive_instance_id(world_id: str, creator: str, n: int) -> str:
    """The id of the `n`-th instance `creator` opens for `world_id`: 16 hex digits of SHA-256.

    Derived from the creator so concurrent creators never collide, and deterministic so a
    restarted node (same counter) or a test can predict it."""
    digest = hashlib.sha256(f"{world_id}\x00{creator}\x00{n}".encode()).hexdigest()
    return digest[:16]


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_CHARS:
        raise FrameInvalid(f"{what} must be a string of 1..{MAX_ID_CHARS} characters")
    return value


def _check_count(value: object, what: str, high: int) -> int:
    if type(value) is not int or not 0 <= value <= high:
        raise FrameInvalid(f"{what} must be an integer in 0..{high}")
    return value


@dataclass(frozen=True)
class InstanceSummary:
    """What one member node says about an instance (gossiped on the directory topic)."""

    world_id: str
    instance_id: str
    members: tuple[str, ...]
    count: int
    capacity: int
    updated_at: float
    origin: str

    @property
    def has_room(self) -> bool:
        return self.count < self.capacity

    def to_wire(self) -> list[object]:
        return [
            self.world_id,
            self.instance_id,
            list(self.members),
            self.count,
            self.capacity,
            self.updated_at,
            self.origin,
        ]

    @classmethod
    def from_wire(cls, obj: object) -> InstanceSummary:
        """Validate a decoded summary; raise `FrameInvalid` naming the bad field."""
        if not isinstance(obj, list) or len(obj) != 7:
            raise FrameInvalid("instance summary must be a list of 7 fields")
        world, instance, members, count, capacity, updated, origin = obj
        if not isinstance(members, list) or len(members) > MAX_MEMBERS:
            raise FrameInvalid(f"members must be a list of at most {MAX_MEMBERS} node ids")
        ids = tuple(sorted({_check_id(m, "member") for m in members}))
        cap = _check_count(capacity, "capacity", MAX_CAPACITY)
        if cap < 1:
            raise FrameInvalid("capacity must be at least 1")
        if type(updated) not in (int, float) or not math.isfinite(updated):
            raise FrameInvalid("updated_at must be a finite number")
        assert isinstance(updated, int | float)
        return cls(
            _check_id(world, "world_id"),
            _check_id(instance, "instance_id"),
            ids,
            _check_count(count, "count", cap),
            cap,
            float(updated),
            _check_id(origin, "origin"),
        )


@dataclass(frozen=True)
class NodeLoad:
    """A node's visitor count against its operator's limit (gossiped with its summaries)."""

    node: str
    visitors: int
    max_visitors: int
    updated_at: float
    gateway: str | None = None  # where its visitors connect; None: it hosts no visitors

    @property
    def accepting(self) -> bool:
        return self.visitors < self.max_visitors


@dataclass(frozen=True)
class InstanceView:
    """The directory's merged view of one instance: union of members, highest count seen."""

    world_id: str
    instance_id: str
    members: frozenset[str]
    count: int
    capacity: int
    updated_at: float

    @property
    def has_room(self) -> bool:
        return self.count < self.capacity


class Directory:
    """Newest summary per (world, instance, publishing node), forgotten after `ttl` seconds."""

    def __init__(self, ttl: float = SUMMARY_TTL) -> None:
        self.ttl = ttl
        self._summaries: dict[tuple[str, str, str], InstanceSummary] = {}
        self._loads: dict[str, NodeLoad] = {}

    def offer(self, summary: InstanceSummary, now: float) -> bool:
        """Take a summary heard on gossip; False if it is stale or older than what we have."""
        if summary.updated_at + self.ttl <= now:
            return False
        key = (summary.world_id, summary.instance_id, summary.origin)
        held = self._summaries.get(key)
        if held is not None and held.updated_at >= summary.updated_at:
            return False
        self._summaries[key] = summary
        return True

    def offer_load(self, load: NodeLoad, now: float) -> bool:
        held = self._loads.get(load.node)
        if load.updated_at + self.ttl <= now or (held and held.updated_at >= load.updated_at):
            return False
        self._loads[load.node] = load
        return True

    def load(self, node: str, now: float) -> NodeLoad | None:
        """The newest fresh load `node` published, if any."""
        load = self._loads.get(node)
        return load if load is not None and load.updated_at + self.ttl > now else None

    def accepting(self, node: str, now: float) -> bool:
        load = self._loads.get(node)
        return load is None or load.updated_at + self.ttl <= now or load.accepting

    def expire(self, now: float) -> None:
        for key, summary in list(self._summaries.items()):
            if summary.updated_at + self.ttl <= now:
                del self._summaries[key]
        for node, load in list(self._loads.items()):
            if load.updated_at + self.ttl <= now:
                del self._loads[node]

    def instances(self, world_id: str, now: float) -> list[InstanceView]:
        """Open instances of `world_id` (an instance every fresh report calls empty is closed)."""
        merged: dict[str, list[InstanceSummary]] = {}
        for (world, instance, _), summary in self._summaries.items():
            if world == world_id and summary.updated_at + self.ttl > now:
                merged.setdefault(instance, []).append(summary)
        views = []
        for instance, reports in sorted(merged.items()):
            count = max(r.count for r in reports)
            if count == 0:
                continue
            views.append(
                InstanceView(
                    world_id,
                    instance,
                    frozenset(m for r in reports for m in r.members),
                    count,
                    min(r.capacity for r in reports),
                    max(r.updated_at for r in reports),
                )
            )
        return views

    def world_counts(self, now: float) -> dict[str, tuple[int, int]]:
        """(open instances, visitors) of every world with an open instance, in one pass
        (the same merge as `instances`: the highest count any fresh report gives)."""
        merged: dict[tuple[str, str], int] = {}
        for (world, instance, _), summary in self._summaries.items():
            if summary.updated_at + self.ttl > now:
                key = (world, instance)
                merged[key] = max(merged.get(key, 0), summary.count)
        out: dict[str, tuple[int, int]] = {}
        for (world, _), count in merged.items():
            if count > 0:
                n, visitors = out.get(world, (0, 0))
                out[world] = (n + 1, visitors + count)
        return out


def summarize(table: SeatTable, world_id: str, now: float) -> InstanceSummary:
    """The summary this node publishes for an instance it is a member of."""
    return InstanceSummary(
        world_id,
        table.instance,
        tuple(sorted(table.members)),
        min(table.occupied(), table.capacity),
        table.capacity,
        now,
        table.node,
    )


@dataclass(frozen=True)
class JoinInstance:
    instance_id: str
    new: bool


@dataclass(frozen=True)
class Redirect:
    """Send the visitor to `node` (the answer carries its addresses; the edge adds them)."""

    node: str
    instance_id: str | None


@dataclass(frozen=True)
class NoRoom:
    reason: str


Placement: TypeAlias = JoinInstance | Redirect | NoRoom


def place(
    world_id: str,
    directory: Directory,
    *,
    node: str,
    now: float,
    rtt: Mapping[str, float],
    local_visitors: int,
    max_visitors: int,
    next_instance: int,
    hosts: Iterable[str] = (),
) -> Placement:
    """Where a visitor arriving at `node` should go (see the module docstring)."""

    def distance(n: str) -> float:
        return 0.0 if n == node else rtt.get(n, math.inf)

    candidates = sorted(
        (v for v in directory.instances(world_id, now) if v.has_room),
        key=lambda v: (min(map(distance, v.members), default=math.inf), v.count, v.instance_id),
    )
    if local_visitors < max_visitors:
        if candidates:
            return JoinInstance(candidates[0].instance_id, new=False)
        return JoinInstance(derive_instance_id(world_id, node, next_instance), new=True)
    for view in candidates:
        others = sorted(
            (m for m in view.members if m != node and directory.accepting(m, now)),
            key=lambda m: (distance(m), m),
        )
        if others:
            return Redirect(others[0], view.instance_id)
    spare = sorted(
        (h for h in set(hosts) if h != node and directory.accepting(h, now)),
        key=lambda h: (distance(h), h),
    )
    if spare:
        return Redirect(spare[0], None)
    return NoRoom("every node hosting this world is at its visitor limit")
