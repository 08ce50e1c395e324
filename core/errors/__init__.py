"""The one error tree of Flux node.

Split like h11: a `LocalError` means we (or the operator) misused something — bad config, a
missing key file, calling a closed bridge, a node that is still starting; a `RemoteError` means a
peer or client sent something bad. Foreign exceptions (libp2p, aiohttp, web3) are translated into
this tree at each boundary so callers only ever catch `FluxError`.

Every leaf lives in this package (`base`, `content`, `chain`, `session`, grouped by the part of
the node that raises it) and is imported from here, so there is one class per
failure (one `BlockTooLarge`, whether the block came from a file, a CAR or a Bitswap peer) and
one stable `code` per class. The codes form a registry: an error that crossed a process boundary
as JSON (`{"code", "message", "reason"}`, e.g. from the admin socket) is rebuilt as the same class
with `error_from_json`, so the CLI can tell "not found" from "chain unavailable" from "bad request".

Errors that name a failed rule carry a machine-readable `reason` (`ReasonError`): the code says
what kind of thing failed (`record_invalid`), the reason which rule (`expired`).
"""

from __future__ import annotations

from fluxnode.core.errors.base import BadRequest as BadRequest
from fluxnode.core.errors.base import BridgeClosed as BridgeClosed
from fluxnode.core.errors.base import BridgeCrashed as BridgeCrashed
from fluxnode.core.errors.base import BridgeError as BridgeError
from fluxnode.core.errors.base import ConfigError as ConfigError
from fluxnode.core.errors.base import FluxError as FluxError
from fluxnode.core.errors.base import IdentityError as IdentityError
from fluxnode.core.errors.base import KeyFileError as KeyFileError
from fluxnode.core.errors.base import LocalError as LocalError
from fluxnode.core.errors.base import NodeAlreadyRunning as NodeAlreadyRunning
from fluxnode.core.errors.base import NodeNotRunning as NodeNotRunning
from fluxnode.core.errors.base import NodeStarting as NodeStarting
from fluxnode.core.errors.base import NotEnabled as NotEnabled
from fluxnode.core.errors.base import NotFound as NotFound
from fluxnode.core.errors.base import OperationTimedOut as OperationTimedOut
from fluxnode.core.errors.base import PayloadTooLarge as PayloadTooLarge
from fluxnode.core.errors.base import PeerError as PeerError
from fluxnode.core.errors.base import ReasonError as ReasonError
from fluxnode.core.errors.base import RemoteError as RemoteError
from fluxnode.core.errors.base import error_class as error_class
from fluxnode.core.errors.base import error_from_json as error_from_json
from fluxnode.core.errors.chain import AnvilError as AnvilError
from fluxnode.core.errors.chain import ArtifactError as ArtifactError
from fluxnode.core.errors.chain import ChainCallFailed as ChainCallFailed
from fluxnode.core.errors.chain import ChainUnavailable as ChainUnavailable
from fluxnode.core.errors.chain import DeployError as DeployError
from fluxnode.core.errors.chain import QuorumFailed as QuorumFailed
from fluxnode.core.errors.chain import SiweError as SiweError
from fluxnode.core.errors.chain import SiweUsageError as SiweUsageError
from fluxnode.core.errors.content import BitswapWireError as BitswapWireError
from fluxnode.core.errors.content import BlockCorrupted as BlockCorrupted
from fluxnode.core.errors.content import BlockHashMismatch as BlockHashMismatch
from fluxnode.core.errors.content import BlockNotFound as BlockNotFound
from fluxnode.core.errors.content import BlockTooLarge as BlockTooLarge
from fluxnode.core.errors.content import ContentDenied as ContentDenied
from fluxnode.core.errors.content import DagIncomplete as DagIncomplete
from fluxnode.core.errors.content import DagTooDeep as DagTooDeep
from fluxnode.core.errors.content import HostingRecordInvalid as HostingRecordInvalid
from fluxnode.core.errors.content import InvalidBlock as InvalidBlock
from fluxnode.core.errors.content import InvalidCar as InvalidCar
from fluxnode.core.errors.content import InvalidCid as InvalidCid
from fluxnode.core.errors.content import ManifestError as ManifestError
from fluxnode.core.errors.content import MessageTooLarge as MessageTooLarge
from fluxnode.core.errors.content import NotAFile as NotAFile
from fluxnode.core.errors.content import NotInMemory as NotInMemory
from fluxnode.core.errors.content import PackageProblem as PackageProblem
from fluxnode.core.errors.content import PathNotFound as PathNotFound
from fluxnode.core.errors.content import QuotaExceeded as QuotaExceeded
from fluxnode.core.errors.content import RangeNotSatisfiable as RangeNotSatisfiable
from fluxnode.core.errors.content import RecordInvalid as RecordInvalid
from fluxnode.core.errors.content import StateStoreError as StateStoreError
from fluxnode.core.errors.content import TooManyWants as TooManyWants
from fluxnode.core.errors.content import WorldManifestInvalid as WorldManifestInvalid
from fluxnode.core.errors.content import WorldPackageInvalid as WorldPackageInvalid
from fluxnode.core.errors.content import summarize as summarize
from fluxnode.core.errors.session import BanListInvalid as BanListInvalid
from fluxnode.core.errors.session import ChatRejected as ChatRejected
from fluxnode.core.errors.session import EntryProofInvalid as EntryProofInvalid
from fluxnode.core.errors.session import FrameInvalid as FrameInvalid
from fluxnode.core.errors.session import JoinDenied as JoinDenied
from fluxnode.core.errors.session import NoManifest as NoManifest
from fluxnode.core.errors.session import OpRejected as OpRejected
from fluxnode.core.errors.session import RateLimited as RateLimited
from fluxnode.core.errors.session import SeatUnavailable as SeatUnavailable
from fluxnode.core.errors.session import SessionDenied as SessionDenied
from fluxnode.core.errors.session import SessionError as SessionError
from fluxnode.core.errors.session import SessionLost as SessionLost
from fluxnode.core.errors.session import SessionSignatureInvalid as SessionSignatureInvalid
from fluxnode.core.errors.session import SignalRefused as SignalRefused
from fluxnode.core.errors.session import SilenceRefused as SilenceRefused
from fluxnode.core.errors.session import TokenInvalid as TokenInvalid
from fluxnode.core.errors.session import TransformRejected as TransformRejected
