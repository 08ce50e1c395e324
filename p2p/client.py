"""`HostClient`: the asyncio side's typed view of the libp2p host.

What `node/` calls: one typed method per host operation (`await client.publish(topic, data)`,
`await client.fetch_world(cid, hints)`, ...), each sending one frozen request of
`fluxnode.p2p.messages` over the bridge. The host's questions (asks) are answered by a
`HostAnswers` the node hands in; the client dispatches them from a table keyed by their type.

The client owns the transport: today a `TrioBridge` running `HostService` in a thread. Moving the
host into its own process would change what `__init__` builds, not the methods callers use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Protocol

from fluxnode.core.cid import Cid
from fluxnode.core.errors import BadRequest, NotEnabled
from fluxnode.core.status import PeerSummary
from fluxnode.p2p.bridge import Ask, BridgeStats, TrioBridge
from fluxnode.p2p.host import HostService, HostSettings
from fluxnode.p2p.messages import (
    BitswapFetch,
    Challenge,
    ChallengeResult,
    Connect,
    DhtGet,
    DhtPut,
    FetchWorld,
    FindProviders,
    GetBlock,
    GossipMessage,
    GossipPeers,
    HostEvent,
    HostInfo,
    Info,
    Peers,
    Ping,
    PingResult,
    Provide,
    Provider,
    Publish,
    PutBlock,
    SelectDhtRecord,
    ServeBlock,
    SessionFrame,
    SessionLinkStats,
    SessionLinkStatus,
    SessionPeerDown,
    SessionSend,
    ValidateDhtRecord,
    ValidateGossip,
)


class HostAnswers(Protocol):
    """What the node answers when the host asks (each method gets the ask message)."""

    async def validate_gossip(self, ask: ValidateGossip) -> bool: ...

    async def validate_dht_record(self, ask: ValidateDhtRecord) -> bool: ...

    async def select_dht_record(self, ask: SelectDhtRecord) -> int: ...

    async def get_block(self, ask: GetBlock) -> bytes | None: ...

    async def put_block(self, ask: PutBlock) -> None: ...

    async def serve_block(self, ask: ServeBlock) -> bytes | None: ...


class ClosedAnswers:
    """Answers that refuse everything (fail closed): a base for nodes that need only a few."""

    async def validate_gossip(self, ask: ValidateGossip) -> bool:
        return False

    async def validate_dht_record(self, ask: ValidateDhtRecord) -> bool:
        return False

    async def select_dht_record(self, ask: SelectDhtRecord) -> int:
        return 0

    async def get_block(self, ask: GetBlock) -> bytes | None:
        return None

    async def put_block(self, ask: PutBlock) -> None:
        raise NotEnabled("this node stores no blocks")

    async def serve_block(self, ask: ServeBlock) -> bytes | None:
        return None


class HostClient:
    """The libp2p host, seen from asyncio. Start it, call it, close it."""

    def __init__(
        self, settings: HostSettings, answers: HostAnswers, *, name: str = "flux-trio"
    ) -> None:
        self._bridge: TrioBridge[HostInfo] = TrioBridge(HostService(settings), name=name)
        self._answers: dict[type[Ask[Any]], Callable[[Any], Awaitable[object]]] = {
            ValidateGossip: answers.validate_gossip,
            ValidateDhtRecord: answers.validate_dht_record,
            SelectDhtRecord: answers.select_dht_record,
            GetBlock: answers.get_block,
            PutBlock: answers.put_block,
            ServeBlock: answers.serve_block,
        }
        self._bridge.set_responder(self._answer)

    async def _answer(self, question: Ask[Any]) -> object:
        handler = self._answers.get(type(question))
        if handler is None:
            raise BadRequest(f"unknown question {type(question).__name__}")
        return await handler(question)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> HostInfo:
        return await self._bridge.start()

    async def aclose(self) -> None:
        await self._bridge.aclose()

    async def wait_closed(self) -> None:
        await self._bridge.wait_closed()

    @property
    def running(self) -> bool:
        return self._bridge.running

    def statistics(self) -> BridgeStats:
        return self._bridge.statistics()

    async def events(self) -> AsyncIterator[HostEvent]:
        """Gossip messages that passed validation and session link frames and peer-down
        notices, in order; ends when the host stops."""
        async for event in self._bridge.events():
            if isinstance(event, GossipMessage | SessionFrame | SessionPeerDown):
                yield event

    # -- operations --------------------------------------------------------------------------
    async def info(self) -> HostInfo:
        return await self._bridge.call(Info())

    async def peers(self) -> tuple[PeerSummary, ...]:
        return await self._bridge.call(Peers())

    async def ping(self, peer: str, count: int) -> PingResult:
        return await self._bridge.call(Ping(peer, count))

    async def connect(self, addr: str) -> str:
        """Dial a multiaddr with `/p2p/`; returns the peer ID."""
        return await self._bridge.call(Connect(addr))

    async def publish(self, topic: str, data: bytes) -> None:
        await self._bridge.call(Publish(topic, data))

    async def gossip_peers(self, topic: str) -> tuple[str, ...]:
        return await self._bridge.call(GossipPeers(topic))

    async def bitswap_fetch(self, root: Cid, addrs: Iterable[str]) -> int:
        return await self._bridge.call(BitswapFetch(root, tuple(addrs)))

    async def provide(self, cid: Cid) -> bool:
        return await self._bridge.call(Provide(cid))

    async def find_providers(self, cid: Cid) -> tuple[Provider, ...]:
        return await self._bridge.call(FindProviders(cid))

    async def dht_put(self, key: str, value: bytes) -> None:
        await self._bridge.call(DhtPut(key, value))

    async def dht_get(self, key: str) -> bytes | None:
        return await self._bridge.call(DhtGet(key))

    async def fetch_world(self, cid: Cid, hints: Iterable[str]) -> int:
        return await self._bridge.call(FetchWorld(cid, tuple(hints)))

    async def session_send(self, peer: str, frames: Iterable[bytes]) -> None:
        """Write `frames` to `peer` on our session stream to it, in order. Returns once they
        are on the stream; PeerError if its send queue is full or it cannot be reached.
        Sends to different peers are independent: run them concurrently. Calls to ONE peer
        keep their order only if each is awaited before the next starts (concurrent calls
        may reach the host in any order)."""
        await self._bridge.call(SessionSend(peer, tuple(frames)))

    async def session_link_status(self) -> SessionLinkStats:
        return await self._bridge.call(SessionLinkStatus())

    async def challenge(self, cid: Cid, peer: str, seed: int) -> ChallengeResult:
        return await self._bridge.call(Challenge(cid, peer, seed))
