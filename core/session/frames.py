"""The frames of the session protocol (docs/session-protocol.md), encoded by `wire`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final, TypeAlias

from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.presence import Transform, ViewerFrame
from fluxnode.core.session.seat_messages import (
    Handover,
    SeatAck,
    SeatClaim,
    SeatNack,
    SeatRelease,
)
from fluxnode.core.session.state import StateOp
from fluxnode.core.world import JsonValue

#: Where a Joined says the visitor stands when it does not say otherwise.
ORIGIN: Final = Transform((0.0, 0.0, 0.0))


@dataclass(frozen=True)
class Hello:
    proof: str
    proof_signature: bytes
    session_key: bytes
    possession_signature: bytes


@dataclass(frozen=True)
class Challenge:
    """The node's first frame: what the entry proof must name, and bytes to sign for possession."""

    node: str
    domain: str
    chain_id: int
    uri: str
    nonce: str
    challenge: bytes


@dataclass(frozen=True)
class SignedIn:
    visitor: str
    address: str
    expires_ms: int


@dataclass(frozen=True)
class Error:
    """A refused frame (nothing changed); `code` is an error code of `fluxnode.core.errors`."""

    code: str
    message: str


@dataclass(frozen=True)
class Report:
    world_id: str
    subject: str | None
    reason: str


@dataclass(frozen=True)
class StateSnapshot:
    instance: str
    ops: tuple[StateOp, ...]
    chat: tuple[ChatMessage, ...]


@dataclass(frozen=True)
class MemberJoin:
    world_id: str
    instance: str
    capacity: int


@dataclass(frozen=True)
class VisitorIn:
    instance: str
    visitor: str
    proof: str
    proof_signature: bytes
    info: dict[str, JsonValue]
    transform: Transform


@dataclass(frozen=True)
class VisitorOut:
    instance: str
    visitor: str


@dataclass(frozen=True)
class Batch:
    instance: str
    tick: int
    transforms: dict[str, Transform]


@dataclass(frozen=True)
class InstanceOps:
    instance: str
    ops: tuple[StateOp, ...]


@dataclass(frozen=True)
class StateSync:
    instance: str
    ops: tuple[StateOp, ...]
    chat: tuple[ChatMessage, ...]


@dataclass(frozen=True)
class Join:
    """Enter `world_id`; `avatar` names the avatar model (an asset path or CID, shown to
    others as is) and `wearables` FluxItems token ids the visitor claims to own (the home node
    keeps only those the chain index says the address holds)."""

    world_id: str
    avatar: str | None = None
    wearables: tuple[int, ...] = ()


@dataclass(frozen=True)
class Joined:
    """`spawn`: where the visitor stands now (the spawn point, or where it was when it comes
    back within the reconnect window); its next transform must be reachable from there."""

    world_id: str
    instance_id: str
    node: str
    seat: int
    spawn: Transform = ORIGIN


@dataclass(frozen=True)
class Denied:
    reason: str


@dataclass(frozen=True)
class RedirectTo:
    node: str
    addresses: tuple[str, ...]
    instance_id: str | None


@dataclass(frozen=True)
class Ack:
    seq: int


@dataclass(frozen=True)
class Resync:
    pass


@dataclass(frozen=True)
class Heartbeat:
    pass


@dataclass(frozen=True)
class Leave:
    pass


#: The home node itself as a `Signal` peer: the client's own data channel to its node.
NODE_PEER: Final = "@node"
#: offer/answer carry SDP, ice one candidate line, bye ends a link, failed says ICE failed.
SIGNAL_KINDS: Final = ("offer", "answer", "ice", "bye", "failed")
#: `MeshPlan.links` flags: transforms go over this link; audio does; this client makes the offer.
LINK_DATA: Final = 1
LINK_AUDIO: Final = 2
LINK_OFFER: Final = 4
MESH_MODES: Final = ("mesh", "relay")


@dataclass(frozen=True)
class Signal:
    """WebRTC signalling. Client -> node: `peer` is the visitor it is for (same instance) or
    `NODE_PEER`; node -> client: `peer` is the visitor it comes from (or `NODE_PEER`)."""

    peer: str
    kind: str
    payload: str


@dataclass(frozen=True)
class SignalRelay:
    """A `Signal` between visitors on two member nodes: from `source`'s node to `target`'s."""

    instance: str
    source: str
    target: str
    kind: str
    payload: str


@dataclass(frozen=True)
class MeshPlan:
    """Node -> client: the direct links the client should hold now (`links`: visitor -> LINK_*
    flags; a link not named is to be closed) and who is silenced in the instance."""

    epoch: int
    mode: str
    links: dict[str, int]
    silenced: tuple[str, ...] = ()


@dataclass(frozen=True)
class MeshStatus:
    """Client -> node: the peers whose direct data channel is open now."""

    connected: tuple[str, ...]


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class RtcConfig:
    """Node -> client after `Joined`: the ICE servers to use (none: host candidates only)."""

    ice_servers: tuple[IceServer, ...]


@dataclass(frozen=True)
class Silence:
    """The world owner silences (`on`) or un-silences `target` in an instance; signed by the
    owner's session key (`author` is its visitor id), so every member node checks it itself."""

    instance: str
    target: str
    on: bool
    sent_ms: int
    author: str
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        body = ["flux-silence/1", self.instance, self.target, self.on, self.sent_ms, self.author]
        return json.dumps(body, separators=(",", ":")).encode()


Frame: TypeAlias = (
    Hello | Join | Joined | Denied | RedirectTo | Challenge | SignedIn | Error | Report
    | Transform | ViewerFrame | Ack | Resync | StateSnapshot
    | StateOp | ChatMessage | Heartbeat | Leave
    | SeatClaim | SeatAck | SeatNack | SeatRelease | Handover
    | MemberJoin | VisitorIn | VisitorOut | Batch | InstanceOps | StateSync
    | Signal | SignalRelay | MeshPlan | MeshStatus | RtcConfig | Silence
)  # fmt: skip
#: Frames a client may send to its home node; anything else from a client is refused.
CLIENT_FRAMES: Final = (
    Hello, Join, Report, Transform, Ack, Resync, StateOp, ChatMessage, Heartbeat, Leave,
    Signal, MeshStatus, Silence,
)  # fmt: skip
#: Frames member nodes send each other.
NODE_FRAMES: Final = (
    SeatClaim, SeatAck, SeatNack, SeatRelease, Handover,
    MemberJoin, VisitorIn, VisitorOut, Batch, InstanceOps, StateSync, ChatMessage,
    SignalRelay, Silence,
)  # fmt: skip
