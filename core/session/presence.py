"""Presence of visitors in an instance, their avatar transforms, and what each viewer receives.

`PresenceTable` holds who is here (join / leave / heartbeat; a visitor silent for
``expire_after`` seconds, at most 30, is dropped) and their latest `Transform`: position inside
the world box, a unit rotation quaternion ``(x, y, z, w)`` and an animation state name. A
transform is refused (`TransformRejected`, nothing changes) when a number is not finite, the
position is outside the box, the quaternion is not unit length (±1 %), the animation name is not
1..32 of ``[a-z0-9_-]``, the avatar would have moved faster than ``max_speed`` since its last
accepted transform (a teleport; the node's own `teleport` skips that check), or the visitor
sends more than ``max_rate`` per second (a token bucket with a burst of `RATE_BURST`, a second
of moving at 10 Hz: frames an honest client sent evenly may arrive bunched after a stall).

`ViewerStream` makes one viewer's frames, tiered like Decentraland's Pulse: visitors within
``near`` metres are sent every tick, within ``mid`` every 2nd, within ``far`` every 4th, and
beyond that only their presence (no transform). Each frame is a delta against the last snapshot
the viewer acknowledged: only entries whose revision changed, plus the ones that left. When the
viewer has acknowledged nothing we still remember, or asks for it (`resync`, e.g. after a gap),
the next frame is a full snapshot (``base`` is None). `ViewerState` is the receiving half.
"""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Final

from fluxnode.core.errors import TransformRejected
from fluxnode.core.session.geometry import DEFAULT_BOX, WorldBox
from fluxnode.core.session.ratelimit import TokenBucket

EXPIRE_AFTER: Final = 30.0
MAX_RATE: Final = 10.0  # transforms per second per visitor
RATE_BURST: Final = 10
MAX_SPEED: Final = 50.0  # m/s: faster than any avatar runs or flies, slower than a teleport
NEAR, MID, FAR = 20.0, 50.0, 100.0
HISTORY: Final = 32  # snapshots remembered per viewer (3 s at 10 Hz)
MAX_LEFT_LOG: Final = 1024  # departures a table remembers for viewers' incremental frames
_ANIM = re.compile(r"[a-z0-9_-]{1,32}")

Vec = tuple[float, float, float]
Quat = tuple[float, float, float, float]


@dataclass(frozen=True)
class Transform:
    position: Vec
    rotation: Quat = (0.0, 0.0, 0.0, 1.0)
    anim: str = "idle"


def transform_problem(t: Transform, box: WorldBox) -> str | None:
    """Why `t` is out of bounds (speed and rate aside), or None."""
    if problem := box.problem(t.position):
        return problem
    rot = t.rotation
    if not isinstance(rot, tuple) or len(rot) != 4 or any(type(c) not in (int, float) for c in rot):
        return "rotation must be 4 numbers (a quaternion)"
    if not all(math.isfinite(c) for c in rot):
        return "rotation must be finite"
    if abs(math.sqrt(sum(c * c for c in rot)) - 1.0) > 0.01:
        return "rotation must be a unit quaternion"
    if not isinstance(t.anim, str) or not _ANIM.fullmatch(t.anim):
        return "animation state must be 1..32 of [a-z0-9_-]"
    return None


@dataclass
class Presence:
    visitor: str
    transform: Transform
    info: Mapping[str, object]  # avatar id, wearables: checked by the edge, carried as is
    last_seen: float
    moved_at: float
    rev: int
    bucket: TokenBucket


