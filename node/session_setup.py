"""Building the live-session service of a running node from its config and its other parts."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from fluxnode.chain.entry import EntryVerifier, verify_session_signature
from fluxnode.chain.nonce_store import SqliteNonceBook
from fluxnode.core.access import ChainFacts
from fluxnode.core.session.frames import RtcConfig
from fluxnode.core.session.hub import SessionHub
from fluxnode.core.world_record import WorldRecord
from fluxnode.node.config import Config
from fluxnode.node.light_api import LightNode
from fluxnode.node.light_catalog import WorldCatalog
from fluxnode.node.rtc_loopback import mesh_fail_for
from fluxnode.node.session_entry import Admission
from fluxnode.node.session_rtc import CONNECT_TIMEOUT_S
from fluxnode.node.sessions import SessionService
from fluxnode.p2p import HostClient
from fluxnode.storage.repo import Repo

if TYPE_CHECKING:
    from fluxnode.node.chain_setup import ChainParts
    from fluxnode.node.hosting import Hosting
    from fluxnode.node.moderation import Moderation
    from fluxnode.node.worlds import WorldDirectory

NONCES_DB = "nonces.db"


def session_domain(cfg: Config, gateway_url: str | None) -> str:
    """The SIWE domain visitors sign for: `session.domain`, else the gateway's HOST:PORT as
    bound (`gateway_url`: a configured port 0 is known only then), else as configured (no
    gateway: no visitors, so it names nothing anyone signs)."""
    if cfg.session.domain:
        return cfg.session.domain
    if gateway_url is not None:
        return gateway_url.split("://", 1)[1].rstrip("/")
    return str(cfg.gateway.listen)


def build_sessions(
    cfg: Config,
    *,
    me: str,
    host: HostClient,
    repo: Repo,
    worlds: WorldDirectory,
    hosting: Hosting | None,
    chain: ChainParts | None,
    moderation: Moderation,
    gateway_url: str | None,
) -> SessionService:
    is_valid_1271 = None
    if chain is not None:
        from fluxnode.chain.siwe_verify import eip1271_checker

        is_valid_1271 = eip1271_checker(chain.pool.call)
    nonces = SqliteNonceBook(cfg.data_dir / NONCES_DB)
    domain = session_domain(cfg, gateway_url)
    uri = gateway_url or f"http://{domain}"
    verifier = EntryVerifier(
        domain=domain,
        chain_id=cfg.chain.chain_id,
        uri_prefix=uri,
        nonces=nonces,
        is_valid_1271=is_valid_1271,
    )

    facts = None
    owns_item = None
    if chain is not None:
        oracle, index, items = chain.oracle, chain.index, chain.contracts.items

        def owns(address: str, token_id: int) -> bool:
            return index.balance(items, address, token_id) > 0

        owns_item = owns

        async def chain_facts(record: WorldRecord, address: str) -> ChainFacts | None:
            return await oracle.facts(record.ref, record.access_rule(), address)

        facts = chain_facts

    def hosts_of(record: WorldRecord) -> Iterable[str]:
        cid = str(record.cid)
        found = set()
        if hosting is not None:
            found = {r.peer_id for r in hosting.table.live(time.time()) if cid in r.cids}
        if repo.is_servable(record.cid):
            found.add(me)
        return found

    admission = Admission(
        node=me,
        verifier=verifier,
        domain=domain,
        chain_id=cfg.chain.chain_id,
        uri=uri,
        repo=repo,
        host=host,
        record_of=worlds.book.get,
        facts=facts,
        bans_of=moderation.bans.get,
        denylist=moderation.denied,
        hosts_of=hosts_of,
        owns_item=owns_item,
    )
    hub = SessionHub(
        me,
        verify_session=verify_session_signature,
        is_banned=moderation.bans.is_banned,
        max_visitors=cfg.session.max_visitors,
        gateway_url=gateway_url,
        tick_hz=float(cfg.session.tick_hz),
        rtc=RtcConfig(cfg.webrtc.ice_servers) if cfg.webrtc.enabled else None,
        mesh_fail_for=mesh_fail_for(),  # FAIL_FOR but in tests
    )
    service = SessionService(hub, admission, host)
    service.rtc.configure(  # the node's own data channels use the ICE servers clients are told
        ice_servers=cfg.webrtc.ice_servers,
        max_channels=cfg.webrtc.max_node_channels if cfg.webrtc.enabled else 0,
        connect_timeout_s=CONNECT_TIMEOUT_S,
    )
    service.report_sink = moderation.reports
    service.closers.append(nonces.close)
    return service


def build_light(
    service: SessionService, worlds: WorldDirectory, moderation: Moderation
) -> LightNode:
    """The gateway's light-client API (`fluxnode.core.light_api.LightApi`) over the session
    service: its admission checks, its hub's directory, the moderation's reports store."""
    catalog = WorldCatalog(
        records=worlds.book.records,
        record_of=worlds.book.get,
        admission=service.admission,
        hub=service.hub,
    )
    return LightNode(service, catalog, moderation.reports)
