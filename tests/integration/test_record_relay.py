"""World records on gossip: B validates with the node's WorldDirectory before relaying, so C
(which checks nothing) receives the genuine record and none of the forged ones."""

from __future__ import annotations

import asyncio
import time

import pytest
from eth_account import Account

from fluxnode.chain.records import sign_record
from fluxnode.node.worlds import WORLDS_TOPIC, WorldDirectory
from fluxnode.p2p import ClosedAnswers
from fluxnode.p2p.messages import ValidateGossip
from tests.integration.conftest import Hosts, wait_for_mesh

pytestmark = pytest.mark.slow
CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


class DirectoryAnswers(ClosedAnswers):
    """What node/answers.py does for the worlds topic: the world directory decides."""

    def __init__(self) -> None:
        self.directory: WorldDirectory | None = None

    async def validate_gossip(self, ask: ValidateGossip) -> bool:
        assert self.directory is not None
        return await self.directory.offer(ask.data, forwarder=ask.forwarder)


async def test_forged_replayed_and_oversized_records_are_not_relayed(hosts: Hosts) -> None:
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

    topics = (WORLDS_TOPIC,)
    a = await hosts.start("a", topics=topics)
    b_answers = DirectoryAnswers()
    b = await hosts.start("b", (a.addr,), topics=topics, validated=True, answers=b_answers)
    b_dir = b_answers.directory = WorldDirectory(oracle=None, own_peer_id=b.info.peer_id)
    c = await hosts.start("c", (b.addr,), topics=topics)
    got: list[bytes] = []

    async def collect() -> None:
        async for event in c.client.events():
            got.append(event.data)

    task = asyncio.create_task(collect())
    try:
        await wait_for_mesh(b, WORLDS_TOPIC, a, c)
        for data in (good.to_wire(), replay.to_wire(), forged.to_wire(), tampered, oversized):
            await a.client.publish(WORLDS_TOPIC, data)
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
