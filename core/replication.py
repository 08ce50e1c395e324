"""Hosting claims, replication planning and retrieval challenges — sans-IO, time injected.

Every node gossips a small *hosting record* (which world CIDs it pins, how many bytes it has
free). From the records it has seen, each node in `auto` mode decides on its own which worlds to
pin or release so that every world converges to at least R holders, with no coordinator:

- Candidates for a world are the live nodes that hold it or have room for it. They are ranked by
  rendezvous hashing, sha256(peer_id + cid): every node computes the same ranking from the same
  claims, so the same R nodes step forward and nobody else does.
- A node pins a world that has fewer than R verified holders if it ranks among the top R
  candidates; it releases a world that has more than R holders if it ranks below the top R (and
  is not required to keep it by its own policy). Releases wait for a grace period, so a brief
  partition does not cause churn.
- When a world's record moves to a new CID, the old CID is released after the same grace period.

Claims are cheap to make, so they are checked: a challenger walks a random root-to-leaf path of
a claimed world through Bitswap *from that holder only*; every block is verified against its
CID. A holder that cannot serve the path loses its claim (it no longer counts toward R) until it
passes a later challenge.
"""

from __future__ import annotations

import enum
import hashlib
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fluxnode.core.errors import BadRequest

MAX_CLAIMS_PER_RECORD = 2000
MAX_PEERS = 10_000


@dataclass(frozen=True)
class HostingRecord:
    peer_id: str
    #: Root CIDs (text) of the worlds this peer pins.
    cids: frozenset[str]
    free_bytes: int
    issued_at: float
    #: Whether this peer takes part in `auto` replication (only those are candidates).
    auto: bool = False
    #: Claims of others this peer saw fail a challenge: (peer id, cid). Receivers do not take
    #: them on trust (that would let one node knock out honest claims); they challenge those
    #: claims first, so a liar is caught network-wide within a round or two.
    doubts: frozenset[tuple[str, str]] = frozenset()

    def __post_init__(self) -> None:
        if len(self.cids) > MAX_CLAIMS_PER_RECORD:
            raise BadRequest(f"hosting record claims more than {MAX_CLAIMS_PER_RECORD} worlds")
        if len(self.doubts) > MAX_CLAIMS_PER_RECORD:
            raise BadRequest(f"hosting record lists more than {MAX_CLAIMS_PER_RECORD} doubts")
        if self.free_bytes < 0:
            raise BadRequest("free_bytes must be >= 0")


class Policy(enum.Enum):
    EXPLICIT = "explicit"  # only the listed worlds
    FOLLOW = "follow"  # worlds whose owners are followed, plus listed ones
    AUTO = "auto"  # help every world reach R holders, within the quota


@dataclass(frozen=True)
class HostingPolicy:
    mode: Policy = Policy.EXPLICIT
    replication: int = 2
    worlds: frozenset[str] = frozenset()  # world ids always hosted
    follow: frozenset[str] = frozenset()  # owner addresses (lower-case) followed
    grace_s: float = 600.0

    def __post_init__(self) -> None:
        if not 1 <= self.replication <= 64:
            raise BadRequest("replication target must be 1..64")


@dataclass(frozen=True)
class WorldInfo:
    world_id: str
    cid: str
    owner: str
    size: int = 0


class ActionKind(enum.Enum):
    PIN = "pin"
    UNPIN = "unpin"


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    cid: str
    world_id: str
    reason: str


def rank(peer_id: str, cid: str) -> bytes:
    return hashlib.sha256(f"{peer_id}\n{cid}".encode()).digest()


@dataclass
class _Claim:
    record: HostingRecord
    #: CIDs this peer failed a challenge on, with the time it failed.
    failed: dict[str, float] = field(default_factory=dict)
    #: CIDs this peer passed our challenge on (doubts about them no longer take priority).
    passed: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class ClaimState:
    """What the table knows of one peer, as plain data: what a restart must not forget (a
    peer that failed our challenge must not count as a holder again because we restarted)."""

    record: HostingRecord
    failed: tuple[tuple[str, float], ...] = ()
    passed: frozenset[str] = frozenset()


