"""The one error tree of Flux node.

Split like h11: a `LocalError` means we (or the operator) misused something — bad config, a
missing key file, calling a closed bridge; a `RemoteError` means a peer or client sent something
bad. Foreign exceptions (libp2p, aiohttp, web3) are translated into this tree at each boundary so
callers only ever catch `FluxError`.
"""

from __future__ import annotations


class FluxError(Exception):
    """Root of every error Flux node raises on purpose."""

    #: Stable machine-readable code (used in JSON error bodies and logs).
    code: str = "flux_error"
    #: HTTP status when this error answers a request.
    http_status: int = 500


class LocalError(FluxError):
    """Our side is at fault: configuration, usage, local state."""

    code = "local_error"


class RemoteError(FluxError):
    """The other side is at fault: a peer or client sent bad or unexpected input."""

    code = "remote_error"
    http_status = 400


class NotFound(RemoteError):
    """What was asked for is not here (not stored, not pinned, no such path)."""

    code = "not_found"
    http_status = 404


class ConfigError(LocalError):
    """A configuration value is invalid. Names the key and where it came from."""

    code = "config_error"

    def __init__(self, key: str, message: str, source: str | None = None) -> None:
        self.key = key
        self.source = source
        self.message = message
        where = f" (from {source})" if source else ""
        super().__init__(f"{key}: {message}{where}")


class IdentityError(LocalError):
    """The node's key file is missing, unreadable, malformed or too permissive."""

    code = "identity_error"


class NodeNotRunning(LocalError):
    """No node is running on the given data directory."""

    code = "node_not_running"


class NodeAlreadyRunning(LocalError):
    """Another node process holds the data directory."""

    code = "node_already_running"


class BridgeError(LocalError):
    """Base for failures of the asyncio/trio bridge."""

    code = "bridge_error"


class BridgeClosed(BridgeError):
    """The bridge is not running (never started, or already shut down)."""

    code = "bridge_closed"


class BridgeCrashed(BridgeError):
    """The trio side raised; the original exception is chained as `__cause__`."""

    code = "bridge_crashed"


class NotEnabled(LocalError):
    """Asked for a part this node runs without (Bitswap, gossip, the DHT)."""

    code = "not_enabled"
    http_status = 503


class NodeStarting(LocalError):
    """The node is not ready yet to answer this."""

    code = "node_starting"
    http_status = 503


class PeerError(RemoteError):
    """A peer could not be reached or misbehaved on a protocol."""

    code = "peer_error"
    http_status = 502


class BadRequest(RemoteError):
    """A client request is malformed or out of bounds."""

    code = "bad_request"
