"""The Python client of live sessions: sign in to a home node, join a world, move, interact,
chat and receive typed events (docs/session-protocol.md).

```python
async with await Visitor.connect(url, key_hex, world_id="land:7",
                                 reconnect=Reconnect(fallbacks=(other_url,))) as v:
    x, y, z = v.position  # where Joined put us: moves go on from there
    await v.move((x + 0.1, y, z))
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
    Reconnected,
    StateChanged,
    VisitorStats,
)
from fluxnode.client.links import (
    WorldTarget,
    http_base,
    manifest_url,
    parse_target,
    session_url,
)
from fluxnode.client.manifest import ManifestSource, load_manifest, node_manifest
from fluxnode.client.reconnect import Reconnect
from fluxnode.client.replica import Replica, visitor_key
from fluxnode.client.signin import DEFAULT_LIFETIME, AccountKey, entry_proof, hello_for, wallet_from
from fluxnode.client.visitor import Visitor

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
    "Reconnect",
    "Reconnected",
    "Replica",
    "StateChanged",
    "Visitor",
    "VisitorStats",
    "WorldTarget",
    "entry_proof",
    "hello_for",
    "http_base",
    "load_manifest",
    "manifest_url",
    "node_manifest",
    "parse_target",
    "session_url",
    "visitor_key",
    "wallet_from",
]