class HostingTable:
    """The claims heard from peers (latest record per peer), with expiry and challenge marks.

    Changes since the last `take_changes()` are tracked so the edge can store only those;
    `restore` puts stored state back at start."""

    def __init__(self, ttl_s: float = 90.0) -> None:
        self.ttl_s = ttl_s
        self._claims: dict[str, _Claim] = {}
        self._changed: set[str] = set()
        self._removed: set[str] = set()

    def _touch(self, peer_id: str) -> None:
        self._changed.add(peer_id)
        self._removed.discard(peer_id)

    def offer(self, record: HostingRecord) -> bool:
        current = self._claims.get(record.peer_id)
        if current is not None and current.record.issued_at >= record.issued_at:
            return False
        if current is None and len(self._claims) >= MAX_PEERS:
            oldest = min(self._claims, key=lambda p: self._claims[p].record.issued_at)
            del self._claims[oldest]
            self._changed.discard(oldest)
            self._removed.add(oldest)
        failed = current.failed if current else {}
        passed = current.passed if current else set()
        self._claims[record.peer_id] = _Claim(record, failed, passed)
        self._touch(record.peer_id)
        return True

    def restore(self, states: Iterable[ClaimState]) -> int:
        """Put stored claims back (at most MAX_PEERS; a newer record already heard wins).
        Returns how many were restored."""
        restored = 0
        for state in states:
            current = self._claims.get(state.record.peer_id)
            if current is not None and current.record.issued_at >= state.record.issued_at:
                continue
            if current is None and len(self._claims) >= MAX_PEERS:
                break
            self._claims[state.record.peer_id] = _Claim(
                state.record, dict(state.failed), set(state.passed)
            )
            restored += 1
        return restored

    def take_changes(self) -> tuple[list[ClaimState], list[str]]:
        """(states of the peers changed, ids of the peers dropped) since the last call."""
        changed = [self._state(p) for p in sorted(self._changed) if p in self._claims]
        removed = sorted(self._removed)
        self._changed.clear()
        self._removed.clear()
        return changed, removed

    def _state(self, peer_id: str) -> ClaimState:
        claim = self._claims[peer_id]
        return ClaimState(
            claim.record, tuple(sorted(claim.failed.items())), frozenset(claim.passed)
        )

    def states(self) -> list[ClaimState]:
        return [self._state(p) for p in sorted(self._claims)]

    def live(self, now: float) -> list[HostingRecord]:
        return [c.record for c in self._claims.values() if now - c.record.issued_at <= self.ttl_s]

    def holders(self, cid: str, now: float) -> set[str]:
        """Peers that claim `cid`, are live, and have not failed a challenge on it."""
        return {
            c.record.peer_id
            for c in self._claims.values()
            if now - c.record.issued_at <= self.ttl_s
            and cid in c.record.cids
            and cid not in c.failed
        }

    def challenge_failed(self, peer_id: str, cid: str, now: float) -> None:
        claim = self._claims.get(peer_id)
        if claim is not None:
            claim.failed[cid] = now
            claim.passed.discard(cid)
            self._touch(peer_id)

    def challenge_passed(self, peer_id: str, cid: str) -> None:
        claim = self._claims.get(peer_id)
        if claim is not None:
            claim.failed.pop(cid, None)
            claim.passed.add(cid)
            self._touch(peer_id)

    def failures(self) -> dict[str, list[str]]:
        return {p: sorted(c.failed) for p, c in self._claims.items() if c.failed}

    def pick_challenge(self, now: float, rng: random.Random, me: str) -> tuple[str, str] | None:
        """A (peer, cid) claim of someone else's to verify: one that another node doubts if
        there is any (and we have not failed it ourselves yet), otherwise a random one."""
        live = self.live(now)
        pairs = {(r.peer_id, cid) for r in live if r.peer_id != me for cid in r.cids}
        doubted = {d for r in live if r.peer_id != me for d in r.doubts} & pairs
        doubted -= {
            (p, c) for p, claim in self._claims.items() for c in (*claim.failed, *claim.passed)
        }
        pool = doubted or pairs
        return rng.choice(sorted(pool)) if pool else None

    def my_doubts(self) -> frozenset[tuple[str, str]]:
        """The claims this node saw fail, to pass on in its own hosting record."""
        return frozenset((p, c) for p, claim in self._claims.items() for c in claim.failed)