class PresenceTable:
    """Who is in the instance and where (sans-IO, `now` in seconds)."""

    def __init__(
        self,
        box: WorldBox = DEFAULT_BOX,
        *,
        expire_after: float = EXPIRE_AFTER,
        max_rate: float = MAX_RATE,
        max_speed: float = MAX_SPEED,
    ) -> None:
        if not 0 < expire_after <= 30.0:
            raise ValueError("expire_after must be in (0, 30] seconds")
        self.box = box
        self.expire_after = expire_after
        self.max_rate = max_rate
        self.max_speed = max_speed
        self._rev = 0
        self._visitors: dict[str, Presence] = {}
        # Change log for viewers' incremental frames: visitors in the order of their latest
        # revision (moved to the end on each change), and who left at which revision (bounded:
        # below `_left_floor` a viewer cannot know who left, so it recomputes in full).
        self._by_rev: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._left: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._left_floor = 0

    def __contains__(self, visitor: str) -> bool:
        return visitor in self._visitors

    def __len__(self) -> int:
        return len(self._visitors)

    def get(self, visitor: str) -> Presence | None:
        return self._visitors.get(visitor)

    def entries(self) -> list[Presence]:
        return list(self._visitors.values())

    @property
    def rev(self) -> int:
        """The newest revision: any join, move or leave raises it."""
        return self._rev

    def _next_rev(self) -> int:
        self._rev += 1
        return self._rev

    def _changed(self, p: Presence) -> None:
        self._by_rev[p.visitor] = p.rev
        self._by_rev.move_to_end(p.visitor)
        self._left.pop(p.visitor, None)

    def _gone(self, visitor: str) -> None:
        self._by_rev.pop(visitor, None)
        self._left[visitor] = self._next_rev()
        if len(self._left) > MAX_LEFT_LOG:
            _, rev = self._left.popitem(last=False)
            self._left_floor = rev

    def changed_since(self, rev: int) -> list[Presence]:
        """Visitors joined or moved after revision `rev`, newest first."""
        out = []
        for visitor, changed in reversed(self._by_rev.items()):
            if changed <= rev:
                break
            out.append(self._visitors[visitor])
        return out

    def left_since(self, rev: int) -> list[str] | None:
        """Visitors gone after revision `rev` (and not back), or None if that is no longer
        known (the log is bounded)."""
        if rev < self._left_floor:
            return None
        out = []
        for visitor, left in reversed(self._left.items()):
            if left <= rev:
                break
            out.append(visitor)
        return out

    def join(
        self, visitor: str, spawn: Transform, now: float, info: Mapping[str, object] | None = None
    ) -> None:
        if problem := transform_problem(spawn, self.box):
            raise TransformRejected(f"spawn {problem}")
        p = self._visitors[visitor] = Presence(
            visitor, spawn, dict(info or {}), now, now, self._next_rev(),
            TokenBucket(self.max_rate, RATE_BURST, now),
        )  # fmt: skip
        self._changed(p)

    def leave(self, visitor: str) -> bool:
        if self._visitors.pop(visitor, None) is None:
            return False
        self._gone(visitor)
        return True

    def heartbeat(self, visitor: str, now: float) -> None:
        if (p := self._visitors.get(visitor)) is not None:
            p.last_seen = max(p.last_seen, now)

    def receive_transform(self, visitor: str, t: Transform, now: float) -> None:
        """Accept `visitor`'s new transform or raise `TransformRejected` (nothing changes)."""
        p = self._visitors.get(visitor)
        if p is None:
            raise TransformRejected(f"visitor {visitor} is not in this instance")
        if problem := transform_problem(t, self.box):
            raise TransformRejected(problem)
        dt = max(now - p.moved_at, 1.0 / self.max_rate)
        if math.dist(t.position, p.transform.position) > self.max_speed * dt:
            raise TransformRejected(f"moved faster than {self.max_speed:g} m/s")
        if not p.bucket.allow(now):
            raise TransformRejected(f"more than {self.max_rate:g} transforms per second")
        p.transform, p.moved_at, p.rev = t, now, self._next_rev()
        p.last_seen = max(p.last_seen, now)
        self._changed(p)

    def teleport(self, visitor: str, t: Transform, now: float) -> None:
        """Move a visitor on the node's own authority (respawn, portal): no speed check."""
        p = self._visitors.get(visitor)
        if p is None:
            raise TransformRejected(f"visitor {visitor} is not in this instance")
        if problem := transform_problem(t, self.box):
            raise TransformRejected(problem)
        p.transform, p.moved_at, p.rev = t, now, self._next_rev()
        self._changed(p)

    def expire(self, now: float) -> list[str]:
        """Drop visitors silent for `expire_after` seconds; return who left."""
        gone = [v for v, p in self._visitors.items() if now - p.last_seen >= self.expire_after]
        for visitor in gone:
            del self._visitors[visitor]
            self._gone(visitor)
        return gone

    def get_timer(self) -> float | None:
        return min((p.last_seen + self.expire_after for p in self._visitors.values()), default=None)


def tier(distance: float, near: float = NEAR, mid: float = MID, far: float = FAR) -> int:
    """Send every n-th tick: 1 near, 2 mid, 4 far; 0 means beyond range (presence only)."""
    if distance <= near:
        return 1
    if distance <= mid:
        return 2
    if distance <= far:
        return 4
    return 0


#: One snapshot entry: (revision, transform or None when the visitor is beyond range).
Entry = tuple[int, Transform | None]


@dataclass(frozen=True)
class ViewerFrame:
    seq: int
    base: int | None  # None: a full snapshot, replacing whatever the viewer had
    changed: dict[str, Transform | None]  # None: present, but beyond range
    removed: tuple[str, ...]
    info: dict[str, Mapping[str, object]]  # for visitors new to the viewer


@dataclass(frozen=True)
class _Built:
    """How a snapshot was made: what an incremental frame on top of it needs to know."""

    rev: int  # the table's revision then
    here: Vec  # the viewer's position then (tiers depend on it)
    pending: frozenset[str]  # visitors whose entry held back a newer revision


