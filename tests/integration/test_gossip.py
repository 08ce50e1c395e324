"""Gossipsub through the bridge: delivery across hops, and validation before relay."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fluxnode.p2p import HostInfo, HostService, HostSettings, TrioBridge, generate_private_key
from fluxnode.p2p.gossip import GossipMessage, GossipSettings

pytestmark = pytest.mark.slow
TOPIC = "/flux/1/test"


async def start(name: str, bootstrap: tuple[str, ...], validate: bool) -> tuple[Any, HostInfo]:
    gossip = GossipSettings(topics=(TOPIC,), validated_topics=(TOPIC,) if validate else ())
    settings = HostSettings(
        private_key=generate_private_key(),
        listen=("/ip4/127.0.0.1/tcp/0",),
        bootstrap=bootstrap,
        gossip=gossip,
    )
    bridge: TrioBridge[HostInfo] = TrioBridge(HostService(settings), name=f"flux-trio-{name}")

    async def responder(op: str, arg: Any) -> bool:
        _topic, data, _forwarder, _author = arg
        return not bytes(data).startswith(b"bad")

    bridge.set_responder(responder)
    info = await bridge.start()
    return bridge, info


async def collect(bridge: Any, into: list[bytes]) -> None:
    async for event in bridge.events():
        if event[0] == "gossip":
            msg: GossipMessage = event[1]
            into.append(msg.data)


async def test_valid_messages_cross_two_hops_and_invalid_ones_stop_at_the_first() -> None:
    a, a_info = await start("a", (), validate=False)
    b, b_info = await start("b", (a_info.addrs[0],), validate=True)
    # C accepts anything: if B relayed the bad message, C would deliver it.
    c, c_info = await start("c", (b_info.addrs[0],), validate=False)
    at_b: list[bytes] = []
    at_c: list[bytes] = []
    tasks = [asyncio.create_task(collect(b, at_b)), asyncio.create_task(collect(c, at_c))]
    try:
        # wait for the mesh: B must see A and C on the topic
        for _ in range(100):
            peers = await b.call("gossip_peers", TOPIC)
            if a_info.peer_id in peers and c_info.peer_id in peers:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("mesh never formed")
        await asyncio.sleep(1.5)  # a heartbeat or two so A grafts B into its mesh
        await a.call("publish", (TOPIC, b"bad record"))
        await a.call("publish", (TOPIC, b"good record"))
        for _ in range(100):
            if b"good record" in at_c:
                break
            await asyncio.sleep(0.05)
        assert at_b == [b"good record"]
        assert at_c == [b"good record"]  # the bad one was not relayed by B
    finally:
        for t in tasks:
            t.cancel()
        for bridge in (a, b, c):
            await bridge.aclose()