class Planner:
    """Decides pins and releases for one node. Feed it the directory and claims; it answers
    with actions. It keeps the time each release first became due, for the grace period."""

    def __init__(self, me: str, policy: HostingPolicy) -> None:
        self.me = me
        self.policy = policy
        self._release_due: dict[str, float] = {}

    def _wanted_by_policy(self, world: WorldInfo) -> bool:
        return world.world_id in self.policy.worlds or (
            self.policy.mode in (Policy.FOLLOW, Policy.AUTO) and world.owner in self.policy.follow
        )

    def plan(
        self,
        *,
        now: float,
        directory: Iterable[WorldInfo],
        table: HostingTable,
        pinned: Mapping[str, str],
        free_bytes: int,
    ) -> list[Action]:
        """`pinned`: cid -> world_id this node pins now. Returns the actions to take."""
        actions: list[Action] = []
        current = {w.cid: w for w in directory}
        budget = free_bytes
        live = {r.peer_id: r for r in table.live(now)}
        r_target = self.policy.replication
        for world in sorted(current.values(), key=lambda w: w.world_id):
            mine = world.cid in pinned
            if self._wanted_by_policy(world):
                if not mine and world.size <= budget:
                    actions.append(Action(ActionKind.PIN, world.cid, world.world_id, "policy"))
                    budget -= world.size
                self._release_due.pop(world.cid, None)
                continue
            if self.policy.mode is not Policy.AUTO:
                continue
            holders = table.holders(world.cid, now) | ({self.me} if mine else set())
            candidates = {
                p
                for p, r in live.items()
                if world.cid in r.cids or (r.auto and r.free_bytes >= world.size)
            }
            candidates |= holders
            if mine or budget >= world.size:
                candidates.add(self.me)
            top = sorted(candidates, key=lambda p: rank(p, world.cid))[:r_target]
            if not mine and len(holders) < r_target and self.me in top and world.size <= budget:
                actions.append(
                    Action(
                        ActionKind.PIN,
                        world.cid,
                        world.world_id,
                        f"under-replicated ({len(holders)}/{r_target})",
                    )
                )
                budget -= world.size
            elif mine and len(holders) > r_target and self.me not in top:
                if self._grace_over(world.cid, now):
                    actions.append(
                        Action(
                            ActionKind.UNPIN,
                            world.cid,
                            world.world_id,
                            f"over-replicated ({len(holders)}/{r_target})",
                        )
                    )
            else:
                self._release_due.pop(world.cid, None)
        # Versions no longer current anywhere in the directory: release after the grace period.
        for cid, world_id in sorted(pinned.items()):
            if cid not in current and self._grace_over(cid, now):
                actions.append(Action(ActionKind.UNPIN, cid, world_id, "superseded version"))
        return actions

    def _grace_over(self, cid: str, now: float) -> bool:
        due = self._release_due.setdefault(cid, now)
        return now - due >= self.policy.grace_s


@dataclass(frozen=True)
class Replicas:
    """How many verified holders one world has, as this node sees them."""

    world_id: str
    cid: str
    #: Live holders that have not failed a challenge on `cid` (this node included if it pins it).
    holders: tuple[str, ...]
    target: int
    #: Whether this node pins it (a superseded version it still pins is listed too).
    hosted_here: bool
    #: Whether `cid` is still the world's current version in the directory.
    current: bool = True


def replica_report(
    *,
    me: str,
    now: float,
    directory: Iterable[WorldInfo],
    table: HostingTable,
    pinned: Mapping[str, str],
    target: int,
) -> list[Replicas]:
    """Every world in `directory`, plus every pinned version no longer current, with its
    holders counted the way the planner counts them: what `flux-node status` shows."""
    out: list[Replicas] = []
    current = {w.cid for w in directory}
    for world in sorted(directory, key=lambda w: w.world_id):
        mine = world.cid in pinned
        holders = table.holders(world.cid, now) | ({me} if mine else set())
        out.append(Replicas(world.world_id, world.cid, tuple(sorted(holders)), target, mine))
    for cid, world_id in sorted(pinned.items(), key=lambda kv: (kv[1], kv[0])):
        if cid not in current:
            holders = table.holders(cid, now) | {me}
            out.append(Replicas(world_id, cid, tuple(sorted(holders)), target, True, False))
    return out
