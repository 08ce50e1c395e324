"""The roots of the error tree, its code registry, and the errors of the node itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

_REGISTRY: dict[str, type[FluxError]] = {}


class FluxError(Exception):
    """Root of every error Flux node raises on purpose."""

    #: Stable machine-readable code (used in JSON error bodies and logs); unique per class.
    code: ClassVar[str] = "flux_error"
    #: HTTP status when this error answers a request.
    http_status: int = 500
    #: The failed rule, for errors that name one (see ReasonError); None otherwise.
    reason: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__dict__.get("code")
        if code is None:
            return  # inherits its parent's code and stays out of the registry
        existing = _REGISTRY.get(code)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise TypeError(f"error code {code!r} is used by {existing.__qualname__} already")
        _REGISTRY[code] = cls

    def to_json(self) -> dict[str, str]:
        out = {"code": self.code, "message": str(self)}
        if self.reason is not None:
            out["reason"] = self.reason
        return out


_REGISTRY[FluxError.code] = FluxError


def error_class(code: str) -> type[FluxError] | None:
    """The class registered for `code`, or None for a code this version does not know."""
    return _REGISTRY.get(code)


def error_from_json(
    body: Mapping[str, object], *, status: int, default: type[FluxError] | None = None
) -> FluxError:
    """Rebuild an error sent as `{"code", "message", "reason"?}` (the shape `to_json` makes).

    Only the message and reason travel; structured attributes of a class (a config key, a list
    of problems) are in the message text. An unknown code becomes `default`, or a RemoteError
    (4xx) / LocalError (5xx) by status, so nothing is lost, only less precisely typed.
    """
    code = body.get("code")
    message = str(body.get("message", ""))
    reason = body.get("reason")
    cls = _REGISTRY.get(code) if isinstance(code, str) else None
    if cls is None:
        cls = default or (RemoteError if 400 <= status < 500 else LocalError)
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.http_status = status
    if isinstance(reason, str):
        exc.reason = reason
    return exc


class LocalError(FluxError):
    """Our side is at fault: configuration, usage, local state."""

    code = "local_error"


class RemoteError(FluxError):
    """The other side is at fault: a peer or client sent bad or unexpected input."""

    code = "remote_error"
    http_status = 400


class ReasonError(FluxError):
    """An error that names the rule that failed in `reason` (a stable lowercase word)."""

    reason: str

    def __init__(self, reason: str, message: str, *, http_status: int | None = None) -> None:
        self.reason = reason
        if http_status is not None:
            self.http_status = http_status
        self.message = message
        super().__init__(f"{reason}: {message}")


# -- generic ---------------------------------------------------------------------------------


class NotFound(RemoteError):
    """What was asked for is not here (not stored, not pinned, no such path)."""

    code = "not_found"
    http_status = 404


class BadRequest(RemoteError):
    """A client request is malformed or out of bounds."""

    code = "bad_request"


class PayloadTooLarge(BadRequest):
    """A request body is over its limit (HTTP 413); nothing of it was used."""

    code = "payload_too_large"
    http_status = 413


class OperationTimedOut(LocalError):
    """We gave up waiting for something local (e.g. the running node did not answer in time)."""

    code = "timed_out"
    http_status = 504


# -- configuration, identity, the running node ---------------------------------------------


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


class KeyFileError(IdentityError):
    """A wallet key (deploy or owner key) is missing, unreadable, too widely readable or
    malformed. Messages never contain key material."""

    code = "key_file_error"


class NodeNotRunning(LocalError):
    """No node is running on the given data directory."""

    code = "node_not_running"


class NodeAlreadyRunning(LocalError):
    """Another node process holds the data directory."""

    code = "node_already_running"


class DevnetError(LocalError):
    """A process of a local devnet failed to start or stopped unexpectedly."""

    code = "devnet_failed"


# -- the asyncio/trio bridge -----------------------------------------------------------------


class BridgeError(LocalError):
    """Base for failures of the asyncio/trio bridge."""

    code = "bridge_error"


class BridgeClosed(BridgeError):
    """The bridge is not running (never started, or already shut down)."""

    code = "bridge_closed"


class BridgeCrashed(BridgeError):
    """The trio side raised; the original exception is chained as `__cause__`."""

    code = "bridge_crashed"


# -- states of this node -------------------------------------------------------------------


class NotEnabled(LocalError):
    """Asked for a part this node runs without (Bitswap, gossip, the DHT)."""

    code = "not_enabled"
    http_status = 503


class NodeStarting(LocalError):
    """The node is not ready yet to answer this."""

    code = "node_starting"
    http_status = 503


# -- peers -----------------------------------------------------------------------------------


class PeerError(RemoteError):
    """A peer could not be reached or misbehaved on a protocol."""

    code = "peer_error"
    http_status = 502
