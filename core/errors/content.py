"""Errors of content: Bitswap, CIDs, blocks, DAGs, CARs, the store, world records, packages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from fluxnode.core.errors.base import LocalError, NotFound, ReasonError, RemoteError

# -- Bitswap and hosting records ---------------------------------------------------------------


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
