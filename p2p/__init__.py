"""libp2p networking. `bridge` is the only module here (and in Flux node) that imports trio.

Callers use `HostClient` (typed methods, one per host operation) and answer the host's asks
with a `HostAnswers`; the messages that cross are in `fluxnode.p2p.messages`.

The exports are loaded on first use (PEP 562): `fluxnode.p2p.identity` is imported by CLI
commands that only read the node's key, and importing this package must not drag in libp2p's
host stack (over half a second) for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fluxnode.p2p.bridge import Ask, BridgeService, BridgeStats, Request, ServiceIO, TrioBridge
    from fluxnode.p2p.client import ClosedAnswers, HostAnswers, HostClient
    from fluxnode.p2p.host import HostService, HostSettings
    from fluxnode.p2p.identity import generate_private_key, peer_id_from_private_key
    from fluxnode.p2p.messages import ChallengeOutcome, ChallengeResult, HostInfo, PingResult

_EXPORTS = {
    "Ask": "bridge",
    "BridgeService": "bridge",
    "BridgeStats": "bridge",
    "Request": "bridge",
    "ServiceIO": "bridge",
    "TrioBridge": "bridge",
    "ClosedAnswers": "client",
    "HostAnswers": "client",
    "HostClient": "client",
    "HostService": "host",
    "HostSettings": "host",
    "generate_private_key": "identity",
    "peer_id_from_private_key": "identity",
    "ChallengeOutcome": "messages",
    "ChallengeResult": "messages",
    "HostInfo": "messages",
    "PingResult": "messages",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
