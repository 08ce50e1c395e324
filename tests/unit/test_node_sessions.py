"""The node's session edge in one process: the real gateway WebSocket, `SessionService`,
`Admission` with a real `EntryVerifier` and store, the real hub; only the libp2p host is a
stand-in (one node: nothing to send to other nodes). Visitors are `fluxnode.client.Visitor`s
or raw WebSocket frames for what a well-behaved client never sends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_account import Account

from fluxnode.chain.entry import EntryVerifier, new_session_key, verify_session_signature
from fluxnode.client import Visitor
from fluxnode.client.events import Closed, PeerJoined, StateChanged
from fluxnode.client.signin import hello_for, wallet_from
from fluxnode.core.cid import Cid
from fluxnode.core.errors import JoinDenied
from fluxnode.core.session import frames as fr
from fluxnode.core.session.hub import SessionHub
from fluxnode.core.session.join import DENIED_BANNED, DENIED_PRIVATE
from fluxnode.core.session.wire import decode, encode
from fluxnode.core.siwe import NonceBook
from fluxnode.gateway import make_gateway_app
from fluxnode.node.session_entry import DENIED_UNKNOWN_WORLD, Admission
from fluxnode.node.sessions import SessionService
from fluxnode.storage.repo import Repo
from tests.unit.gateway_helpers import FakeNode
from tests.unit.record_samples import new_account, signed

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "hello-world"


class LoneHost:
    """The host of a node with no peers: sends go nowhere, nothing is fetched."""

    async def publish(self, topic: str, data: bytes) -> None:
        return None

    async def session_send(self, peer: str, frames: Any) -> None:
        raise AssertionError("a lone node has no member to send to")

    async def peers(self) -> tuple[()]:
        return ()

    async def fetch_world(self, cid: Cid, hints: Any) -> int:
        raise AssertionError("the world is in the store")


class Edge:
    def __init__(self, url: str, service: SessionService, records: dict[str, Any]) -> None:
        self.url, self.service, self.records = url, service, records
        self.banned: set[tuple[str, str]] = set()


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    repo = Repo(tmp_path / "repo")
    cid = repo.add(EXAMPLE, cid_version=1).cid
    owner = new_account()
    now = int(time.time())
    records = {
        "public": signed(owner, world_id=f"{owner.address.lower()}/hello", cid=str(cid),
                         issued_at=now),
        "private": signed(owner, world_id=f"{owner.address.lower()}/secret", cid=str(cid),
                          visibility="private", issued_at=now),
    }  # fmt: skip
    by_id = {r.world_id: r for r in records.values()}
    banned: set[tuple[str, str]] = set()
    port_box: list[int] = []

    async def start() -> AsyncIterator[Edge]:
        # The verifier's domain must be the gateway's host:port, known once it listens: a
        # first app finds a free port, then the real one is served on it.
        import socket

        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        port_box.append(port)
        domain = f"127.0.0.1:{port}"
        verifier = EntryVerifier(
            domain=domain, chain_id=80002, uri_prefix=f"http://{domain}", nonces=NonceBook()
        )
        admission = Admission(
            node="node-a", verifier=verifier, domain=domain, chain_id=80002,
            uri=f"http://{domain}", repo=repo, host=LoneHost(),  # type: ignore[arg-type]
            record_of=by_id.get, facts=None, bans_of=lambda w: None, denylist=frozenset(),
            hosts_of=lambda r: ["node-a"],
        )  # fmt: skip
        hub = SessionHub(
            "node-a",
            verify_session=verify_session_signature,
            is_banned=lambda w, a: (w, a.lower()) in banned,
            max_visitors=50,
            gateway_url=f"http://{domain}",
        )
        service = SessionService(hub, admission, LoneHost())  # type: ignore[arg-type]
        app = make_gateway_app(FakeNode(), sessions=service)
        from aiohttp import web

        from fluxnode.gateway import GatewayRunner

        runner = GatewayRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        task = asyncio.create_task(service.run())
        try:
            e = Edge(f"http://{domain}", service, records)
            e.banned = banned
            yield e
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await runner.cleanup()

    async for e in start():
        yield e


async def raw_session(url: str) -> tuple[aiohttp.ClientSession, Any, fr.Challenge]:
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(url + "/session")
    challenge = decode((await ws.receive()).data)
    assert isinstance(challenge, fr.Challenge)
    return http, ws, challenge


async def next_frame(ws: Any) -> fr.Frame:
    msg = await asyncio.wait_for(ws.receive(), 10)
    assert msg.type is aiohttp.WSMsgType.BINARY, msg
    return decode(msg.data)


async def test_two_visitors_meet_click_and_see_the_same_door(edge: Edge) -> None:
    world = edge.records["public"].world_id
    a_key, b_key = Account.create().key.hex(), Account.create().key.hex()
    manifest = edge.url + f"/api/worlds/{world}/manifest"
    a = await Visitor.connect(edge.url, a_key, world_id=world, manifest=manifest)
    b = await Visitor.connect(edge.url, b_key, world_id=world, manifest=manifest)
    async with a, b:
        assert a.joined is not None and b.joined is not None
        assert a.joined.instance_id == b.joined.instance_id
        assert {a.joined.seat, b.joined.seat} == {0, 1}
        assert b.joined.spawn.position == (0.0, 0.0, 5.0)  # the manifest's spawn point
        seen = await wait_event(a, lambda e: isinstance(e, PeerJoined))
        assert seen.address == b.address
        await b.interact("door-1")
        change = await wait_event(a, lambda e: isinstance(e, StateChanged))
        assert (change.object_id, change.prop, change.value) == ("door-1", "open", True)


async def wait_event(v: Visitor, match: Any) -> Any:
    async def find() -> Any:
        while True:
            event = await v.next_event()
            if match(event):
                return event

    return await asyncio.wait_for(find(), 10)


async def test_a_private_world_refuses_others_with_the_reason(edge: Edge) -> None:
    world = edge.records["private"].world_id
    async with await Visitor.connect(edge.url, Account.create().key.hex()) as v:
        with pytest.raises(JoinDenied) as info:
            await v.join(world)
        assert info.value.reason == DENIED_PRIVATE
        with pytest.raises(JoinDenied) as info:
            await v.join("0x" + "1" * 40 + "/nowhere")
        assert info.value.reason == DENIED_UNKNOWN_WORLD


async def test_a_replayed_hello_is_refused_and_the_first_session_is_unharmed(edge: Edge) -> None:
    key = Account.create().key.hex()
    http, ws, challenge = await raw_session(edge.url)
    try:
        hello = hello_for(wallet_from(key), new_session_key(), challenge, time.time())
        await ws.send_bytes(encode(hello))
        assert isinstance(await next_frame(ws), fr.SignedIn)
        # The same Hello on a new connection: its nonce is spent (and its challenge differs).
        http2, ws2, _ = await raw_session(edge.url)
        try:
            await ws2.send_bytes(encode(hello))
            denied = await next_frame(ws2)
            assert isinstance(denied, fr.Denied) and "nonce_reused" in denied.reason
        finally:
            await http2.close()
        await ws.send_bytes(encode(fr.Join(edge.records["public"].world_id)))
        assert isinstance(await next_frame(ws), fr.Joined)
    finally:
        await http.close()


async def test_frames_before_sign_in_and_garbage_are_refused_without_harm(edge: Edge) -> None:
    http, ws, _challenge = await raw_session(edge.url)
    try:
        await ws.send_bytes(encode(fr.Join(edge.records["public"].world_id)))
        refused = await next_frame(ws)
        assert isinstance(refused, fr.Error) and refused.code == "not_signed_in"
        await ws.send_bytes(b"\xc1 not msgpack")
        bad = await next_frame(ws)
        assert isinstance(bad, fr.Error) and bad.code == "frame_invalid"
    finally:
        await http.close()
    assert edge.service.hub.statistics()["visitors_signed_in"] == 0


async def test_a_hello_signed_for_another_challenge_is_refused(edge: Edge) -> None:
    key = Account.create().key.hex()
    http, ws, _mine = await raw_session(edge.url)
    http2, _ws2, challenge2 = await raw_session(edge.url)
    try:
        # Proof and possession made for the other connection's challenge.
        hello = hello_for(wallet_from(key), new_session_key(), challenge2, time.time())
        await ws.send_bytes(encode(hello))
        denied = await next_frame(ws)
        assert isinstance(denied, fr.Denied) and "entry proof refused" in denied.reason
    finally:
        await http.close()
        await http2.close()


async def test_a_ban_published_mid_session_removes_the_visitor(edge: Edge) -> None:
    world = edge.records["public"].world_id
    key = Account.create().key.hex()
    async with await Visitor.connect(edge.url, key, world_id=world) as v:
        edge.banned.add((world, v.address.lower()))  # lands between two of its frames
        await v.move((0.0, 0.0, 5.0))
        closed = await wait_event(v, lambda e: isinstance(e, Closed))
        assert DENIED_BANNED in closed.reason  # the node's Denied, said in the last event
    assert edge.service.hub.statistics()["visitors_local"] == 0
    # And it cannot come back.
    async with await Visitor.connect(edge.url, key) as again:
        with pytest.raises(JoinDenied) as info:
            await again.join(world)
        assert info.value.reason == DENIED_BANNED
