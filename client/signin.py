"""Signing in: turn the node's `Challenge` into a `Hello` (entry proof + possession signature).

The wallet signs the entry proof once per connection: the SIWE message must carry the nonce
of *this* node's challenge, which it spends, so a reconnect or a redirect signs again (with the
same session key, which is what lets a reconnect within 30 s keep its seat). The proof lives
`DEFAULT_LIFETIME` (1 h): long enough for a visit, far below the protocol's 24 h ceiling, so
a leaked proof is useful for less time. No I/O here; the clock is passed in.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fluxnode.chain.entry import EntryAccount, session_public_key, sign_entry, sign_session
from fluxnode.chain.keys import WalletKey
from fluxnode.core.errors import KeyFileError
from fluxnode.core.session.entry import EntryProof, possession_message
from fluxnode.core.session.frames import Challenge, Hello

DEFAULT_LIFETIME: Final = timedelta(hours=1)
_HEX_KEY = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")

#: What `Visitor.connect` takes as the wallet: a hex private key, its 32 bytes, or an account.
AccountKey = str | bytes | EntryAccount


def wallet_from(account_key: AccountKey) -> EntryAccount:
    """The signing account for `account_key`; `KeyFileError` (no key material in it) if bad."""
    if isinstance(account_key, str):
        m = _HEX_KEY.fullmatch(account_key.strip())
        if m is None:
            raise KeyFileError("the account key is not a 32-byte hex private key")
        account_key = bytes.fromhex(m.group(1))
    if isinstance(account_key, bytes):
        try:
            return WalletKey.from_secret(account_key)
        except ValueError:
            raise KeyFileError("the account key is not a valid secp256k1 private key") from None
    if not hasattr(account_key, "address"):
        raise KeyFileError(f"cannot sign with a {type(account_key).__name__}")
    return account_key


def entry_proof(
    wallet: EntryAccount,
    session_key: Ed25519PrivateKey,
    challenge: Challenge,
    now: float,
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> EntryProof:
    """The wallet's entry proof for this node's challenge, issued at `now` (Unix seconds)."""
    return sign_entry(
        wallet,
        session_public_key(session_key),
        domain=challenge.domain,
        uri=challenge.uri,
        chain_id=challenge.chain_id,
        nonce=challenge.nonce,
        # Whole seconds: SIWE timestamps print what we give, and a node compares them exactly.
        issued_at=datetime.fromtimestamp(int(now), UTC),
        lifetime=lifetime,
    )


def hello_for(
    wallet: EntryAccount,
    session_key: Ed25519PrivateKey,
    challenge: Challenge,
    now: float,
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> Hello:
    """The `Hello` answering `challenge`: entry proof, session key, possession signature."""
    proof = entry_proof(wallet, session_key, challenge, now, lifetime)
    return Hello(
        proof=proof.message,
        proof_signature=proof.signature,
        session_key=session_public_key(session_key),
        possession_signature=sign_session(session_key, possession_message(challenge.challenge)),
    )
