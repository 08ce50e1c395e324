"""Errors of the chain side: RPC endpoints, deployments, contracts, sign-in (SIWE)."""

from __future__ import annotations

from fluxnode.core.errors.base import LocalError, PeerError, ReasonError, RemoteError

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
