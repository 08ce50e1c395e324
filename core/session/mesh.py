"""The mesh rule: which visitors of an instance hold direct WebRTC links, and what they carry.

Sans-IO and deterministic: `plan_links` is a pure function of the visitors' positions, who is
silenced and which pairs failed, so every member node computing it from the same presence
reaches the same answer, and each home node hands its own visitors their rows
(docs/session-protocol.md, "WebRTC: meshes, the node's data channel, voice"):

- at most `MESH_MAX` visitors: ``mesh`` mode, every pair linked with `LINK_DATA | LINK_AUDIO`;
- more: ``relay`` mode, transforms go through nodes and audio links form between near
  visitors: pairs are taken nearest first (ties by ids) and a pair is linked while both ends
  hold fewer than `AUDIO_MAX` audio links;
- a failed pair (either side said ICE failed) has no link for `FAIL_FOR` seconds;
- a silenced visitor has no `LINK_AUDIO` on any link (a relay-mode link without audio is no
  link at all);
- the visitor with the smaller id makes the offer (`LINK_OFFER` on its side only).

Silenced visitors and failed pairs are taken out *after* the audio links are chosen, not
before: an operator's silence is known only to its own node, and an ICE failure only to the
nodes of its two ends, so leaving them in the choice keeps every other pair's links the same on
every node.

`MeshState` holds one instance's plans over time: it checks at most once a second (sooner when
someone arrives or leaves, is silenced or a pair fails), and positions move the audio links only
once a visitor has moved `HYSTERESIS` / 2 from where the rule last placed it (its *anchor*), so
pair distances the rule sees are within `HYSTERESIS` of the true ones and a crowd shuffling in
place does not churn links. Each visitor's plan has its own epoch, raised when its plan changes.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Collection, Iterable, Mapping
from typing import Final

from fluxnode.core.session.frames import LINK_AUDIO, LINK_DATA, LINK_OFFER, MeshPlan

MESH_MAX: Final = 8  # visitors in one full mesh (browsers handle a handful of peers)
AUDIO_MAX: Final = 8  # audio links per visitor in relay mode (proximity voice)
FAIL_FOR: Final = 60.0  # seconds a failed pair relays before it may try again
CHECK_EVERY: Final = 1.0  # seconds between checks driven by positions alone
HYSTERESIS: Final = 2.0  # metres a pair's distance may be off before links follow positions

Vec = tuple[float, float, float]
Pair = tuple[str, str]  # (smaller id, larger id)


def pair(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


def mode_for(visitors: int) -> str:
    return "mesh" if visitors <= MESH_MAX else "relay"


def audio_pairs(positions: Mapping[str, Vec], max_audio: int = AUDIO_MAX) -> set[Pair]:
    """Proximity voice: pairs nearest first (ties by ids), while both ends have room."""
    ids = sorted(positions)
    ranked = sorted(
        (math.dist(positions[a], positions[b]), a, b)
        for i, a in enumerate(ids)
        for b in ids[i + 1 :]
    )
    degree: collections.Counter[str] = collections.Counter()
    chosen: set[Pair] = set()
    for _, a, b in ranked:
        if degree[a] < max_audio and degree[b] < max_audio:
            chosen.add((a, b))
            degree[a] += 1
            degree[b] += 1
    return chosen


def plan_links(
    positions: Mapping[str, Vec],
    silenced: Collection[str] = (),
    failed: Collection[Pair] = (),
) -> tuple[str, dict[str, dict[str, int]]]:
    """The instance's mode and every visitor's links (peer -> LINK_* flags); see the module
    docstring. A pure function: the same inputs give the same plans, in any order."""
    mode = mode_for(len(positions))
    ids = sorted(positions)
    if mode == "mesh":
        base = {(a, b): LINK_DATA | LINK_AUDIO for i, a in enumerate(ids) for b in ids[i + 1 :]}
    else:
        base = {p: LINK_AUDIO for p in audio_pairs(positions)}
    links: dict[str, dict[str, int]] = {v: {} for v in ids}
    for (a, b), flags in base.items():
        if (a, b) in failed:
            continue
        if a in silenced or b in silenced:
            flags &= ~LINK_AUDIO
        if flags:
            links[a][b] = flags | LINK_OFFER
            links[b][a] = flags
    return mode, links


class MeshState:
    """One instance's mesh plans over time (sans-IO; `now` in seconds)."""

    def __init__(self, *, check_every: float = CHECK_EVERY, fail_for: float = FAIL_FOR,
                 hysteresis: float = HYSTERESIS) -> None:  # fmt: skip
        self.check_every = check_every
        self.fail_for = fail_for
        self.hysteresis = hysteresis
        self.anchors: dict[str, Vec] = {}
        self.silenced: frozenset[str] = frozenset()
        self.failed: dict[Pair, float] = {}  # pair -> until when it relays
        self.mode = "mesh"
        self.links: dict[str, dict[str, int]] = {}  # the last computed plans, every visitor
        self.sent: dict[str, MeshPlan] = {}  # the plan each local visitor was last sent
        self.epochs: dict[str, int] = {}
        self.next_check = -math.inf
        self.dirty = True

    def set_silenced(self, silenced: Iterable[str]) -> None:
        new = frozenset(silenced)
        if new != self.silenced:
            self.silenced, self.dirty = new, True

    def fail(self, a: str, b: str, now: float) -> None:
        """ICE failed between `a` and `b`: that pair relays for `fail_for` seconds."""
        if a != b:
            self.failed[pair(a, b)] = now + self.fail_for
            self.dirty = True

    def resend(self, visitor: str) -> None:
        """`visitor` (re)joined: it gets its plan at the next check, changed or not."""
        self.sent.pop(visitor, None)
        self.dirty = True

    def linked(self, visitor: str, peer: str) -> int:
        """The flags of `visitor`'s link to `peer` in the plan it was last sent (0: none)."""
        plan = self.sent.get(visitor)
        return plan.links.get(peer, 0) if plan is not None else 0

    def _move_anchors(self, positions: Mapping[str, Vec]) -> bool:
        moved = False
        for gone in [v for v in self.anchors if v not in positions]:
            del self.anchors[gone]
            moved = True
        for v, here in positions.items():
            anchor = self.anchors.get(v)
            if anchor is None or math.dist(anchor, here) > self.hysteresis / 2:
                self.anchors[v] = here
                moved = True
        return moved

    def plans_to_send(self, positions: Mapping[str, Vec], local: Iterable[str],
                      now: float) -> list[tuple[str, MeshPlan]]:  # fmt: skip
        """The plans of `local` visitors that changed since they were last sent. `positions`
        holds every visitor of the instance. Cheap when nothing is due."""
        arrived_or_left = positions.keys() != self.anchors.keys()
        if not (self.dirty or arrived_or_left or now >= self.next_check):
            return []
        self.next_check = now + self.check_every
        for expired in [p for p, until in self.failed.items() if until <= now]:
            del self.failed[expired]
            self.dirty = True
        moved = self._move_anchors(positions)
        if moved or self.dirty:
            self.mode, self.links = plan_links(self.anchors, self.silenced, self.failed.keys())
        self.dirty = False
        silenced = tuple(sorted(self.silenced & self.anchors.keys()))
        for gone in [v for v in self.epochs if v not in self.anchors]:
            del self.epochs[gone]
        out: list[tuple[str, MeshPlan]] = []
        local_now = set(local)
        for gone in [v for v in self.sent if v not in local_now]:
            del self.sent[gone]
        for v in sorted(local_now):
            links = self.links.get(v)
            if links is None:
                continue  # not in the presence table (yet)
            old = self.sent.get(v)
            if old is not None and (old.mode, old.links, old.silenced) == (
                self.mode, links, silenced
            ):  # fmt: skip
                continue
            epoch = self.epochs[v] = self.epochs.get(v, 0) + 1
            plan = self.sent[v] = MeshPlan(epoch, self.mode, dict(links), silenced)
            out.append((v, plan))
        return out
