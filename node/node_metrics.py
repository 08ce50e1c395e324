"""`MetricsSource` for the gateway's `/metrics`: the node's numbers, read at scrape time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from fluxnode.core.errors import FluxError
from fluxnode.core.node_metrics import NodeGauges
from fluxnode.core.session.hub import SessionHub
from fluxnode.p2p import HostClient
from fluxnode.storage.repo import Repo

if TYPE_CHECKING:
    from fluxnode.node.chain_setup import ChainParts


class NodeMetrics:
    def __init__(
        self,
        *,
        host: HostClient,
        repo: Repo,
        worlds: Callable[[], int],
        hub: SessionHub,
        chain: ChainParts | None,
        clock: Callable[[], float] = time.time,
        channels: Callable[[], int] = lambda: 0,
    ) -> None:
        self._channels = channels
        self._host, self._repo, self._worlds = host, repo, worlds
        self._hub, self._chain, self._clock = hub, chain, clock

    async def gauges(self) -> NodeGauges:
        try:
            peers = len(await self._host.peers())
        except FluxError:
            peers = 0
        pins = len(await asyncio.to_thread(self._repo.pins.list))
        counts = self._hub.directory.world_counts(self._clock())
        healthy = head = None
        if self._chain is not None:
            healthy = any(ep.healthy for ep in self._chain.pool.endpoints)
            index = self._chain.index
            head = await asyncio.to_thread(lambda: index.last_block)
        bridge = self._host.statistics()
        return NodeGauges(
            peers=peers,
            pins=pins,
            worlds=self._worlds(),
            instances=sum(n for n, _ in counts.values()),
            visitors=sum(v for _, v in counts.values()),
            local_visitors=self._hub.local_visitors(),
            node_channels=self._channels(),
            chain_healthy=healthy,
            chain_head=head if head is None or head >= 0 else None,
            bridge_queues={
                "inbox": bridge.inbox_depth,
                "events": bridge.events_buffered,
                "calls_in_flight": bridge.calls_in_flight,
                "asks_waiting": bridge.asks_waiting,
            },
            bridge_dropped={"events": bridge.events_dropped, "posts_lost": bridge.posts_lost},
        )
