"""What a node reports about itself, and the protocol the gateway uses to ask it.

The gateway depends on `NodeApi`, not on node/: node/ implements it and hands it in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class PeerSummary:
    peer_id: str
    addrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeStatus:
    peer_id: str
    addrs: tuple[str, ...]
    version: str
    uptime_s: float
    peers: tuple[PeerSummary, ...] = field(default_factory=tuple)
    gateway_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["addrs"] = list(self.addrs)
        data["peers"] = [{"peer_id": p.peer_id, "addrs": list(p.addrs)} for p in self.peers]
        return data


class NodeApi(Protocol):
    """The node as seen by the gateway and the admin endpoint."""

    async def status(self) -> NodeStatus: ...
