"""libp2p networking. `bridge` is the only module here (and in Flux node) that imports trio."""

from fluxnode.p2p.bridge import BridgeService, BridgeStats, ServiceIO, TrioBridge
from fluxnode.p2p.host import HostInfo, HostService, HostSettings, PingResult
from fluxnode.p2p.identity import generate_private_key, peer_id_from_private_key

__all__ = [
    "BridgeService",
    "BridgeStats",
    "HostInfo",
    "HostService",
    "HostSettings",
    "PingResult",
    "ServiceIO",
    "TrioBridge",
    "generate_private_key",
    "peer_id_from_private_key",
]
