"""The libp2p host, run as a `BridgeService` on the trio side of the bridge.

Security is Noise only: py-libp2p's `new_host()` also offers `/plaintext/2.0.0` and `/secio/1.0.0`
(and TLS) unless told otherwise, and plaintext would let any peer claim any identity. Muxers are
yamux (preferred) and mplex (for older peers). Identify and ping come with py-libp2p's host.
Bootstrap peers are dialled on the `DialSchedule` from core with exponential backoff, and
redialled when they drop.

Requests arrive as the frozen messages of `fluxnode.p2p.messages` and are dispatched from a
table keyed by their type. What the host needs from the node (validation, the block store) it
asks for through `ServiceIO.ask`: `AskedBlocks` is Bitswap's block access, one ask per use.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import multiaddr
from libp2p import create_mplex_muxer_option, create_yamux_muxer_option, new_host
from libp2p.abc import IHost
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.host.ping import ID as PING_PROTOCOL
from libp2p.host.ping import perform_ping_roundtrip
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL
from libp2p.security.noise.transport import Transport as NoiseTransport

from fluxnode.core.cid import DAG_PB, Cid
from fluxnode.core.dagpb import decode_node
from fluxnode.core.dialing import BackoffPolicy, DialSchedule
from fluxnode.core.errors import BadRequest, NotEnabled, NotFound, PeerError, RemoteError
from fluxnode.core.status import PeerSummary
from fluxnode.p2p.bitswap import Bitswap, BitswapLimits
from fluxnode.p2p.bridge import Request, ServiceIO
from fluxnode.p2p.dht import Dht
from fluxnode.p2p.gossip import Gossip, GossipSettings
from fluxnode.p2p.identity import key_pair_from_private_key
from fluxnode.p2p.messages import (
    BitswapFetch,
    Challenge,
    ChallengeOutcome,
    ChallengeResult,
    Connect,
    DhtGet,
    DhtPut,
    FetchWorld,
    FindProviders,
    GetBlock,
    GossipPeers,
    HostInfo,
    Info,
    Peers,
    Ping,
    PingResult,
    Provide,
    Provider,
    Publish,
    PutBlock,
    ServeBlock,
    SessionLinkStats,
    SessionLinkStatus,
    SessionSend,
)
from fluxnode.p2p.session_frames import SessionLinkLimits
from fluxnode.p2p.session_link import SessionLink

log = logging.getLogger("fluxnode.p2p.host")

MAX_PING_COUNT = 100
MAX_CHALLENGE_DEPTH = 32
CHALLENGE_TIMEOUT_S = 10.0
#: Upper bound on how long the bootstrap loop sleeps between checks for dropped peers.
BOOTSTRAP_TICK_S = 1.0
#: Longest the host spends closing its connections when it stops.
CLOSE_GRACE_S = 2.0
#: Longest Bitswap waits for the node to read, store or judge one block.
BLOCK_ASK_S = 30.0


@dataclass(frozen=True)
class HostSettings:
    private_key: bytes
    listen: tuple[str, ...]
    bootstrap: tuple[str, ...] = ()
    dial_timeout_s: float = 10.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    #: Run Bitswap on the node's block store (asked for through the bridge).
    bitswap: bool = False
    bitswap_limits: BitswapLimits | None = None
    #: Gossipsub topics (None: no pubsub at all).
    gossip: GossipSettings | None = None
    #: Run a Kademlia DHT server (provide / find providers / records).
    dht: bool = False
    #: SQLite file for the peer store (addresses, protocols, keys of peers met), so a restarted
    #: node still knows its peers; None keeps it in memory.
    peerstore_path: str | None = None
    #: DHT record namespaces the node validates (through `ValidateDhtRecord` asks).
    dht_namespaces: tuple[str, ...] = ()
    #: Serve and use `/flux/session/1`, the direct streams between members of a live instance.
    session_link: bool = False
    session_limits: SessionLinkLimits | None = None


class AskedBlocks:
    """Bitswap's `BlockAccess`, answered by the node's one store on the asyncio side."""

    def __init__(self, io: ServiceIO) -> None:
        self._io = io

    async def get_block(self, cid: Cid) -> bytes | None:
        return await self._io.ask(GetBlock(cid), BLOCK_ASK_S)

    async def put_block(self, cid: Cid, data: bytes) -> None:
        await self._io.ask(PutBlock(cid, data), BLOCK_ASK_S)

    async def serve_block(self, cid: Cid) -> bytes | None:
        return await self._io.ask(ServeBlock(cid), BLOCK_ASK_S)


def security_options(key_pair: Any) -> dict[Any, Any]:
    """Noise only. Passing this explicitly is what turns plaintext and secio off."""
    noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
    return {NOISE_PROTOCOL: noise}


def muxer_options() -> dict[Any, Any]:
    # Dict order is preference order: yamux first, mplex for peers that lack it.
    return {**create_yamux_muxer_option(), **create_mplex_muxer_option()}


def build_host(settings: HostSettings) -> IHost:
    key_pair = key_pair_from_private_key(settings.private_key)
    peerstore = None
    if settings.peerstore_path is not None:
        from libp2p.peer.persistent.factory import create_sync_sqlite_peerstore

        peerstore = create_sync_sqlite_peerstore(settings.peerstore_path)
    return new_host(
        key_pair=key_pair,
        peerstore_opt=peerstore,
        sec_opt=security_options(key_pair),
        muxer_opt=muxer_options(),
        listen_addrs=[multiaddr.Multiaddr(a) for a in settings.listen],
    )


class HostService:
    """Owns one libp2p host for the life of the bridge."""

    def __init__(self, settings: HostSettings) -> None:
        self._settings = settings
        self._host: IHost | None = None
        self.bitswap: Bitswap | None = None
        self._gossip: Gossip | None = None
        self._dht: Dht | None = None
        self._link: SessionLink | None = None
        self._schedule = DialSchedule(settings.bootstrap, settings.backoff, random.random)
        self._bootstrap_peer = {
            a: str(info_from_p2p_addr(multiaddr.Multiaddr(a)).peer_id) for a in settings.bootstrap
        }
        self._handlers: dict[type[Request[Any]], Callable[[Any], Awaitable[object]]] = {
            Info: self._on_info,
            Peers: self._on_peers,
            Ping: self._on_ping,
            Connect: self._on_connect,
            Publish: self._on_publish,
            GossipPeers: self._on_gossip_peers,
            BitswapFetch: self._on_bitswap_fetch,
            Provide: self._on_provide,
            FindProviders: self._on_find_providers,
            DhtPut: self._on_dht_put,
            DhtGet: self._on_dht_get,
            FetchWorld: self._on_fetch_world,
            Challenge: self._on_challenge,
            SessionSend: self._on_session_send,
            SessionLinkStatus: self._on_session_link_status,
        }

    async def serve(self, io: ServiceIO) -> None:
        host = build_host(self._settings)
        self._host = host
        listen = [multiaddr.Multiaddr(a) for a in self._settings.listen]
        async with host.run(listen_addrs=listen):
            if self._settings.bitswap:
                self.bitswap = Bitswap(host, io, AskedBlocks(io), self._settings.bitswap_limits)
                self.bitswap.start()
            if self._settings.session_link:
                self._link = SessionLink(host, io, self._settings.session_limits)
                self._link.start()
            io.ready(self._info())
            if self._settings.bootstrap:
                io.start_soon(self._bootstrap_loop, io)
            if self._settings.dht:
                self._dht = Dht(host, io, namespaces=self._settings.dht_namespaces)
                io.start_soon(self._dht.run)
            if self._settings.gossip is not None:
                self._gossip = Gossip(host, io, self._settings.gossip)
                io.start_soon(self._gossip.run)
            try:
                await io.sleep_forever()
            finally:
                with io.shielded(CLOSE_GRACE_S):
                    await self._close_connections(host)

    @staticmethod
    async def _close_connections(host: IHost) -> None:
        """Close every connection's socket, so peers see us go now.

        py-libp2p's `run()` only cancels its tasks when stopped, and its connection close path
        is cancelled with them: the sockets stayed open, and peers saw us connected, until the
        host object was collected. The socket (under the muxer) is closed directly: the
        muxer's own close sleeps 0.1 s per connection, too long for a node with many peers,
        and a peer sees the same end of stream as when a node process exits."""
        for conns in list(host.get_network().connections.values()):
            for conn in list(conns):
                muxed = conn.muxed_conn
                try:
                    await getattr(muxed, "secured_conn", muxed).close()
                except Exception as exc:  # closing anyway: a failure here changes nothing
                    log.debug("closing a connection on shutdown failed: %s", exc)

    async def handle(self, request: Request[Any]) -> object:
        handler = self._handlers.get(type(request))
        if handler is None:
            raise BadRequest(f"unknown host request {type(request).__name__}")
        return await handler(request)

    # -- handlers, one per request type ----------------------------------------------------------
    async def _on_info(self, _request: Info) -> HostInfo:
        return self._info()

    async def _on_peers(self, _request: Peers) -> tuple[PeerSummary, ...]:
        return self._peers()

    async def _on_ping(self, request: Ping) -> PingResult:
        return await self._ping(request.peer, request.count)

    async def _on_connect(self, request: Connect) -> str:
        return await self._connect(request.addr)

    async def _on_publish(self, request: Publish) -> None:
        await self._require_gossip().publish(request.topic, request.data)

    async def _on_gossip_peers(self, request: GossipPeers) -> tuple[str, ...]:
        return self._require_gossip().peers(request.topic)

    async def _on_bitswap_fetch(self, request: BitswapFetch) -> int:
        return await self._bitswap_fetch(request.root, list(request.addrs))

    async def _on_provide(self, request: Provide) -> bool:
        return await self._require_dht().provide(request.cid)

    async def _on_find_providers(self, request: FindProviders) -> tuple[Provider, ...]:
        return await self._require_dht().find_providers(request.cid)

    async def _on_dht_put(self, request: DhtPut) -> None:
        await self._require_dht().put_value(request.key, request.value)

    async def _on_dht_get(self, request: DhtGet) -> bytes | None:
        return await self._require_dht().get_value(request.key)

    async def _on_fetch_world(self, request: FetchWorld) -> int:
        return await self._fetch_world(request.cid, list(request.hints))

    async def _on_challenge(self, request: Challenge) -> ChallengeResult:
        return await self._challenge(request.cid, request.peer, request.seed)

    async def _on_session_send(self, request: SessionSend) -> None:
        await self._require_link().send(request.peer, request.frames)

    async def _on_session_link_status(self, _request: SessionLinkStatus) -> SessionLinkStats:
        return self._require_link().statistics()

    # -- operations ----------------------------------------------------------------------------
    def _require_link(self) -> SessionLink:
        if self._link is None:
            raise NotEnabled("the session link is not enabled on this node")
        return self._link

    def _require_gossip(self) -> Gossip:
        if self._gossip is None:
            raise NotEnabled("gossip is not enabled on this node")
        return self._gossip

    def _require_host(self) -> IHost:
        if self._host is None:
            raise PeerError("host is not running")
        return self._host

    def _info(self) -> HostInfo:
        host = self._require_host()
        return HostInfo(str(host.get_id()), tuple(str(a) for a in host.get_addrs()))

    def _peers(self) -> tuple[PeerSummary, ...]:
        host = self._require_host()
        store = host.get_peerstore()
        out = []
        for pid in host.get_connected_peers():
            try:
                addrs = tuple(str(a) for a in store.addrs(pid))
            except Exception:  # py-libp2p raises PeerStoreError for peers without addresses
                addrs = ()
            out.append(PeerSummary(str(pid), addrs))
        return tuple(sorted(out, key=lambda p: p.peer_id))

    async def _ping(self, peer: str, count: int) -> PingResult:
        if not 1 <= count <= MAX_PING_COUNT:
            raise BadRequest(f"ping count must be 1..{MAX_PING_COUNT}, got {count}")
        try:
            peer_id = ID.from_base58(peer)
        except Exception as exc:
            raise BadRequest(f"not a peer ID: {peer!r}") from exc
        host = self._require_host()
        rtts: list[float] = []
        try:
            with ServiceIO.fail_after(self._settings.dial_timeout_s + count):
                stream = await host.new_stream(peer_id, [PING_PROTOCOL])
                try:
                    for _ in range(count):
                        start = time.perf_counter()
                        await perform_ping_roundtrip(stream)
                        rtts.append((time.perf_counter() - start) * 1000.0)
                finally:
                    await stream.close()
        except (BadRequest, PeerError):
            raise
        except Exception as exc:
            raise PeerError(f"ping {peer} failed: {exc}") from exc
        return PingResult(peer, tuple(rtts))

    async def _connect(self, addr: str) -> str:
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        except Exception as exc:
            raise BadRequest(f"not a dialable multiaddr with /p2p/: {addr!r}") from exc
        host = self._require_host()
        try:
            with ServiceIO.fail_after(self._settings.dial_timeout_s):
                await host.connect(info)
        except Exception as exc:
            raise PeerError(f"dial {addr} failed: {exc}") from exc
        return str(info.peer_id)

    def _require_dht(self) -> Dht:
        if self._dht is None:
            raise NotEnabled("the DHT is not enabled on this node")
        return self._dht

    def _require_bitswap(self) -> Bitswap:
        if self.bitswap is None:
            raise NotEnabled("bitswap is off on this node")
        return self.bitswap

    async def _fetch_world(self, cid: Cid, hints: list[str]) -> int:
        """Fetch a whole DAG from the hinted peers (connected ones) and the DHT's providers."""
        bitswap = self._require_bitswap()
        host = self._require_host()
        connected = {str(p) for p in host.get_connected_peers()}
        peers = [h for h in hints if h in connected]
        if self._dht is not None:
            for provider in await self._dht.find_providers(cid):
                if provider.peer_id in peers:
                    continue
                if provider.peer_id not in connected and provider.addrs:
                    try:
                        await self._connect(
                            f"{provider.addrs[0]}/p2p/{provider.peer_id}"
                            if "/p2p/" not in provider.addrs[0]
                            else provider.addrs[0]
                        )
                    except PeerError:
                        continue
                peers.append(provider.peer_id)
        if not peers:
            raise PeerError(f"nobody to fetch {cid} from (no hint connected, no DHT provider)")
        return await bitswap.fetch_dag(cid, peers)

    async def _challenge(self, root: Cid, peer: str, seed: int) -> ChallengeResult:
        """Walk a random root-to-leaf path of `root`, every block from `peer` only.

        Only the peer's own failings count as FAILED: a DONT_HAVE, or silence past the
        deadline while it stays connected. Not reaching it, losing the connection or a DAG that
        is not what we expected teach nothing about the peer (INCONCLUSIVE). Our own errors are
        raised, never blamed on the peer."""
        bitswap = self._require_bitswap()
        try:
            peer_id = ID.from_base58(peer)
        except Exception as exc:
            raise BadRequest(f"not a peer ID: {peer!r}") from exc
        if not await self._reach(peer_id):
            return ChallengeResult(ChallengeOutcome.INCONCLUSIVE, f"could not connect to {peer}")
        rng = random.Random(seed)
        cid = root
        try:
            for _ in range(MAX_CHALLENGE_DEPTH):
                data = await bitswap.fetch_block(
                    cid, [peer], timeout_s=CHALLENGE_TIMEOUT_S, remote_only=True
                )
                if cid.codec != DAG_PB:
                    break
                links = decode_node(data).links
                if not links:
                    break
                cid = rng.choice(links).cid
        except (NotFound, PeerError) as exc:
            if peer_id not in self._require_host().get_connected_peers():
                return ChallengeResult(ChallengeOutcome.INCONCLUSIVE, f"connection lost: {exc}")
            log.info("challenge of %s for %s failed: %s", peer, root, exc)
            return ChallengeResult(ChallengeOutcome.FAILED, str(exc))
        except RemoteError as exc:  # the bytes matched their CID: the DAG itself is odd
            return ChallengeResult(ChallengeOutcome.INCONCLUSIVE, f"unexpected block: {exc}")
        return ChallengeResult(ChallengeOutcome.PASSED)

    async def _reach(self, peer_id: ID) -> bool:
        """Connected to `peer_id`, dialling its known addresses if need be."""
        host = self._require_host()
        if peer_id in host.get_connected_peers():
            return True
        try:
            addrs = host.get_peerstore().addrs(peer_id)
            with ServiceIO.fail_after(self._settings.dial_timeout_s):
                await host.connect(PeerInfo(peer_id, addrs))
        except Exception as exc:  # no address, refused, timed out: all the same here
            log.info("challenge: cannot reach %s: %s", peer_id, exc)
            return False
        return True

    async def _bitswap_fetch(self, root: Cid, addrs: list[str]) -> int:
        bitswap = self._require_bitswap()
        peers = [await self._connect(a) for a in addrs]
        return await bitswap.fetch_dag(root, peers)

    # -- bootstrap -----------------------------------------------------------------------------
    async def _bootstrap_loop(self, io: ServiceIO) -> None:
        host = self._require_host()
        while True:
            now = io.now()
            connected = {str(p) for p in host.get_connected_peers()}
            for addr in self._schedule.connected():
                if self._bootstrap_peer[addr] not in connected:
                    log.info("bootstrap peer dropped, redialling: %s", addr)
                    self._schedule.disconnected(addr, now)
            for addr in self._schedule.due(now):
                if self._bootstrap_peer[addr] in connected:
                    self._schedule.dial_succeeded(addr)  # it dialled us first
                else:
                    io.start_soon(self._dial_bootstrap, io, addr)
            wake = self._schedule.next_wakeup(now)
            await io.sleep(
                BOOTSTRAP_TICK_S if wake is None else min(BOOTSTRAP_TICK_S, max(0.01, wake - now))
            )

    async def _dial_bootstrap(self, io: ServiceIO, addr: str) -> None:
        # py-libp2p's swarm refuses, for 60 s, any peer whose addresses all failed once (its
        # "negative cache"). Our schedule owns the backoff, so lift that block before each try;
        # otherwise a bootstrap peer that comes up late stays unreachable for a minute.
        network = self._require_host().get_network()
        unblock = getattr(network, "unblock_peer", None)
        if unblock is not None:
            unblock(ID.from_base58(self._bootstrap_peer[addr]))
        try:
            await self._connect(addr)
        except PeerError as exc:
            delay = self._schedule.dial_failed(addr, io.now())
            log.warning("bootstrap dial failed, retry in %.1f s: %s", delay, exc)
        else:
            self._schedule.dial_succeeded(addr)
            log.info("connected to bootstrap peer %s", addr)
