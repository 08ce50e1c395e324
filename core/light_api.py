"""What the gateway's light-client API needs from the node: one typed seam, no framework types.

The gateway (aiohttp) parses requests, applies limits and writes JSON; the node answers through
`LightApi`, which node/ implements and hands in (the gateway never imports node/).

Trust. Everything a directory entry says about a world (name, description, tags, thumbnail)
comes from the world's manifest, `world.json`, which the node reads by the CID of the world's
current record. That record is signed by the owner's wallet and the CID is a hash of the whole
world DAG, so the manifest — and with it the search data — is signed transitively: a client
that checks the record's signature and fetches the manifest through the trustless routes
(`/ipfs/<cid>/world.json?format=car`) can tell whether a gateway lied. What is NOT signed is
what the node observed: visitor counts, hosting nodes, first-seen times; those come from
gossip and are this node's view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from fluxnode.core.session.gate import SessionPeer, SessionSink
from fluxnode.core.world_record import WorldRecord

__all__ = [
    "AuthChallenge",
    "AuthToken",
    "HostingNode",
    "InstanceInfo",
    "JoinAnswer",
    "LightApi",
    "TokenHolder",
    "VersionSeen",
    "WorldCard",
    "WorldDetail",
]

#: Whether a world's manifest summary is known: read, not fetched yet, or could not be had.
SummaryState = Literal["ok", "pending", "unavailable"]


@dataclass(frozen=True)
class WorldCard:
    """One world in the directory: the signed record, its manifest summary and what this
    node observed (live visitors and instances from the gossiped directory)."""

    record: WorldRecord
    name: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    #: Path of the thumbnail inside the world's DAG (`/ipfs/<cid>/<thumbnail>`), if any.
    thumbnail: str | None = None
    summary: SummaryState = "pending"
    #: Unix seconds: the earliest `issued_at` of the versions this node has seen.
    first_seen: float = 0.0
    visitors: int = 0
    instances: int = 0
    #: Unix seconds this node last saw visitors in the world; None: not since it started.
    last_visit: float | None = None

    @property
    def world_id(self) -> str:
        return self.record.world_id

    def to_json(self) -> dict[str, Any]:
        cid = str(self.record.cid)
        thumb = None if self.thumbnail is None else f"/ipfs/{cid}/{self.thumbnail}"
        return {
            "world_id": self.world_id,
            "cid": cid,
            "seq": self.record.seq,
            "owner": self.record.owner,
            "visibility": self.record.visibility.value,
            "issued_at": self.record.issued_at,
            "name": self.name,
            "description": self.description,
            "tags": list(self.tags),
            "thumbnail": self.thumbnail,
            "thumbnail_url": thumb,
            "summary": self.summary,
            "first_seen": self.first_seen,
            "visitors": self.visitors,
            "instances": self.instances,
            "last_visit": self.last_visit,
        }


@dataclass(frozen=True)
class VersionSeen:
    seq: int
    cid: str
    issued_at: int
    #: Unix seconds this node first saw this version.
    seen_at: float

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "cid": self.cid, "issued_at": self.issued_at,
                "seen_at": self.seen_at}  # fmt: skip


@dataclass(frozen=True)
class HostingNode:
    node: str
    #: Its gateway, when its directory load names one (a node without one hosts no visitors).
    gateway_url: str | None

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "gateway_url": self.gateway_url}


@dataclass(frozen=True)
class InstanceInfo:
    instance_id: str
    count: int
    capacity: int
    members: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "count": self.count,
                "capacity": self.capacity, "members": list(self.members)}  # fmt: skip


@dataclass(frozen=True)
class WorldDetail:
    card: WorldCard
    versions: tuple[VersionSeen, ...]
    hosts: tuple[HostingNode, ...]
    instances: tuple[InstanceInfo, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "world": self.card.to_json(),
            "record": self.card.record.to_json(),
            "versions": [v.to_json() for v in self.versions],
            "hosts": [h.to_json() for h in self.hosts],
            "instances": {
                "count": len(self.instances),
                "visitors": sum(i.count for i in self.instances),
                "capacity": sum(i.capacity for i in self.instances),
                "list": [i.to_json() for i in self.instances],
            },
        }


@dataclass(frozen=True)
class AuthChallenge:
    """What a client signs: `message` with the wallet (EIP-191), `challenge` with its
    session key (`fluxnode.core.session.entry.possession_message`)."""

    message: str
    nonce: str
    challenge: bytes
    #: Unix seconds after which this challenge is forgotten (the verify must come before).
    expires_at: float


@dataclass(frozen=True)
class AuthToken:
    token: str
    visitor: str
    address: str
    #: Unix seconds: the entry proof's expiry, which is also the token's.
    expires_at: float


@dataclass(frozen=True)
class TokenHolder:
    """Who a session token belongs to (for per-address limits and reports)."""

    visitor: str
    address: str
    expires_at: float


@dataclass(frozen=True)
class JoinAnswer:
    allowed: bool
    reason: str
    world_id: str
    #: The node to connect to (this one, or another with room when this one is full).
    node: str | None = None
    #: The instance the visitor would be seated in (None: a new one, or the other node picks).
    instance_id: str | None = None
    #: Gateway URLs of `node` (its `/ws` is the session WebSocket).
    urls: tuple[str, ...] = field(default_factory=tuple)
    #: True when `node` is not this node: the visitor signs in there again (its own domain).
    redirect: bool = False


class LightApi(Protocol):
    """The node as the light-client routes see it. Errors are `FluxError`s: `NotFound` for an
    unknown world, `BadRequest` for bad input, `TokenInvalid` (401) for a missing, unknown or
    expired token, `EntryProofInvalid`/`SessionSignatureInvalid` for a refused sign-in."""

    async def world_cards(self) -> Sequence[WorldCard]:
        """Every world this node knows, with what it has of their summaries (missing ones are
        fetched in the background, bounded)."""
        ...

    async def world_detail(self, world_id: str) -> WorldDetail: ...

    async def world_manifest_json(self, world_id: str) -> Any:
        """The parsed `world.json` of the world's current record (read by its CID)."""
        ...

    async def auth_challenge(self, session_key: bytes, address: str) -> AuthChallenge: ...

    async def auth_verify(
        self, message: str, signature: bytes, session_key: bytes, possession_signature: bytes
    ) -> AuthToken: ...

    def token_holder(self, token: str) -> TokenHolder:
        """Who holds `token` (sync, in memory); `TokenInvalid` when it is unknown or expired."""
        ...

    async def join(self, token: str, world_id: str) -> JoinAnswer: ...

    async def report(
        self,
        token: str,
        world_id: str,
        reason: str,
        subject: str | None,
        instance_id: str | None,
    ) -> int:
        """Store a report by the token's holder; returns its id (`RateLimited` past the
        reporter's rate, `BadRequest` for a bad field)."""
        ...

    async def open_token_session(self, sink: SessionSink, remote: str, token: str) -> SessionPeer:
        """A session WebSocket already signed in by `token`: no Challenge, `SignedIn` first."""
        ...
