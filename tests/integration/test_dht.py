"""DHT provider records travel: a node finds the provider it never connected to."""

from __future__ import annotations

import asyncio

import pytest

from fluxnode.p2p import HostInfo, HostService, HostSettings, TrioBridge, generate_private_key

pytestmark = pytest.mark.slow
CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


async def start(name: str, bootstrap: tuple[str, ...]) -> tuple[TrioBridge[HostInfo], HostInfo]:
    settings = HostSettings(
        private_key=generate_private_key(),
        listen=("/ip4/127.0.0.1/tcp/0",),
        bootstrap=bootstrap,
        dht=True,
    )
    bridge: TrioBridge[HostInfo] = TrioBridge(HostService(settings), name=f"flux-trio-{name}")
    return bridge, await bridge.start()


async def test_provider_found_through_an_intermediate_node() -> None:
    a, a_info = await start("a", ())
    b, b_info = await start("b", (a_info.addrs[0],))
    c, c_info = await start("c", (b_info.addrs[0],))
    try:
        for _ in range(100):  # B connected to both; C knows only B
            peers = {p.peer_id for p in await b.call("peers")}
            if {a_info.peer_id, c_info.peer_id} <= peers:
                break
            await asyncio.sleep(0.1)
        assert a_info.peer_id not in {p.peer_id for p in await c.call("peers")}
        await asyncio.sleep(2.5)  # routing tables pick up connected peers
        assert await a.call("provide", CID)
        found = []
        for _ in range(20):
            found = await c.call("find_providers", CID)
            if found:
                break
            await asyncio.sleep(0.5)
        assert [p.peer_id for p in found] == [a_info.peer_id]
        assert any("/tcp/" in addr for addr in found[0].addrs)
    finally:
        for bridge in (a, b, c):
            await bridge.aclose()
