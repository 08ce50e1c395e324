"""The one error tree of Flux node.

Split like h11: a `LocalError` means we (or the operator) misused something — bad config, a
missing key file, calling a closed bridge; a `RemoteError` means a peer or client sent something
bad. Foreign exceptions (libp2p, aiohttp, web3) are translated into this tree at each boundary so
callers only ever catch `FluxError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath


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


class PeerError(RemoteError):
    """A peer could not be reached or misbehaved on a protocol."""

    code = "peer_error"
    http_status = 502


class BadRequest(RemoteError):
    """A client request is malformed or out of bounds."""

    code = "bad_request"


def summarize(head: str, problems: Sequence[object], shown: int = 50) -> str:
    """``head (N errors):`` then one indented line per problem, at most `shown` of them."""
    lines = [f"{head} ({len(problems)} error{'s' if len(problems) != 1 else ''}):"]
    lines += [f"  {p}" for p in problems[:shown]]
    if len(problems) > shown:
        lines.append(f"  ... and {len(problems) - shown} more")
    return "\n".join(lines)


# -- world packages (fluxnode.core.world, fluxnode.storage.worldpkg) -----------------------------


@dataclass(frozen=True)
class ManifestError:
    """One problem: `path` is a JSON path (``objects[3].scale.x``; ``$`` is the whole document)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class PackageProblem:
    """One problem of a package folder: `file` is package-relative (``.`` is the folder itself);
    `json_path` is set when the problem is inside world.json's content (``objects[3].scale.x``).
    """

    file: str
    message: str
    json_path: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}: {self.json_path}" if self.json_path else self.file
        return f"{where}: {self.message}"


class WorldManifestInvalid(RemoteError):
    """world.json broke the model or a limit; `errors` lists every problem found."""

    code = "world_invalid"

    def __init__(self, errors: Sequence[ManifestError]) -> None:
        self.errors = list(errors)
        super().__init__(summarize("world.json is invalid", self.errors))


class WorldPackageInvalid(RemoteError):
    """The folder is not a valid world package; `problems` lists everything found."""

    code = "world_package_invalid"

    def __init__(self, root: PurePath, problems: Sequence[PackageProblem]) -> None:
        self.root = root
        self.problems = list(problems)
        super().__init__(summarize(f"world package {root} is invalid", self.problems))


# -- sign-in (fluxnode.core.siwe) -----------------------------------------------------------------


class SiweError(RemoteError):
    """A sign-in message, its signature or its nonce is unacceptable.

    `reason` names the failed rule (e.g. "bad_address", "wrong_domain", "expired",
    "nonce_reused", "wrong_signer"); `code` is always "siwe_invalid". Malformed input answers
    400, a well-formed sign-in that is refused answers 401.
    """

    code = "siwe_invalid"

    def __init__(self, reason: str, message: str, *, http_status: int = 400) -> None:
        self.reason = reason
        self.message = message
        self.http_status = http_status
        super().__init__(f"{reason}: {message}")

    @classmethod
    def refused(cls, reason: str, message: str) -> SiweError:
        """A well-formed sign-in that is refused (401), as opposed to malformed input (400)."""
        return cls(reason, message, http_status=401)


class SiweUsageError(LocalError):
    """We called the SIWE code wrongly (naive datetime, negative skew, bad settings)."""

    code = "siwe_usage"
