"""Who is in a live session on this node: worlds joined, local and remote visitors, the outbox.

Plain records shared by the hub (`fluxnode.core.session.hub`) and its rooms
(`fluxnode.core.session.room`). A visitor's id is its session key in unpadded base64url, the
text its entry proof's ``urn:flux:session-key:ed25519:`` resource carries, so any node can get
the key back from the id (chat lines name their author by id and are checked with that key).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

from fluxnode.core.errors import EntryProofInvalid, SiweUsageError
from fluxnode.core.session.entry import SESSION_KEY_PREFIX
from fluxnode.core.session.entry import parse_session_key_resource as _parse_key
from fluxnode.core.session.entry import session_key_resource as _key_resource
from fluxnode.core.session.frames import Frame
from fluxnode.core.session.instances import capacity_for
from fluxnode.core.session.presence import Transform
from fluxnode.core.session.ratelimit import TokenBucket
from fluxnode.core.world import JsonValue, WorldManifest


def visitor_id(session_key: bytes) -> str:
    """A visitor's id: its raw session key in unpadded base64url (the entry proof's text)."""
    return _key_resource(session_key)[len(SESSION_KEY_PREFIX) :]


def session_key_of(visitor: str) -> bytes | None:
    """The session key a visitor id names, or None when it is not a canonical key text."""
    try:
        return _parse_key(SESSION_KEY_PREFIX + visitor)
    except (EntryProofInvalid, SiweUsageError):
        return None


@dataclass(frozen=True)
class WorldInfo:
    """What the edge knows about a world when a visitor joins it."""

    world_id: str
    manifest: WorldManifest
    hosts: tuple[str, ...]  # node ids hosting the world (redirect targets)
    owner: str | None = None  # the world record's owner: its visitors may silence others

    @property
    def capacity(self) -> int:
        return capacity_for(self.manifest.settings.max_players)

    @property
    def spawn(self) -> Transform:
        p = self.manifest.settings.spawn_point
        return Transform((float(p.x), float(p.y), float(p.z)))


OP_RATE, OP_BURST = 10.0, 20
ERROR_RATE, ERROR_BURST = 2.0, 5
REFUSAL_RATE, REFUSAL_BURST = 2.0, 40
SIGNAL_RATE, SIGNAL_BURST = 20.0, 40


def _bucket(rate: float, burst: int) -> TokenBucket:
    return TokenBucket(rate, burst, -math.inf)  # full at the first use, whenever that is


@dataclass
class Visitor:
    """A visitor connected to (or recently dropped from) this node."""

    id: str
    address: str  # as the entry proof names it (EIP-55)
    session_key: bytes
    proof: str
    proof_signature: bytes
    expires_at: float
    connected: bool = True
    instance: str | None = None  # the room it is seated in or claiming a seat of
    seated: bool = False
    world: WorldInfo | None = None
    retried: bool = False  # a lost seat was already placed again once
    #: What others are shown besides the address (avatar, wearables the edge checked).
    info: dict[str, JsonValue] = field(default_factory=dict)
    #: State ops it may send (a click is a person's act; a drag sends at most 10 a second).
    op_rate: TokenBucket = field(default_factory=lambda: _bucket(OP_RATE, OP_BURST))
    #: `Error` answers it gets; refusals past this are counted, not answered.
    error_rate: TokenBucket = field(default_factory=lambda: _bucket(ERROR_RATE, ERROR_BURST))
    #: Refused frames it may send before it is closed (`CLOSE_REFUSED`).
    refusal_rate: TokenBucket = field(default_factory=lambda: _bucket(REFUSAL_RATE, REFUSAL_BURST))
    #: WebRTC signals it may send (an offer, an answer and a few candidates per link).
    signal_rate: TokenBucket = field(default_factory=lambda: _bucket(SIGNAL_RATE, SIGNAL_BURST))
    #: Transforms it sent us: a client whose mesh carries its transforms sends one a second.
    transforms: int = 0

    def shown(self) -> dict[str, JsonValue]:
        return {**self.info, "address": self.address}

    @property
    def author(self) -> str:
        """The address as state ops carry it (lower-case)."""
        return self.address.lower()


@dataclass
class RemoteVisitor:
    id: str
    owner: str  # the member node that seated it
    address: str
    session_key: bytes
    expires_at: float


class Outbox:
    """Everything the hub and its rooms produce, drained by the edge in order."""

    def __init__(self) -> None:
        self.client: list[tuple[str, Frame]] = []
        self.closes: list[tuple[str, str]] = []
        self.node: list[tuple[str, Frame]] = []
        self.refused: collections.Counter[str] = collections.Counter()
        self.members_lost = 0

    def to_client(self, visitor: str, frame: Frame) -> None:
        self.client.append((visitor, frame))

    def to_node(self, peer: str, frame: Frame) -> None:
        self.node.append((peer, frame))
