"""DHT provider records travel: a node finds the provider it never connected to."""

from __future__ import annotations

import asyncio

import pytest

from fluxnode.core.cid import Cid
from tests.integration.conftest import Hosts, wait_for_peers

pytestmark = pytest.mark.slow
CID = Cid.parse("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")


async def test_provider_found_through_an_intermediate_node(hosts: Hosts) -> None:
    a = await hosts.start("a", dht=True)
    b = await hosts.start("b", (a.addr,), dht=True)
    c = await hosts.start("c", (b.addr,), dht=True)
    await wait_for_peers(b, a, c)  # B connected to both; C knows only B
    assert a.info.peer_id not in {p.peer_id for p in await c.client.peers()}
    await asyncio.sleep(2.5)  # routing tables pick up connected peers
    assert await a.client.provide(CID)
    found = ()
    for _ in range(20):
        found = await c.client.find_providers(CID)
        if found:
            break
        await asyncio.sleep(0.5)
    assert [p.peer_id for p in found] == [a.info.peer_id]
    assert any("/tcp/" in addr for addr in found[0].addrs)
