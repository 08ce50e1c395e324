"""Gossipsub through the bridge: delivery across hops, and validation before relay."""

from __future__ import annotations

import asyncio

import pytest

from fluxnode.p2p import ClosedAnswers, HostClient
from fluxnode.p2p.messages import ValidateGossip
from tests.integration.conftest import Hosts, wait_for_mesh

pytestmark = pytest.mark.slow
TOPIC = "/flux/1/test"


class NoBadOnes(ClosedAnswers):
    async def validate_gossip(self, ask: ValidateGossip) -> bool:
        return not ask.data.startswith(b"bad")


async def collect(client: HostClient, into: list[bytes]) -> None:
    async for event in client.events():
        into.append(event.data)


async def test_valid_messages_cross_two_hops_and_invalid_ones_stop_at_the_first(
    hosts: Hosts,
) -> None:
    a = await hosts.start("a", topics=(TOPIC,))
    b = await hosts.start("b", (a.addr,), topics=(TOPIC,), validated=True, answers=NoBadOnes())
    # C accepts anything: if B relayed the bad message, C would deliver it.
    c = await hosts.start("c", (b.addr,), topics=(TOPIC,))
    at_b: list[bytes] = []
    at_c: list[bytes] = []
    tasks = [
        asyncio.create_task(collect(b.client, at_b)),
        asyncio.create_task(collect(c.client, at_c)),
    ]
    try:
        await wait_for_mesh(b, TOPIC, a, c)
        await a.client.publish(TOPIC, b"bad record")
        await a.client.publish(TOPIC, b"good record")
        for _ in range(100):
            if b"good record" in at_c:
                break
            await asyncio.sleep(0.05)
        assert at_b == [b"good record"]
        assert at_c == [b"good record"]  # the bad one was not relayed by B
    finally:
        for t in tasks:
            t.cancel()
