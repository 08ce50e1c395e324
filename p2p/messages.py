"""Everything that crosses the bridge to the libp2p host, as frozen plain-data messages.

Three kinds, each a frozen dataclass of bytes, strings, numbers, `Cid`s and tuples of those:

* requests (asyncio -> trio), one per host operation, each a `Request[R]` whose `R` is the type
  of its answer; `HostClient` sends them, `HostService` dispatches them from a table;
* asks (trio -> asyncio), what the host needs from the node: gossip and DHT record validation,
  and the node's block store for Bitswap; `HostClient` dispatches them to a `HostAnswers`;
* events (trio -> asyncio, one-way): gossip messages that passed validation, and the session
  link's frames and peer-down notices.

Nothing here holds a callable, a store handle or a loop token, so every message could be
pickled and sent to another process unchanged.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from fluxnode.core.cid import Cid
from fluxnode.core.status import PeerSummary
from fluxnode.p2p.bridge_core import Ask, Request

# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostInfo:
    peer_id: str
    addrs: tuple[str, ...]


@dataclass(frozen=True)
class PingResult:
    peer_id: str
    rtts_ms: tuple[float, ...]


@dataclass(frozen=True)
class Provider:
    peer_id: str
    addrs: tuple[str, ...]


class ChallengeOutcome(enum.Enum):
    #: The peer delivered every block of the walk.
    PASSED = "passed"
    #: The peer's fault: it said it does not have a block, or fell silent past the deadline.
    FAILED = "failed"
    #: Nothing learned about the peer: it could not be reached, or the connection went away.
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class ChallengeResult:
    outcome: ChallengeOutcome
    reason: str = ""


# -- requests (asyncio -> trio) -------------------------------------------------------------------


@dataclass(frozen=True)
class Info(Request[HostInfo]):
    pass


@dataclass(frozen=True)
class Peers(Request[tuple[PeerSummary, ...]]):
    pass


@dataclass(frozen=True)
class Ping(Request[PingResult]):
    peer: str
    count: int


@dataclass(frozen=True)
class Connect(Request[str]):
    """Dial a multiaddr with `/p2p/`; answers the peer ID."""

    addr: str


@dataclass(frozen=True)
class Publish(Request[None]):
    topic: str
    data: bytes


@dataclass(frozen=True)
class GossipPeers(Request[tuple[str, ...]]):
    topic: str


@dataclass(frozen=True)
class BitswapFetch(Request[int]):
    """Dial `addrs` and fetch the whole DAG under `root`; answers its number of blocks."""

    root: Cid
    addrs: tuple[str, ...]


@dataclass(frozen=True)
class Provide(Request[bool]):
    cid: Cid


@dataclass(frozen=True)
class FindProviders(Request[tuple[Provider, ...]]):
    cid: Cid


@dataclass(frozen=True)
class DhtPut(Request[None]):
    key: str
    value: bytes


@dataclass(frozen=True)
class DhtGet(Request[bytes | None]):
    key: str


@dataclass(frozen=True)
class FetchWorld(Request[int]):
    """Fetch a DAG from the hinted peers (if connected) and the DHT's providers."""

    cid: Cid
    hints: tuple[str, ...]


@dataclass(frozen=True)
class LinkPeerStats:
    peer_id: str
    frames_in: int
    bytes_in: int
    frames_out: int
    bytes_out: int
    #: Inbound frames refused by this peer's rate budget.
    dropped_rate: int
    #: Session streams open with this peer (ours and theirs).
    streams: int


@dataclass(frozen=True)
class SessionLinkStats:
    frames_in: int
    bytes_in: int
    frames_out: int
    bytes_out: int
    #: Inbound frames refused by a peer's rate budget (per peer in `peers`).
    dropped_rate: int
    #: Inbound frames dropped because the node's event queue was full.
    dropped_queue: int
    #: Inbound streams reset for a malformed or oversized length prefix.
    reset_oversized: int
    #: Inbound streams refused because the peer already held the most allowed.
    refused_streams: int
    #: Sends refused at once because the peer's send queue was full.
    send_queue_full: int
    #: Batches that could not be written (dial, negotiation or write failed, or timed out).
    send_failed: int
    streams_in: int
    streams_out: int
    #: Peers we hold session state for (connected ones), sorted by peer ID.
    peers: tuple[LinkPeerStats, ...]


@dataclass(frozen=True)
class Challenge(Request[ChallengeResult]):
    """Walk a random root-to-leaf path of `cid` (chosen by `seed`), every block from `peer`."""

    cid: Cid
    peer: str
    seed: int


@dataclass(frozen=True)
class SessionSend(Request[None]):
    """Write `frames` (opaque bytes, each at most 64 KiB) to `peer` on our one session stream
    to it, in order; answers once they were handed to the stream, not when the peer read them.
    PeerError if the peer's send queue is full or it cannot be reached or written to."""

    peer: str
    frames: tuple[bytes, ...]


@dataclass(frozen=True)
class SessionLinkStatus(Request[SessionLinkStats]):
    pass


# -- asks (trio -> asyncio) -----------------------------------------------------------------------


@dataclass(frozen=True)
class ValidateGossip(Ask[bool]):
    """May this message be delivered and relayed? `author` signed it, `forwarder` sent it."""

    topic: str
    data: bytes
    forwarder: str
    author: str


@dataclass(frozen=True)
class ValidateDhtRecord(Ask[bool]):
    """May this value be stored or returned under `key`?"""

    key: str
    value: bytes


@dataclass(frozen=True)
class SelectDhtRecord(Ask[int]):
    """Index of the best of `values` under `key`."""

    key: str
    values: tuple[bytes, ...]


@dataclass(frozen=True)
class GetBlock(Ask[bytes | None]):
    """The stored block, or None (not stored, or refused by the denylist)."""

    cid: Cid


@dataclass(frozen=True)
class PutBlock(Ask[None]):
    """Store a block fetched over Bitswap (its hash was checked against `cid`)."""

    cid: Cid
    data: bytes


@dataclass(frozen=True)
class ServeBlock(Ask[bytes | None]):
    """The block to send a peer: stored, intact and servable (pinned or under a pin, not
    denied), else None: one ask per block served."""

    cid: Cid


# -- events (trio -> asyncio) ---------------------------------------------------------------------


@dataclass(frozen=True)
class GossipMessage:
    topic: str
    data: bytes
    #: The author (signed), not the peer that forwarded it.
    author: str


@dataclass(frozen=True)
class SessionFrame:
    """One frame a peer sent on its session stream to us (after the rate budget)."""

    peer_id: str
    data: bytes


@dataclass(frozen=True)
class SessionPeerDown:
    """A peer's session stream or connection closed. Emitted once per loss; a later
    `SessionFrame` from the same peer means it is back."""

    peer_id: str


#: Every event the host emits.
HostEvent = GossipMessage | SessionFrame | SessionPeerDown
