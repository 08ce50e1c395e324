"""Entry proofs, the I/O edge: the wallet signature (EOA or EIP-1271), the nonce, Ed25519.

`fluxnode.core.session.entry.check_entry` applies the rules that need no I/O; this module adds
what does:

- `EntryVerifier.admit` (the node that issued the nonce): `check_entry` first, so junk costs no
  nonce and no `eth_call`, then `SiweVerifier.verify`, which spends the nonce in its `Nonces`
  store (`SqliteNonceBook` keeps spent nonces across restarts) before it checks the signature
  (EOA recovery, else EIP-1271 `isValidSignature` through the injected `is_valid_1271`);
- `EntryVerifier.verify_relayed` (any other node, e.g. a member node of the instance): the same
  checks without the nonce, which only its issuer can spend; see the core module docstring for
  how replay is bounded there (expiry <= 24 h and the session key binding);
- `verify_session_signature`: Ed25519 with `cryptography`, for possession proofs, chat and
  state operations. `new_session_key` / `sign_session` are the client side.

Every refusal is `EntryProofInvalid` with the reason of the failed rule (SIWE reasons such as
``nonce_reused`` or ``wrong_signer`` are kept); a chain that cannot be read for an EIP-1271
check is ``chain_unavailable`` (503): fail closed.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from fluxnode.chain.keys import WalletKey
from fluxnode.chain.siwe_verify import Is1271, Nonces, SiweVerifier, verify_signature
from fluxnode.core.errors import ChainCallFailed, ChainUnavailable, EntryProofInvalid, SiweError
from fluxnode.core.session.entry import (
    DEFAULT_SKEW,
    MAX_ENTRY_LIFETIME,
    SESSION_KEY_BYTES,
    EntryClaims,
    EntryProof,
    build_entry_message,
    check_entry,
)
from fluxnode.core.siwe import NonceStats

__all__ = [
    "EntryAccount",
    "EntryVerifier",
    "EntryVerifierStats",
    "new_session_key",
    "session_public_key",
    "sign_entry",
    "sign_session",
    "verify_session_signature",
]


def verify_session_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff `signature` is a valid Ed25519 signature of `message` by `public_key` (raw 32
    bytes). Any malformed input is False, never an exception (a `SessionVerify`)."""
    if not (
        isinstance(public_key, bytes)
        and len(public_key) == SESSION_KEY_BYTES
        and isinstance(signature, bytes)
        and len(signature) == 64
        and isinstance(message, bytes)
    ):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def new_session_key() -> Ed25519PrivateKey:
    """A fresh ephemeral session key (the client keeps it in memory only)."""
    return Ed25519PrivateKey.generate()


def session_public_key(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign_session(key: Ed25519PrivateKey, message: bytes) -> bytes:
    return key.sign(message)


#: A wallet that can sign an entry proof: eth-account's, or the light `WalletKey` (the same
#: EIP-191 bytes without importing eth-account's signing path).
EntryAccount = LocalAccount | WalletKey


def sign_entry(
    account: EntryAccount,
    session_key: bytes,
    *,
    domain: str,
    uri: str,
    chain_id: int,
    nonce: str,
    issued_at: datetime,
    lifetime: timedelta = MAX_ENTRY_LIFETIME,
    scheme: str | None = None,
) -> EntryProof:
    """A client's entry proof signed by a local key (EOA): for `fluxnode.client` and tests."""
    msg = build_entry_message(
        domain=domain,
        address=str(account.address),
        uri=uri,
        chain_id=chain_id,
        nonce=nonce,
        session_key=session_key,
        issued_at=issued_at,
        lifetime=lifetime,
        scheme=scheme,
    )
    text = msg.to_text()
    if isinstance(account, WalletKey):
        return EntryProof(text, account.sign_personal(text))
    return EntryProof(text, bytes(account.sign_message(encode_defunct(text=text)).signature))


@dataclass(frozen=True)
class EntryVerifierStats:
    admitted: int
    relayed: int
    #: Refusals by reason ("nonce_reused", "expired", "several_session_keys", ...).
    rejected: dict[str, int]
    nonces: NonceStats


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EntryVerifier:
    """Checks entry proofs for one node: its domain and chain, an injected clock."""

    def __init__(
        self,
        *,
        domain: str,
        chain_id: int,
        uri_prefix: str | None = None,
        scheme: str | None = None,
        skew: timedelta = DEFAULT_SKEW,
        nonces: Nonces | None = None,
        is_valid_1271: Is1271 | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._clock = clock
        self._is_valid_1271 = is_valid_1271
        self._siwe = SiweVerifier(
            domain=domain,
            chain_id=chain_id,
            uri_prefix=uri_prefix,
            scheme=scheme,
            skew=skew,
            nonces=nonces,
            is_valid_1271=is_valid_1271,
            clock=clock,
        )
        self._admitted = 0
        self._relayed = 0
        self._rejected: collections.Counter[str] = collections.Counter()

    def issue_nonce(self) -> str:
        return self._siwe.issue_nonce()

    def _check(self, proof: EntryProof, domain: str | None = None) -> EntryClaims:
        s = self._siwe
        return check_entry(
            proof,
            now=self._clock(),
            domain=s.domain if domain is None else domain,
            chain_id=s.chain_id,
            uri_prefix=s.uri_prefix if domain is None else None,
            scheme=s.scheme,
            skew=s.skew,
        )

    async def admit(self, proof: EntryProof) -> EntryClaims:
        """The full check on the node that issued the nonce (spends it). See module doc."""
        try:
            claims = self._check(proof)
            await self._siwe.verify(proof.message, proof.signature)
        except (EntryProofInvalid, SiweError, ChainUnavailable, ChainCallFailed) as exc:
            raise self._refusal(exc) from None
        self._admitted += 1
        return claims

    async def verify_relayed(self, proof: EntryProof, *, domain: str) -> EntryClaims:
        """The check any node can make of a proof whose nonce another node issued. `domain`
        is the issuing node's sign-in domain (a visitor signs for the node it enters through;
        the member node learns that node's gateway from the directory): a proof signed for any
        other site is refused here too."""
        try:
            claims = self._check(proof, domain)
            await verify_signature(
                claims.message, proof.message, proof.signature, is_valid_1271=self._is_valid_1271
            )
        except (EntryProofInvalid, SiweError, ChainUnavailable, ChainCallFailed) as exc:
            raise self._refusal(exc) from None
        self._relayed += 1
        return claims

    def _refusal(
        self, exc: EntryProofInvalid | SiweError | ChainUnavailable | ChainCallFailed
    ) -> EntryProofInvalid:
        if isinstance(exc, EntryProofInvalid):
            out = exc
        elif isinstance(exc, SiweError):
            out = EntryProofInvalid(exc.reason, exc.message, http_status=exc.http_status)
        else:
            out = EntryProofInvalid(
                "chain_unavailable", f"cannot check a contract wallet: {exc}", http_status=503
            )
        self._rejected[out.reason] += 1
        return out

    def statistics(self) -> EntryVerifierStats:
        return EntryVerifierStats(
            admitted=self._admitted,
            relayed=self._relayed,
            rejected=dict(self._rejected),
            nonces=self._siwe.nonces.statistics(),
        )