class ViewerStream:
    """The frames one viewer receives (the viewer itself is never in them).

    A frame is the delta between this tick's snapshot (an entry per visitor) and the last one
    the viewer acknowledged. Rebuilding the whole snapshot for every viewer every tick costs
    O(visitors) per viewer, O(visitors²) per instance and tick, most of it on visitors who did
    not move. So when the viewer itself stands where it stood when its base snapshot was made,
    the new snapshot is the base with only the entries that can differ recomputed: visitors
    who joined or moved since (the table's change log), those whose entry held back a newer
    revision (a tier not due then) or was kept for a skipped visitor, and those who left.
    Anything else is the same as the base by construction, so both ways give the same frames
    (a property test checks it).
    """

    def __init__(self, viewer: str, history: int = HISTORY, *, incremental: bool = True) -> None:
        self.viewer = viewer
        self._seq = 0
        self._acked: int | None = None
        # Snapshots sent and not yet superseded by an ack, each with how it was made.
        self._sent: collections.OrderedDict[int, tuple[dict[str, Entry], _Built]] = (
            collections.OrderedDict()
        )
        self._history = history
        self._incremental = incremental

    def ack(self, seq: int) -> None:
        if seq in self._sent and (self._acked is None or seq > self._acked):
            self._acked = seq
            for old in [s for s in self._sent if s < seq]:
                del self._sent[old]

    def resync(self) -> None:
        """The viewer saw a gap or reconnected: the next frame is a full snapshot."""
        self._acked = None
        self._sent.clear()

    def frame(self, table: PresenceTable, tick: int,
              skip: Collection[str] = ()) -> ViewerFrame | None:  # fmt: skip
        """This tick's frame, or None when nothing changed for this viewer. Visitors in `skip`
        reach the viewer another way (a direct data channel): they stay present (news of them,
        their info and their leaving still come) but their moves are left out."""
        me = table.get(self.viewer)
        here = me.transform.position if me is not None else (0.0, 0.0, 0.0)
        base_seq = self._acked if self._acked in self._sent else None
        base, built = self._sent[base_seq] if base_seq is not None else ({}, None)
        changed: dict[str, Transform | None] = {}
        info: dict[str, Mapping[str, object]] = {}
        pending: set[str] = set()
        left = table.left_since(built.rev) if built is not None and built.here == here else None
        if built is not None and left is not None and self._incremental:
            snapshot = dict(base)
            candidates = table.changed_since(built.rev)
            candidates += [p for v in built.pending if (p := table.get(v)) is not None]
            for p in candidates:
                if p.visitor != self.viewer:
                    self._entry(p, here, tick, skip, base, snapshot, changed, info, pending)
            removed = tuple(sorted(v for v in left if v in base))
            for visitor in removed:
                del snapshot[visitor]
        else:
            snapshot = {}
            for p in table.entries():
                if p.visitor != self.viewer:
                    self._entry(p, here, tick, skip, base, snapshot, changed, info, pending)
            removed = tuple(sorted(set(base) - set(snapshot)))
        if base_seq is not None and not changed and not removed:
            return None
        self._seq += 1
        self._sent[self._seq] = (snapshot, _Built(table.rev, here, frozenset(pending)))
        while len(self._sent) > self._history:
            self._sent.popitem(last=False)
        return ViewerFrame(self._seq, base_seq, changed, removed, info)

    @staticmethod
    def _entry(
        p: Presence,
        here: Vec,
        tick: int,
        skip: Collection[str],
        base: dict[str, Entry],
        snapshot: dict[str, Entry],
        changed: dict[str, Transform | None],
        info: dict[str, Mapping[str, object]],
        pending: set[str],
    ) -> None:
        every = tier(math.dist(here, p.transform.position))
        old = base.get(p.visitor)
        kept = False
        if old is not None and p.visitor in skip:
            entry: Entry = old
            kept = True
        elif every == 0:
            entry = (old[0], None) if old and old[1] is None else (p.rev, None)
        elif old is None or old[1] is None or tick % every == 0:
            entry = (p.rev, p.transform)
        else:
            entry = old  # not this viewer's tick for that tier: it keeps what it has
        snapshot[p.visitor] = entry
        # Kept for a skipped visitor, the entry need not be what the tiers give: once the
        # visitor is no longer skipped (skip sets change without the table changing) it must
        # be looked at again, like one that holds back a newer revision.
        if kept or entry[0] != p.rev:
            pending.add(p.visitor)
        if old is None:
            info[p.visitor] = p.info
        if old != entry:
            changed[p.visitor] = entry[1]


@dataclass
class ViewerState:
    """The viewer's side: applies frames, says what to acknowledge, notices gaps."""

    states: dict[int, dict[str, Transform | None]] = field(default_factory=dict)
    latest: int | None = None

    def apply(self, frame: ViewerFrame) -> bool:
        """Apply `frame`; False when its base is unknown here (ask the sender to `resync`)."""
        if frame.base is None:
            state: dict[str, Transform | None] = {}
        elif frame.base in self.states:
            state = dict(self.states[frame.base])
        else:
            return False
        for visitor in frame.removed:
            state.pop(visitor, None)
        state.update(frame.changed)
        self.states[frame.seq] = state
        if self.latest is None or frame.seq > self.latest:
            self.latest = frame.seq
        for old in [s for s in self.states if s < frame.seq - HISTORY]:
            del self.states[old]
        return True

    def current(self) -> dict[str, Transform | None]:
        return dict(self.states[self.latest]) if self.latest is not None else {}
