"""The light-client API in one process: the real gateway app (GatewayRunner on 127.0.0.1),
`LightNode` over a real `SessionService`, `Admission` with a real `EntryVerifier`, store and
reports store, the real hub; only the libp2p host is a stand-in (a lone node)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from fluxnode.chain.entry import (
    EntryVerifier,
    new_session_key,
    session_public_key,
    sign_session,
    verify_session_signature,
)
from fluxnode.core.cid import Cid
from fluxnode.core.node_metrics import NodeGauges
from fluxnode.core.session.entry import possession_message
from fluxnode.core.session.hub import SessionHub
from fluxnode.core.siwe import NonceBook
from fluxnode.core.world_record import WorldRecord
from fluxnode.gateway import GatewayLimits, GatewayRunner, make_gateway_app
from fluxnode.gateway.api_input import b64url
from fluxnode.node.light_api import LightNode
from fluxnode.node.light_catalog import WorldCatalog
from fluxnode.node.reports_store import ReportsStore
from fluxnode.node.session_entry import Admission
from fluxnode.node.sessions import SessionService
from fluxnode.storage.content import RepoContent
from fluxnode.storage.repo import Repo
from tests.unit.gateway_helpers import FakeNode
from tests.unit.record_samples import new_account, signed

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "hello-world"


class LoneHost:
    """The host of a node with no peers: sends go nowhere; a missing world cannot be fetched."""

    def __init__(self) -> None:
        self.fetches: list[Cid] = []

    async def publish(self, topic: str, data: bytes) -> None:
        return None

    async def session_send(self, peer: str, frames: Any) -> None:
        raise AssertionError("a lone node has no member to send to")

    async def peers(self) -> tuple[()]:
        return ()

    async def fetch_world(self, cid: Cid, hints: Any) -> int:
        from fluxnode.core.errors import PeerError

        self.fetches.append(cid)
        raise PeerError("no peer has it")


class FixedGauges:
    async def gauges(self) -> NodeGauges:
        return NodeGauges(peers=3, pins=2, worlds=2, chain_healthy=True, chain_head=7,
                          bridge_queues={"inbox": 1}, bridge_dropped={"events": 0},
                          node_channels=1)  # fmt: skip


@dataclass
class Stack:
    url: str
    domain: str
    light: LightNode
    service: SessionService
    records: dict[str, WorldRecord]
    by_id: dict[str, WorldRecord]
    reports: ReportsStore
    host: LoneHost
    owner: LocalAccount
    app: web.Application | None = None
    banned: set[tuple[str, str]] = field(default_factory=set)


def free_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


@asynccontextmanager
async def light_stack(tmp_path: Path, limits: GatewayLimits | None = None) -> AsyncIterator[Stack]:
    repo = Repo(tmp_path / "repo")
    cid = repo.add(EXAMPLE, cid_version=1).cid
    owner = new_account()
    now = int(time.time())
    lower = owner.address.lower()
    records = {
        "public": signed(owner, world_id=f"{lower}/hello", cid=str(cid), issued_at=now - 100),
        "private": signed(owner, world_id=f"{lower}/secret", cid=str(cid),
                          visibility="private", issued_at=now - 50),
        # Its content is not in the store: its summary cannot be had, nor can it be joined.
        "absent": signed(owner, world_id=f"{lower}/absent", issued_at=now - 10),
    }  # fmt: skip
    by_id = {r.world_id: r for r in records.values()}
    port = free_port()
    domain = f"127.0.0.1:{port}"
    verifier = EntryVerifier(
        domain=domain, chain_id=80002, uri_prefix=f"http://{domain}", nonces=NonceBook()
    )
    host = LoneHost()
    admission = Admission(
        node="node-a", verifier=verifier, domain=domain, chain_id=80002,
        uri=f"http://{domain}", repo=repo, host=host,  # type: ignore[arg-type]
        record_of=by_id.get, facts=None, bans_of=lambda w: None, denylist=frozenset(),
        hosts_of=lambda r: ["node-a"],
    )  # fmt: skip
    banned: set[tuple[str, str]] = set()
    hub = SessionHub(
        "node-a",
        verify_session=verify_session_signature,
        is_banned=lambda w, a: (w, a.lower()) in banned,
        max_visitors=50,
        gateway_url=f"http://{domain}",
    )
    service = SessionService(hub, admission, host)  # type: ignore[arg-type]
    reports = ReportsStore(tmp_path / "reports.db", per_reporter=3)
    service.report_sink = reports
    catalog = WorldCatalog(
        records=lambda: list(by_id.values()), record_of=by_id.get, admission=admission, hub=hub
    )
    light = LightNode(service, catalog, reports)
    app = make_gateway_app(
        FakeNode(), RepoContent(repo), limits, sessions=service, light=light,
        metrics=FixedGauges(),
    )  # fmt: skip
    runner = GatewayRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    task = asyncio.create_task(service.run())
    stack = Stack(f"http://{domain}", domain, light, service, records, by_id, reports, host, owner)
    stack.banned = banned
    stack.app = app
    try:
        yield stack
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await light.aclose()
        await runner.cleanup()
        await reports.aclose()


@dataclass
class Wallet:
    account: LocalAccount
    key: Ed25519PrivateKey

    @property
    def session_key(self) -> bytes:
        return session_public_key(self.key)

    @classmethod
    def new(cls) -> Wallet:
        return cls(Account.create(), new_session_key())


async def challenge(http: aiohttp.ClientSession, url: str, w: Wallet) -> dict[str, Any]:
    body = {"session_key": b64url(w.session_key), "address": w.account.address}
    async with http.post(url + "/api/auth/challenge", json=body) as resp:
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        return data


def verify_body(w: Wallet, ch: dict[str, Any]) -> dict[str, Any]:
    """What a wallet and its session key send back for challenge `ch`."""
    sig = w.account.sign_message(encode_defunct(text=ch["message"])).signature
    raw = ch["challenge"] + "=" * (-len(ch["challenge"]) % 4)
    import base64

    challenge_bytes = base64.urlsafe_b64decode(raw)
    possession = sign_session(w.key, possession_message(challenge_bytes))
    return {
        "message": ch["message"],
        "signature": "0x" + bytes(sig).hex(),
        "session_key": b64url(w.session_key),
        "possession_signature": b64url(possession),
    }


async def sign_in(http: aiohttp.ClientSession, url: str, w: Wallet) -> str:
    ch = await challenge(http, url, w)
    async with http.post(url + "/api/auth/verify", json=verify_body(w, ch)) as resp:
        assert resp.status == 200, await resp.text()
        token: str = (await resp.json())["token"]
        return token


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
