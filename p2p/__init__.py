"""libp2p networking. `bridge` is the only module here (and in Flux node) that imports trio.

Callers use `HostClient` (typed methods, one per host operation) and answer the host's asks
with a `HostAnswers`; the messages that cross are in `fluxnode.p2p.messages`.
"""

from fluxnode.p2p.bridge import Ask, BridgeService, BridgeStats, Request, ServiceIO, TrioBridge
from fluxnode.p2p.client import ClosedAnswers, HostAnswers, HostClient
from fluxnode.p2p.host import HostService, HostSettings
from fluxnode.p2p.identity import generate_private_key, peer_id_from_private_key
from fluxnode.p2p.messages import ChallengeOutcome, ChallengeResult, HostInfo, PingResult

__all__ = [
    "Ask",
    "BridgeService",
    "BridgeStats",
    "ChallengeOutcome",
    "ChallengeResult",
    "ClosedAnswers",
    "HostAnswers",
    "HostClient",
    "HostInfo",
    "HostService",
    "HostSettings",
    "PingResult",
    "Request",
    "ServiceIO",
    "TrioBridge",
    "generate_private_key",
    "peer_id_from_private_key",
]
