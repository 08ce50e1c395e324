"""`flux-node run`: wires the p2p bridge, the admin endpoint and the gateway under one TaskGroup.

Shutdown order on SIGINT/SIGTERM: stop accepting HTTP, remove `node.json`, cancel the trio side
and join its thread. A crash on the trio side ends the TaskGroup and the process exits non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from fluxnode import __version__
from fluxnode.core.cid import Cid
from fluxnode.core.denylist import Denylist
from fluxnode.core.errors import BadRequest, ConfigError, FluxError, NotEnabled
from fluxnode.core.status import NodeStatus
from fluxnode.gateway import GatewayLimits, GatewayRunner, make_gateway_app
from fluxnode.node import status_view
from fluxnode.node.admin import make_admin_app, socket_path
from fluxnode.node.answers import NodeAnswers
from fluxnode.node.bans import BANS_TOPIC
from fluxnode.node.chain_setup import ChainParts, follow_chain, open_chain
from fluxnode.node.config import Config
from fluxnode.node.datadir import read_key, remove_node_json, write_node_json
from fluxnode.node.denylist_files import load_denylist
from fluxnode.node.hosting import HOSTING_TOPIC, Hosting
from fluxnode.node.hosting_store import HOSTING_DB, HostingStore
from fluxnode.node.light_api import LightNode
from fluxnode.node.logs import LogFormat
from fluxnode.node.loops import Loops
from fluxnode.node.moderation import Moderation
from fluxnode.node.node_metrics import NodeMetrics
from fluxnode.node.progress import FetchMeter, StatusLine
from fluxnode.node.session_setup import build_light, build_sessions
from fluxnode.node.sessions import INSTANCES_TOPIC, SessionService
from fluxnode.node.worlds import DHT_NAMESPACE, WORLDS_TOPIC, WorldDirectory, dht_key
from fluxnode.node.worldstore import WORLDS_DB, WorldStore
from fluxnode.p2p import HostClient, HostInfo, HostSettings
from fluxnode.p2p.gossip import GossipSettings
from fluxnode.p2p.messages import GossipMessage, SessionFrame, SessionPeerDown
from fluxnode.storage.content import RepoContent
from fluxnode.storage.repo import Repo

log = logging.getLogger("fluxnode.node")

#: Seconds the trio side gets to stop before we give up waiting: a stop must stay under 2 s.
SHUTDOWN_GRACE_S = 1.5
#: Seconds a stopping node lets announcements still in flight finish before cancelling them.
ANNOUNCE_GRACE_S = 0.3
#: Worlds whose DHT announcements may run at once (each a put and a provide).
MAX_ANNOUNCING = 4


@dataclass
class AnnounceStats:
    """The best-effort DHT work after a publication (record put, CID provide)."""

    started: int = 0
    done: int = 0
    #: DHT operations that raised (one announcement can count two: put and provide).
    failed: int = 0
    #: Announcements still running or queued when the node stopped.
    cancelled: int = 0
    #: Records replaced by a newer one of their world before their announcement began.
    superseded: int = 0
    last_error: str | None = None


class Node:
    """The running node: implements `NodeApi` (gateway) and `AdminBackend` (admin socket)."""

    def __init__(
        self, cfg: Config, host: HostClient, info: HostInfo, chain: ChainParts | None
    ) -> None:
        self.cfg = cfg
        self.host = host
        self.info = info
        self.started = time.monotonic()
        self.gateway_url: str | None = None
        self.chain = chain
        oracle = chain.oracle if chain is not None else None
        self.worlds = WorldDirectory(
            oracle=oracle,
            own_peer_id=info.peer_id,
            store=WorldStore(cfg.data_dir / WORLDS_DB),
        )
        self.hosting: Hosting | None = None
        #: The node's one store (set by `run_node`); status reports its size.
        self.repo: Repo | None = None
        self.sessions: SessionService | None = None
        self.loops = Loops()
        self.announce = AnnounceStats()
        #: The node's TaskGroup, once `run_node` has entered it; owns the announcements.
        self.tasks: asyncio.TaskGroup | None = None
        #: Per world: the newest record still to announce, and the task announcing it.
        self._announce_next: dict[str, tuple[bytes, Cid]] = {}
        self._announcers: dict[str, asyncio.Task[None]] = {}
        self._announce_slots = asyncio.Semaphore(MAX_ANNOUNCING)
        # -- moderation: bans, the operator's address denylist, reports (node.moderation) --
        self.moderation = Moderation(
            cfg, oracle=oracle, own_peer_id=info.peer_id, publish=host.publish
        )

    async def reports(self, world_id: str | None, limit: int) -> list[dict[str, Any]]:
        return await self.moderation.report_list(world_id, limit)

    async def publish_bans(self, ban_list_wire: bytes) -> dict[str, Any]:
        return await self.moderation.publish_bans(ban_list_wire)

    async def ban_list(self, world_id: str) -> dict[str, Any] | None:
        return self.moderation.ban_list(world_id)

    async def publish(self, record_wire: bytes) -> dict[str, Any]:
        """Store and gossip `record_wire`, then answer. The DHT put and provide are best effort
        (gossip already carried the record; the DHT serves nodes that join later) and can take
        seconds with few peers, so they run in the background, owned by the node's TaskGroup:
        one worker per world, at most MAX_ANNOUNCING at a time. A record that a newer one of
        its world replaces before its turn is not announced (the DHT keeps the highest seq)."""
        record = await self.worlds.publish_local(record_wire)
        wire = record.to_wire()
        await self.host.publish(WORLDS_TOPIC, wire)
        world_id = record.world_id
        if world_id in self._announce_next:
            self.announce.superseded += 1
        self._announce_next[world_id] = (wire, record.cid)
        if world_id not in self._announcers:  # else its worker picks the newest up
            work = self._announce_world(world_id)
            try:
                if self.tasks is None:
                    raise RuntimeError("no TaskGroup yet")
                task = self.tasks.create_task(work)
            except RuntimeError:
                # Outside the TaskGroup's life (the admin socket opens before it and closes
                # after it): nothing could own a task, so the announcement is done first.
                work.close()
                await self._announce_world(world_id, register=False)
            else:
                self._announcers[world_id] = task
                task.add_done_callback(self._forget_announcer)
        return {"world_id": world_id, "cid": str(record.cid), "seq": record.seq}

    def _forget_announcer(self, task: asyncio.Task[None]) -> None:
        """For a worker cancelled before it ever ran (its `finally` never did)."""
        for world_id, worker in list(self._announcers.items()):
            if worker is task:
                del self._announcers[world_id]

    async def _announce_world(self, world_id: str, *, register: bool = True) -> None:
        try:
            async with self._announce_slots:
                while (item := self._announce_next.pop(world_id, None)) is not None:
                    await self._announce(world_id, *item)
        finally:
            # No await between the last empty pop and this: a publish that comes later
            # finds no worker and starts one, so nothing queued is left behind.
            if register:
                self._announcers.pop(world_id, None)

    async def _announce(self, world_id: str, wire: bytes, cid: Cid) -> None:
        stats = self.announce
        stats.started += 1
        try:
            for what, op in (
                ("DHT put", lambda: self.host.dht_put(dht_key(world_id), wire)),
                ("provide", lambda: self.host.provide(cid)),
            ):
                try:
                    await op()
                except Exception as exc:  # FluxError, or a bug: counted, never fatal here
                    stats.failed += 1
                    stats.last_error = f"{what} {world_id}: {exc}"
                    log.log(
                        logging.INFO if isinstance(exc, FluxError) else logging.ERROR,
                        "%s of %s failed: %s",
                        what,
                        world_id,
                        exc,
                        exc_info=not isinstance(exc, FluxError),
                    )
            stats.done += 1
        except asyncio.CancelledError:
            stats.cancelled += 1
            raise

    async def wait_announced(self, grace_s: float = ANNOUNCE_GRACE_S) -> None:
        """Let the announcements in flight finish for `grace_s`, then cancel the rest; returns
        when every one has ended (so none outlives the host it calls)."""
        pending = set(self._announcers.values())
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=grace_s)
        for task in late:
            task.cancel()
        self.announce.cancelled += len(self._announce_next)  # queued, never started
        self._announce_next.clear()
        await asyncio.gather(*pending, return_exceptions=True)

    async def world_list(self) -> list[dict[str, Any]]:
        return self.worlds.listing()

    async def status(self) -> NodeStatus:
        peers = await self.host.peers()
        info = await self.host.info()
        return NodeStatus(
            peer_id=info.peer_id,
            addrs=info.addrs,
            version=__version__,
            uptime_s=time.monotonic() - self.started,
            peers=peers,
            gateway_url=self.gateway_url,
        )

    async def status_json(self) -> dict[str, Any]:
        return await status_view.gather(self)

    async def session_silence(self, visitor: str, on: bool) -> dict[str, Any]:
        """The operator silences a visitor in this node's mesh plans (`flux-node session
        silence`); the next plan check sends the changed plans."""
        from fluxnode.core.session.visitors import session_key_of

        if self.sessions is None:
            raise NotEnabled("this node hosts no live sessions")
        if session_key_of(visitor) is None:
            raise BadRequest(f"{visitor[:60]!r} is not a visitor id (a session key's text)")
        self.sessions.hub.silence(visitor, on, time.time())
        return {"visitor": visitor, "silenced": on}

    async def ping(self, peer: str, count: int) -> dict[str, Any]:
        result = await self.host.ping(peer, count)
        return {"peer_id": result.peer_id, "rtts_ms": list(result.rtts_ms)}

    async def connect(self, addr: str) -> str:
        return await self.host.connect(addr)


async def _start_site(
    runner: web.AppRunner, site_factory: Callable[[web.AppRunner], web.BaseSite]
) -> web.BaseSite:
    await runner.setup()
    site = site_factory(runner)
    await site.start()
    return site


async def run_node(cfg: Config, denylist: Denylist | None = None) -> int:
    """Run until SIGINT/SIGTERM. Returns the process exit code. `denylist`: the one the CLI
    already loaded while checking the configuration (a big list takes seconds to parse)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # py-libp2p burns CPU in its own thread; a short switch interval keeps asyncio responsive.
    sys.setswitchinterval(0.0005)

    # Before any network starts: a bad denylist stops the node (ConfigError, exit code 2).
    if denylist is None:
        denylist = load_denylist(cfg)
    repo = Repo(cfg.data_dir, quota_bytes=cfg.storage.max_bytes, denylist=denylist)
    topics = (WORLDS_TOPIC, HOSTING_TOPIC, BANS_TOPIC, INSTANCES_TOPIC)
    settings = HostSettings(
        private_key=read_key(cfg.identity.key_file),
        listen=cfg.network.listen,
        bootstrap=cfg.network.bootstrap,
        dial_timeout_s=cfg.network.dial_timeout_s,
        gossip=GossipSettings(topics=topics, validated_topics=topics),
        bitswap=True,
        dht=True,
        peerstore_path=str(cfg.data_dir / "peers.db"),
        dht_namespaces=(DHT_NAMESPACE,),
        session_link=True,
    )
    # The host asks these for validation and for blocks: the node's one store, off the loop.
    answers = NodeAnswers(repo)
    host = HostClient(settings, answers)
    runners: list[web.AppRunner] = []
    stores: list[WorldStore | HostingStore | Moderation | SessionService | LightNode] = []
    chain = open_chain(cfg, required=False)
    try:
        info = await host.start()
        node = Node(cfg, host, info, chain)
        node.repo = repo
        if node.worlds.store is not None:
            stores.append(node.worlds.store)
        # Before any record is validated (gossip is refused until `answers.worlds` is set):
        # a restart must know every world it had, or it would accept an older seq of one.
        await node.worlds.load()
        stores.append(node.moderation)
        await node.moderation.load()  # like the worlds: before any ban list is validated
        answers.bans = node.moderation.bans
        hosting_service = Hosting(
            me=info.peer_id,
            host=host,
            repo=repo,
            worlds=node.worlds,
            policy=cfg.hosting.policy,
            interval_s=cfg.hosting.interval_s,
            store=HostingStore(cfg.data_dir / HOSTING_DB),
        )
        node.hosting = hosting_service
        if hosting_service.store is not None:
            stores.append(hosting_service.store)
        await hosting_service.load_state()
        hosting_service.fetch_meter = _fetch_meter(cfg)
        answers.on_fetched = hosting_service.fetch_meter.block
        answers.hosting = hosting_service
        answers.worlds = node.worlds  # from here on gossip is validated, not refused

        admin_runner = web.AppRunner(make_admin_app(node), access_log=None)
        runners.append(admin_runner)
        sock = socket_path(cfg.data_dir)
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()  # left by a killed node; we hold the run lock, so it is ours
        await _start_site(admin_runner, lambda r: web.UnixSite(r, str(sock)))
        os.chmod(sock, 0o600)

        # The gateway's socket is bound first: the sessions' sign-in domain is its real port.
        gw_sock = _bind_gateway(cfg) if cfg.gateway.enabled else None
        if gw_sock is not None:
            node.gateway_url = _socket_url(gw_sock, cfg)
        sessions = build_sessions(
            cfg,
            me=info.peer_id,
            host=host,
            repo=repo,
            worlds=node.worlds,
            hosting=hosting_service,
            chain=chain,
            moderation=node.moderation,
            gateway_url=node.gateway_url,
        )
        node.sessions = sessions
        stores.append(sessions)
        answers.sessions = sessions  # directory gossip is validated from here on

        if gw_sock is not None:
            light = build_light(sessions, node.worlds, node.moderation)
            stores.append(light)
            gauges = NodeMetrics(
                host=host, repo=repo, worlds=lambda: len(node.worlds.book), hub=sessions.hub,
                chain=chain, channels=sessions.rtc.peer_connections,
            )  # fmt: skip
            limits = GatewayLimits(
                cors_origins=cfg.gateway.cors_origins,
                ip_rate=cfg.gateway.ip_rate,
                ip_burst=cfg.gateway.ip_burst,
            )
            app = make_gateway_app(
                node, RepoContent(repo), limits, sessions=sessions, light=light, metrics=gauges
            )
            gw_runner = GatewayRunner(app, access_log=None)
            runners.append(gw_runner)
            await _start_site(gw_runner, lambda r: web.SockSite(r, gw_sock))

        write_node_json(
            cfg.data_dir,
            {
                "peer_id": info.peer_id,
                "addrs": list(info.addrs),
                "gateway_url": node.gateway_url,
                "pid": os.getpid(),
            },
        )
        log.info(
            "ready peer_id=%s addrs=%s gateway=%s",
            info.peer_id,
            ",".join(info.addrs),
            node.gateway_url or "off",
        )

        async with asyncio.TaskGroup() as tg:
            node.tasks = tg
            background = [
                tg.create_task(_watch_host(host, stop)),
                tg.create_task(_drain_events(host, sessions)),
                tg.create_task(sessions.run()),
                tg.create_task(hosting_service.run(node.loops)),
            ]
            if chain is not None:
                background.append(
                    tg.create_task(follow_chain(chain, cfg.chain.confirmations, node.loops))
                )
            await stop.wait()
            for task in background:
                task.cancel()
            await node.wait_announced()
        log.info("stopping")
        return 0
    finally:
        remove_node_json(cfg.data_dir)
        for runner in reversed(runners):
            await runner.cleanup()
        with contextlib.suppress(FileNotFoundError, OSError):
            socket_path(cfg.data_dir).unlink()
        try:
            await asyncio.wait_for(host.aclose(), SHUTDOWN_GRACE_S)
        except TimeoutError:
            log.error("p2p thread did not stop within %.1f s", SHUTDOWN_GRACE_S)
        if chain is not None:
            await chain.aclose()
        for store in stores:
            await store.aclose()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _drain_events(host: HostClient, sessions: SessionService) -> None:
    """Consume p2p events. World records were already stored when they were validated, so
    gossip only needs counting; member nodes' session frames go to the session service.
    Consuming events returns credit, so delivery never stalls."""
    async for event in host.events():
        if isinstance(event, SessionFrame):
            await sessions.node_frame(event.peer_id, event.data)
        elif isinstance(event, SessionPeerDown):
            sessions.peer_down(event.peer_id)
        elif isinstance(event, GossipMessage):
            log.debug("gossip on %s from %s", event.topic, event.author)


async def _watch_host(host: HostClient, stop: asyncio.Event) -> None:
    """Raise (ending the TaskGroup) if the trio side crashes; stop if it ends on its own."""
    await host.wait_closed()
    log.error("p2p side stopped unexpectedly")
    stop.set()


def _fetch_meter(cfg: Config) -> FetchMeter:
    """Counts fetched blocks; on a terminal with text logs, a progress line per world fetch
    that log lines print above."""
    if cfg.log.format is not LogFormat.TEXT:
        return FetchMeter()
    line = StatusLine()
    for handler in logging.getLogger().handlers:
        line.keep_below_logs(handler)
    return FetchMeter(line)


def _bind_gateway(cfg: Config) -> socket.socket:
    """A listening socket on the gateway's address (port 0: any free port)."""
    host, port = cfg.gateway.listen.host, cfg.gateway.listen.port
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError("gateway.listen", f"cannot listen on {host}:{port}: {exc}") from None
    return sock


def _socket_url(sock: socket.socket, cfg: Config) -> str:
    """The gateway URL with the real port (the configured one may be 0)."""
    return f"http://{replace(cfg.gateway.listen, port=sock.getsockname()[1])}"
