"""What a `Visitor` reports to its program: typed, frozen events, one per thing that happened.

Events speak of visitors by their visitor id (the session key in base64url) and, where the
node told us, their wallet `address`; a peer whose `info` map carried no address has None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from fluxnode.core.session.presence import Transform
from fluxnode.core.world import JsonValue


@dataclass(frozen=True)
class PeerJoined:
    visitor: str
    address: str | None


@dataclass(frozen=True)
class PeerLeft:
    visitor: str
    address: str | None


@dataclass(frozen=True)
class PeerMoved:
    """A peer's new transform; `transform` None means "present, beyond range". `direct`: it
    came straight from the peer over the mesh, not relayed by a node."""

    visitor: str
    address: str | None
    transform: Transform | None
    direct: bool = False


@dataclass(frozen=True)
class StateChanged:
    """A world-state register now holds `value` (from a snapshot, a relayed op or our own)."""

    object_id: str
    prop: str
    value: JsonValue
    author: str


@dataclass(frozen=True)
class Chat:
    visitor: str
    address: str | None
    text: str
    sent_ms: int


@dataclass(frozen=True)
class Error:
    """The node refused one of our frames (nothing changed), or sent one we could not read
    (``code`` ``frame_invalid``); the session goes on."""

    code: str
    message: str


@dataclass(frozen=True)
class Reconnected:
    """The connection dropped (`lost` says why) and a new one is signed in at `node_url`
    after `tries` tries; when we were in a world, we are in it again (`instance`, `node`,
    `seat`: the same seat when the node kept it). Peers, state and chat go on from where
    they were: only what changed meanwhile comes as events."""

    node_url: str
    lost: str
    tries: int
    world_id: str | None
    instance: str | None
    node: str | None
    seat: int | None


@dataclass(frozen=True)
class Closed:
    """The session ended; always the last event."""

    reason: str


@dataclass(frozen=True)
class VisitorStats:
    frames_received: int
    frames_sent: int
    bad_frames: int
    events_dropped: int
    resyncs: int
    ops_rejected: int
    redirects: int
    reconnects: int


Event: TypeAlias = (
    PeerJoined | PeerLeft | PeerMoved | StateChanged | Chat | Error | Reconnected | Closed
)
