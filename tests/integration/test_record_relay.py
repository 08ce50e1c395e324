"""World records on gossip: B validates with the node's WorldDirectory before relaying, so C
(which checks nothing) receives the genuine record and none of the forged ones."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from eth_account import Account

from fluxnode.chain.records import sign_record
from fluxnode.node.worlds import WORLDS_TOPIC, WorldDirectory
from fluxnode.p2p import HostInfo, HostService, HostSettings, TrioBridge, generate_private_key
from fluxnode.p2p.gossip import GossipSettings

pytestmark = pytest.mark.slow
CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


async def start(name: str, bootstrap: tuple[str, ...], validate: bool) -> Any:
    gossip = GossipSettings(
        topics=(WORLDS_TOPIC,), validated_topics=(WORLDS_TOPIC,) if validate else ()
    )
    settings = HostSettings(
        private_key=generate_private_key(),
        listen=("/ip4/127.0.0.1/tcp/0",),
        bootstrap=bootstrap,
        gossip=gossip,
    )
    bridge: TrioBridge[HostInfo] = TrioBridge(HostService(settings), name=f"flux-trio-{name}")
    holder: dict[str, WorldDirectory] = {}

    async def responder(op: str, arg: Any) -> bool:
        _topic, data, forwarder, _author = arg
        return await holder["dir"].offer(bytes(data), forwarder=str(forwarder))

    bridge.set_responder(responder)
    info = await bridge.start()
    holder["dir"] = WorldDirectory(oracle=None, own_peer_id=info.peer_id)
    return bridge, info, holder["dir"]


async def test_forged_replayed_and_oversized_records_are_not_relayed() -> None:
    owner, mallory = Account.create(), Account.create()
    world = f"{owner.address.lower()}/plaza"
    now = int(time.time())
    good = sign_record(
        world_id=world, cid=CID, seq=5, visibility="public", issued_at=now, account=owner
    )
    replay = sign_record(
        world_id=world, cid=CID, seq=4, visibility="public", issued_at=now, account=owner
    )
    forged = sign_record(
        world_id=world, cid=CID, seq=9, visibility="public", issued_at=now, account=mallory
    )
    tampered = good.to_wire().replace(b'"seq":5', b'"seq":7')
    oversized = good.to_wire() + b" " * 20_000

    a, a_info, _ = await start("a", (), validate=False)
    b, b_info, b_dir = await start("b", (a_info.addrs[0],), validate=True)
    c, c_info, _ = await start("c", (b_info.addrs[0],), validate=False)
    got: list[bytes] = []

    async def collect() -> None:
        async for event in c.events():
            if event[0] == "gossip":
                got.append(event[1].data)

    task = asyncio.create_task(collect())
    try:
        for _ in range(100):
            peers = await b.call("gossip_peers", WORLDS_TOPIC)
            if a_info.peer_id in peers and c_info.peer_id in peers:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)
        for data in (good.to_wire(), replay.to_wire(), forged.to_wire(), tampered, oversized):
            await a.call("publish", (WORLDS_TOPIC, data))
        for _ in range(200):  # until the good one arrives (slow CI machines), then a margin
            if got:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        assert got == [good.to_wire()]
        assert b_dir.book.get(world) == good
        assert b_dir.stats.rejected == 3  # forged, tampered, oversized
        assert b_dir.stats.stale == 1  # the replayed lower seq
    finally:
        task.cancel()
        for bridge in (a, b, c):
            await bridge.aclose()
