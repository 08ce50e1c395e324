"""The Python client of live sessions: sign in to a home node, join a world, move, interact,
chat and receive typed events (docs/session-protocol.md).

```python
async with await Visitor.connect(url, key_hex, world_id="land:7", manifest=url) as v:
    await v.move((1.0, 0.0, 2.0))
    async for event in v.events():
        ...
```

It imports `fluxnode.core` (frames, state, presence) and `fluxnode.chain` (wallet and session
key signing) only; nothing but `fluxnode.node` (the `flux-node visit` command) imports it.
"""

from fluxnode.client.events import (
    Chat,
    Closed,
    Error,
    Event,
    PeerJoined,
    PeerLeft,
    PeerMoved,
    StateChanged,
)
from fluxnode.client.links import WorldTarget, http_base, parse_target, session_url
from fluxnode.client.manifest import ManifestSource, load_manifest
from fluxnode.client.replica import Replica, visitor_key
from fluxnode.client.signin import DEFAULT_LIFETIME, AccountKey, entry_proof, hello_for, wallet_from
from fluxnode.client.visitor import Visitor, VisitorStats

__all__ = [
    "DEFAULT_LIFETIME",
    "AccountKey",
    "Chat",
    "Closed",
    "Error",
    "Event",
    "ManifestSource",
    "PeerJoined",
    "PeerLeft",
    "PeerMoved",
    "Replica",
    "StateChanged",
    "Visitor",
    "VisitorStats",
    "WorldTarget",
    "entry_proof",
    "hello_for",
    "http_base",
    "load_manifest",
    "parse_target",
    "session_url",
    "visitor_key",
    "wallet_from",
]
