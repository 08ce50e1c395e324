"""What the gateway's `/metrics` reads from the node at scrape time (a typed seam).

The gateway owns the Prometheus side (prometheus-client: a registry per app, request counters
it updates itself); the node's own numbers are read when a scrape arrives, through
`MetricsSource.gauges`, so nothing is sampled in between and nothing is hand-written text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["MetricsSource", "NodeGauges"]


@dataclass(frozen=True)
class NodeGauges:
    peers: int = 0
    pins: int = 0
    #: Worlds whose records this node holds.
    worlds: int = 0
    #: Open instances in the gossiped directory, and visitors in them (all nodes).
    instances: int = 0
    visitors: int = 0
    #: Visitors connected to this node.
    local_visitors: int = 0
    #: WebRTC peer connections visitors' clients hold to this node (its own data channels).
    node_channels: int = 0
    #: None: no chain configured; else whether the last read of it worked.
    chain_healthy: bool | None = None
    #: The newest block the chain reader has seen (None: unknown or no chain).
    chain_head: int | None = None
    #: Items waiting in each queue of the asyncio/trio bridge (name -> depth).
    bridge_queues: dict[str, int] = field(default_factory=dict)
    #: Items the bridge dropped since start (name -> count), e.g. full event queues.
    bridge_dropped: dict[str, int] = field(default_factory=dict)


class MetricsSource(Protocol):
    async def gauges(self) -> NodeGauges: ...
