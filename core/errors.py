"""The one error tree of Flux node.

Split like h11: a `LocalError` means we (or the operator) misused something — bad config, a
missing key file, calling a closed bridge, a node that is still starting; a `RemoteError` means a
peer or client sent something bad. Foreign exceptions (libp2p, aiohttp, web3) are translated into
this tree at each boundary so callers only ever catch `FluxError`.

Every leaf lives here, grouped by the part of the node that raises it, so there is one class per
failure (one `BlockTooLarge`, whether the block came from a file, a CAR or a Bitswap peer) and
one stable `code` per class. The codes form a registry: an error that crossed a process boundary
as JSON (`{"code", "message", "reason"}`, e.g. from the admin socket) is rebuilt as the same class
with `error_from_json`, so the CLI can tell "not found" from "chain unavailable" from "bad request".

Errors that name a failed rule carry a machine-readable `reason` (`ReasonError`): the code says
what kind of thing failed (`record_invalid`), the reason which rule (`expired`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
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


class BitswapWireError(RemoteError):
    """A peer sent a Bitswap message that does not decode or breaks a bound."""

    code = "bitswap_wire"


class MessageTooLarge(BitswapWireError):
    code = "bitswap_message_too_large"


class TooManyWants(LocalError):
    """More Bitswap client wants at once than `max_wants` allows."""

    code = "bitswap_too_many_wants"


class HostingRecordInvalid(RemoteError):
    """A gossiped hosting record does not decode or breaks a bound."""

    code = "hosting_record_invalid"


# -- content: CIDs, blocks, DAGs, CARs -------------------------------------------------------


class InvalidCid(RemoteError):
    """A CID (text or bytes) that does not parse."""

    code = "invalid_cid"


class InvalidBlock(RemoteError):
    """A block does not decode as what its CID says it is."""

    code = "invalid_block"


class InvalidCar(RemoteError):
    code = "invalid_car"


class BlockTooLarge(RemoteError):
    """A block is over the size limit, wherever it came from (a file, a CAR, a peer)."""

    code = "block_too_large"


class BlockHashMismatch(RemoteError):
    code = "block_hash_mismatch"


class ContentDenied(RemoteError):
    """The content is on this node's denylist: it is not stored, served or relayed."""

    code = "content_denied"
    http_status = 451


class BlockCorrupted(LocalError):
    """A stored block no longer hashes to its CID (disk corruption or tampering)."""

    code = "block_corrupted"


class BlockNotFound(NotFound):
    code = "block_not_found"


class NotInMemory(LocalError):
    """A read that may use only memory (the gateway's event-loop path) needs a block that is
    not there; the caller then reads from disk in a thread. Never answers a client."""

    code = "not_in_memory"


class DagIncomplete(BlockNotFound):
    code = "dag_incomplete"


class DagTooDeep(BlockNotFound):
    code = "dag_too_deep"


class PathNotFound(NotFound):
    code = "path_not_found"


class NotAFile(RemoteError):
    code = "not_a_file"


class RangeNotSatisfiable(RemoteError):
    """A valid Range that selects nothing of the file (RFC 9110 §15.5.17)."""

    code = "range_not_satisfiable"
    http_status = 416


class StateStoreError(LocalError):
    """State the node keeps across restarts (world records, hosting claims, sign-in nonces)
    cannot be read or written."""

    code = "state_store_error"


class QuotaExceeded(LocalError):
    code = "quota_exceeded"
    http_status = 507


# -- world records -----------------------------------------------------------------------------


class RecordInvalid(ReasonError, RemoteError):
    """A world record is malformed, forged, stale or not signed by the world's owner.

    `reason` is a stable machine-readable word: ``malformed``, ``too_large``, ``bad_signature``,
    ``signer_mismatch``, ``not_world_owner``, ``from_future``, ``expired``,
    ``chain_unavailable``.
    """

    code = "record_invalid"


# -- chain -------------------------------------------------------------------------------------


class ChainUnavailable(PeerError):
    """No healthy endpoint on the right chain could answer in time."""

    code = "chain_unavailable"
    http_status = 503


class QuorumFailed(ChainUnavailable):
    code = "chain_quorum_failed"


class ChainCallFailed(RemoteError):
    """The chain answered, but the call reverted or returned something malformed."""

    code = "chain_call_failed"


class DeployError(LocalError):
    """A deployment transaction failed or produced no contract."""

    code = "deploy_failed"


class AnvilError(LocalError):
    """anvil did not start (or is not installed)."""

    code = "anvil_failed"


class ArtifactError(LocalError):
    """A compiled contract artifact shipped with the package is missing or malformed."""

    code = "artifact_invalid"


# --- live sessions (fluxnode.core.session) ----------------------------------------------------


class SessionError(RemoteError):
    """Base for bad input on a live session: frames, state operations, transforms, chat."""

    code = "session_error"


class FrameInvalid(SessionError):
    """A session frame is malformed, oversized, of an unknown type or has a bad field."""

    code = "frame_invalid"


class OpRejected(SessionError):
    """A world-state operation failed its signature, bounds or permission check."""

    code = "op_rejected"
    http_status = 403


class TransformRejected(SessionError):
    """An avatar transform is out of bounds (not finite, outside the world, too fast, too often)."""

    code = "transform_rejected"


class ChatRejected(SessionError):
    """A chat message is empty, too long or over the sender's rate."""

    code = "chat_rejected"


class SeatUnavailable(SessionError):
    """No seat can be had in this instance (full as far as this node knows, or not a member)."""

    code = "seat_unavailable"
    http_status = 409


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


class SiweError(ReasonError, RemoteError):
    """A sign-in message, its signature or its nonce is unacceptable.

    `reason` names the failed rule (e.g. "bad_address", "wrong_domain", "expired",
    "nonce_reused", "wrong_signer"); `code` is always "siwe_invalid". Malformed input answers
    400, a well-formed sign-in that is refused answers 401.
    """

    code = "siwe_invalid"

    @classmethod
    def refused(cls, reason: str, message: str) -> SiweError:
        """A well-formed sign-in that is refused (401), as opposed to malformed input (400)."""
        return cls(reason, message, http_status=401)


class SiweUsageError(LocalError):
    """We called the SIWE code wrongly (naive datetime, negative skew, bad settings)."""

    code = "siwe_usage"


# -- entering a world: entry proofs, session keys, owner bans (fluxnode.core.session) ----------


class EntryProofInvalid(ReasonError, SessionError):
    """An entry proof (the visitor's signed SIWE message naming a session key) is malformed,
    refused (wrong domain/chain, expired, nonce spent, not the wallet's signature) or cannot
    be checked now (``chain_unavailable``, 503). `reason` names the failed rule."""

    code = "entry_proof_invalid"


class SessionSignatureInvalid(SessionError):
    """Something that must be signed by the visitor's session key (Ed25519) is not."""

    code = "session_signature_invalid"
    http_status = 401


class BanListInvalid(ReasonError, RemoteError):
    """An owner-signed ban list is malformed, forged or not signed by the world's owner.

    `reason`: ``malformed``, ``too_large``, ``bad_signature``, ``signer_mismatch``,
    ``not_world_owner``, ``from_future``, ``chain_unavailable``.
    """

    code = "ban_list_invalid"
