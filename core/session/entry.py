"""Entry proofs: one wallet signature that lets a visitor into worlds for up to 24 hours.

The client makes an ephemeral Ed25519 *session key* and the wallet signs ONE Sign-In with
Ethereum (EIP-4361) message that names it. That signed message is the visitor's entry proof;
afterwards the client signs chat and state operations with the session key (no wallet prompts).

The message (built by `build_entry_message`, written by `fluxnode.core.siwe`) must have:

- the node's domain, chain id and (optionally) URI prefix and scheme, as any SIWE sign-in;
- the statement `ENTRY_STATEMENT` exactly, so the wallet shows the user what they authorise and
  an ordinary sign-in message for some other site is not taken as an entry proof;
- an `Expiration Time` at most `MAX_ENTRY_LIFETIME` (24 h) after `Issued At`;
- exactly one resource of the form ``urn:flux:session-key:ed25519:<key>``, where ``<key>`` is
  the 32-byte raw Ed25519 public key in unpadded base64url (43 characters, canonical: the
  encoding of the decoded bytes must give the same text back). Other resources are allowed.

`check_entry` applies every rule that needs no I/O and returns the `EntryClaims` (address,
session key, expiry). It does not check the wallet signature (eth-account recovery or an
EIP-1271 `eth_call`) nor spend the nonce: `fluxnode.chain.entry` does both, at the edge.

Replay. The nonce is single-use on the node that issued it (its nonce book spends it). Any
other node can verify the proof offline (this module, plus the wallet signature) but cannot know
whether the nonce was spent elsewhere, so there a proof can be presented again. That replay is
bounded by (1) the expiry, never more than 24 h after issue, and (2) the session key binding: a
proof is only useful together with the session private key, because joining requires a
possession signature over a fresh challenge from the node (`check_possession`) and every chat
and state operation is signed by that key. Someone who copied the proof but not the key can
neither join nor act as the visitor.

Sans-IO: stdlib and `fluxnode.core` only; the clock is passed in, and the Ed25519 check is an
injected `SessionVerify` callable (`fluxnode.chain.entry.verify_session_signature`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from fluxnode.core.errors import EntryProofInvalid, SessionSignatureInvalid, SiweError
from fluxnode.core.siwe import (
    MAX_MESSAGE_CHARS,
    SiweMessage,
    SiweUsageError,
    format_timestamp,
    parse_siwe,
    validate,
)

__all__ = [
    "DEFAULT_SKEW",
    "ENTRY_STATEMENT",
    "MAX_ENTRY_LIFETIME",
    "MAX_ENTRY_SIGNATURE_BYTES",
    "POSSESSION_HEADER",
    "SESSION_KEY_BYTES",
    "SESSION_KEY_PREFIX",
    "EntryClaims",
    "EntryProof",
    "SessionVerify",
    "build_entry_message",
    "check_entry",
    "check_possession",
    "parse_session_key_resource",
    "possession_message",
    "session_key_resource",
]

#: What the wallet shows above the fields (RFC 3986 characters and spaces only, per EIP-4361).
ENTRY_STATEMENT: Final = "Enter Flux worlds with a session key held by this app."
SESSION_KEY_PREFIX: Final = "urn:flux:session-key:ed25519:"
SESSION_KEY_BYTES: Final = 32
MAX_ENTRY_LIFETIME: Final = timedelta(hours=24)
#: Contract-wallet signatures can be long (a multisig concatenates one per owner); EOA is 65.
MAX_ENTRY_SIGNATURE_BYTES: Final = 16 * 1024
DEFAULT_SKEW: Final = timedelta(seconds=60)
#: Prefix of what the session key signs to prove possession; no SIWE message, chat or state
#: operation starts with it, so such a signature cannot be replayed as one of those.
POSSESSION_HEADER: Final = b"Flux session possession v1\n"
MAX_CHALLENGE_BYTES: Final = 256

#: (raw Ed25519 public key, signed bytes, signature) -> True iff the signature is valid.
SessionVerify = Callable[[bytes, bytes, bytes], bool]

_B64URL_KEY = re.compile(r"[A-Za-z0-9_-]{43}")
_HEX_SIGNATURE = re.compile(r"0x(?:[0-9a-fA-F]{2})+")


def _malformed(message: str) -> EntryProofInvalid:
    return EntryProofInvalid("malformed", message)


def _refused(reason: str, message: str) -> EntryProofInvalid:
    return EntryProofInvalid(reason, message, http_status=401)


def session_key_resource(public_key: bytes) -> str:
    """The SIWE resource naming a raw 32-byte Ed25519 public key."""
    if not isinstance(public_key, bytes) or len(public_key) != SESSION_KEY_BYTES:
        raise SiweUsageError(f"a session key is {SESSION_KEY_BYTES} raw bytes")
    return SESSION_KEY_PREFIX + base64.urlsafe_b64encode(public_key).rstrip(b"=").decode("ascii")


def parse_session_key_resource(uri: str) -> bytes:
    """The 32 key bytes of a ``urn:flux:session-key:ed25519:`` resource (strict, canonical)."""
    if not uri.startswith(SESSION_KEY_PREFIX):
        raise EntryProofInvalid("bad_session_key", f"not a session key resource: {uri[:80]!r}")
    text = uri[len(SESSION_KEY_PREFIX) :]
    if not _B64URL_KEY.fullmatch(text):
        raise EntryProofInvalid(
            "bad_session_key", "session key must be 43 unpadded base64url characters"
        )
    try:
        key = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        raise EntryProofInvalid("bad_session_key", "session key is not base64url") from None
    if session_key_resource(key) != uri:
        # The last character carries 2 unused bits: only one spelling per key is accepted.
        raise EntryProofInvalid("bad_session_key", "session key is not canonical base64url")
    return key


def build_entry_message(
    *,
    domain: str,
    address: str,
    uri: str,
    chain_id: int,
    nonce: str,
    session_key: bytes,
    issued_at: datetime,
    lifetime: timedelta = MAX_ENTRY_LIFETIME,
    scheme: str | None = None,
    not_before: datetime | None = None,
    request_id: str | None = None,
) -> SiweMessage:
    """The message a client asks the wallet to sign (`.to_text()` is the exact text)."""
    if not timedelta(0) < lifetime <= MAX_ENTRY_LIFETIME:
        raise SiweUsageError(f"lifetime must be in (0, {MAX_ENTRY_LIFETIME}]: {lifetime}")
    return SiweMessage(
        scheme=scheme,
        domain=domain,
        address=address,
        statement=ENTRY_STATEMENT,
        uri=uri,
        chain_id=chain_id,
        nonce=nonce,
        issued_at=format_timestamp(issued_at),
        expiration_time=format_timestamp(issued_at + lifetime),
        not_before=None if not_before is None else format_timestamp(not_before),
        request_id=request_id,
        resources=(session_key_resource(session_key),),
    )


@dataclass(frozen=True)
class EntryProof:
    """The signed message text and the wallet's signature (EOA: 65 bytes; EIP-1271: any,
    bounded). Construction checks only the bounds; `check_entry` checks the content."""

    message: str
    signature: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.message, str):
            raise _malformed(f"message must be text, not {type(self.message).__name__}")
        if len(self.message) > MAX_MESSAGE_CHARS or not self.message.isascii():
            raise _malformed(f"message must be ASCII of at most {MAX_MESSAGE_CHARS} characters")
        if not isinstance(self.signature, bytes):
            raise _malformed(f"signature must be bytes, not {type(self.signature).__name__}")
        if not 1 <= len(self.signature) <= MAX_ENTRY_SIGNATURE_BYTES:
            raise _malformed(f"signature must be 1 to {MAX_ENTRY_SIGNATURE_BYTES} bytes")

    def to_json(self) -> dict[str, str]:
        return {"message": self.message, "signature": "0x" + self.signature.hex()}

    @classmethod
    def from_json(cls, obj: object) -> EntryProof:
        """From ``{"message": str, "signature": "0x<hex>"}`` exactly (no other keys)."""
        if not isinstance(obj, Mapping) or set(obj) != {"message", "signature"}:
            raise _malformed('entry proof must be {"message": ..., "signature": ...}')
        message, signature = obj["message"], obj["signature"]
        if not isinstance(signature, str) or len(signature) > 2 + 2 * MAX_ENTRY_SIGNATURE_BYTES:
            raise _malformed("signature must be 0x-prefixed hex of bounded length")
        if not _HEX_SIGNATURE.fullmatch(signature):
            raise _malformed("signature must be 0x followed by whole hex bytes")
        if not isinstance(message, str):
            raise _malformed(f"message must be text, not {type(message).__name__}")
        return cls(message, bytes.fromhex(signature[2:]))


@dataclass(frozen=True)
class EntryClaims:
    """What a checked entry proof establishes (once its wallet signature is verified too)."""

    #: EIP-55 address of the wallet that signed.
    address: str
    #: Raw 32-byte Ed25519 public key of the session.
    session_key: bytes
    expires_at: datetime
    nonce: str
    message: SiweMessage


def _session_keys(resources: Sequence[str] | None) -> list[str]:
    return [r for r in resources or () if r.startswith("urn:flux:session-key:")]


def check_entry(
    proof: EntryProof,
    *,
    now: datetime,
    domain: str,
    chain_id: int,
    uri_prefix: str | None = None,
    scheme: str | None = None,
    skew: timedelta = DEFAULT_SKEW,
) -> EntryClaims:
    """Every rule of an entry proof that needs no I/O (see the module docstring).

    Raises `EntryProofInvalid` whose `reason` names the rule: a SIWE parse reason
    (``bad_address``, ``bad_layout``, ...) for malformed text; ``wrong_domain``,
    ``wrong_scheme``, ``wrong_chain``, ``wrong_uri``, ``issued_in_future``, ``expired``,
    ``not_yet_valid``; ``wrong_statement``, ``no_expiry``, ``lifetime_too_long``,
    ``no_session_key``, ``several_session_keys``, ``bad_session_key``.
    """
    try:
        msg = parse_siwe(proof.message)
    except SiweError as exc:
        raise EntryProofInvalid(exc.reason, exc.message) from None
    if msg.statement != ENTRY_STATEMENT:
        raise EntryProofInvalid(
            "wrong_statement", f"an entry proof's statement is exactly {ENTRY_STATEMENT!r}"
        )
    try:
        validate(
            msg,
            expected_domain=domain,
            expected_chain_id=chain_id,
            now=now,
            skew=skew,
            expected_uri_prefix=uri_prefix,
            expected_scheme=scheme,
        )
    except SiweError as exc:
        raise _refused(exc.reason, exc.message) from None
    expires = msg.expiration_time_dt
    if expires is None:
        raise EntryProofInvalid("no_expiry", "an entry proof must have an Expiration Time")
    lifetime = expires - msg.issued_at_dt
    if lifetime > MAX_ENTRY_LIFETIME:
        raise EntryProofInvalid(
            "lifetime_too_long", f"valid for {lifetime}, over {MAX_ENTRY_LIFETIME}"
        )
    keys = _session_keys(msg.resources)
    if not keys:
        raise EntryProofInvalid("no_session_key", f"no {SESSION_KEY_PREFIX} resource")
    if len(keys) > 1:
        raise EntryProofInvalid("several_session_keys", f"{len(keys)} session key resources")
    return EntryClaims(
        address=msg.address,
        session_key=parse_session_key_resource(keys[0]),
        expires_at=expires,
        nonce=msg.nonce,
        message=msg,
    )


def possession_message(challenge: bytes) -> bytes:
    """What the session key signs to prove the client holds it (`challenge`: from the node)."""
    if not isinstance(challenge, bytes) or not 16 <= len(challenge) <= MAX_CHALLENGE_BYTES:
        raise SiweUsageError(f"a challenge is 16 to {MAX_CHALLENGE_BYTES} bytes")
    return POSSESSION_HEADER + challenge


def check_possession(
    claims: EntryClaims, challenge: bytes, signature: bytes, verify: SessionVerify
) -> None:
    """Raise `SessionSignatureInvalid` unless the session key signed `possession_message`."""
    if not isinstance(signature, bytes) or len(signature) != 64:
        raise SessionSignatureInvalid("an Ed25519 signature is 64 bytes")
    if not verify(claims.session_key, possession_message(challenge), signature):
        raise SessionSignatureInvalid("not signed by the entry proof's session key")
