"""In-process p2p hosts for integration tests: `hosts.start(...)` and `wait_for_mesh`.

Each host is a real libp2p host in its own trio thread behind a `HostClient`; every host a test
starts is closed (and its thread joined) when the test ends.

The WebRTC mesh tests on node processes share `loopback_ice` (a module takes it with
`pytestmark`'s `usefixtures`, so no other test gets the patch) and `crowd`, the visitors a test
joins, all closed when it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from fluxnode.p2p import (
    ClosedAnswers,
    HostAnswers,
    HostClient,
    HostInfo,
    HostSettings,
    generate_private_key,
)
from fluxnode.p2p.gossip import GossipSettings
from fluxnode.p2p.session_frames import SessionLinkLimits
from tests.integration.mesh_nodes import loopback_ice_here
from tests.integration.session_visitors import Watched, close_all


@dataclass
class Host:
    client: HostClient
    info: HostInfo

    @property
    def addr(self) -> str:
        return self.info.addrs[0]


class Hosts:
    def __init__(self) -> None:
        self._started: list[HostClient] = []

    async def start(
        self,
        name: str,
        bootstrap: tuple[str, ...] = (),
        *,
        answers: HostAnswers | None = None,
        topics: tuple[str, ...] = (),
        validated: bool = False,
        dht: bool = False,
        session_link: bool = False,
        session_limits: SessionLinkLimits | None = None,
    ) -> Host:
        """A host on 127.0.0.1; with `topics`, subscribed to them (validated by `answers` if
        `validated`); `answers` defaults to refusing everything. `session_link` serves
        `/flux/session/1` (with `session_limits`)."""
        gossip = None
        if topics:
            gossip = GossipSettings(topics=topics, validated_topics=topics if validated else ())
        settings = HostSettings(
            private_key=generate_private_key(),
            listen=("/ip4/127.0.0.1/tcp/0",),
            bootstrap=bootstrap,
            gossip=gossip,
            dht=dht,
            session_link=session_link,
            session_limits=session_limits,
        )
        client = HostClient(settings, answers or ClosedAnswers(), name=f"flux-trio-{name}")
        self._started.append(client)
        return Host(client, await client.start())

    async def close_all(self) -> None:
        for client in reversed(self._started):
            await client.aclose()


@pytest.fixture
async def hosts() -> AsyncIterator[Hosts]:
    started = Hosts()
    try:
        yield started
    finally:
        await started.close_all()


async def wait_for_mesh(middle: Host, topic: str, *others: Host) -> None:
    """Until `middle` sees every one of `others` on `topic`, then a heartbeat or two so they
    graft `middle` into their meshes too."""
    want = {o.info.peer_id for o in others}
    for _ in range(200):
        if want <= set(await middle.client.gossip_peers(topic)):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"mesh on {topic} never formed")
    await asyncio.sleep(1.5)


async def wait_for_peers(host: Host, *others: Host) -> None:
    """Until `host` is connected to every one of `others`."""
    want = {o.info.peer_id for o in others}
    for _ in range(200):
        if want <= {p.peer_id for p in await host.client.peers()}:
            return
        await asyncio.sleep(0.1)
    pytest.fail("peers never connected")


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    with loopback_ice_here():
        yield


@pytest.fixture
async def crowd() -> AsyncIterator[list[Watched]]:
    visitors: list[Watched] = []
    yield visitors
    await close_all(visitors)
