"""Signing in without a node: the entry proof and Hello a client builds from a Challenge, checked
by the real `EntryVerifier` against a fixed clock; wallet keys in every accepted form."""

from __future__ import annotations

from datetime import timedelta

import pytest
from eth_account import Account

from fluxnode.chain.entry import (
    EntryVerifier,
    new_session_key,
    session_public_key,
    verify_session_signature,
)
from fluxnode.chain.keys import WalletKey
from fluxnode.client import entry_proof, hello_for, wallet_from
from fluxnode.core.errors import EntryProofInvalid, KeyFileError, SiweUsageError
from fluxnode.core.session.entry import EntryProof, check_possession
from fluxnode.core.session.frames import Challenge
from tests.unit.client_node_double import CHAIN, NOW, T0

DOMAIN = "node.example:8443"
URI = "https://node.example:8443/session"
SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")


def verifier(offset: timedelta = timedelta(0)) -> EntryVerifier:
    return EntryVerifier(domain=DOMAIN, chain_id=CHAIN, uri_prefix=URI, clock=lambda: T0 + offset)


def challenge(v: EntryVerifier) -> Challenge:
    return Challenge("node-a", DOMAIN, CHAIN, URI, v.issue_nonce(), b"\x42" * 32)


async def test_hello_passes_the_real_verifier_and_the_possession_check() -> None:
    v = verifier(timedelta(seconds=3))
    key = new_session_key()
    ch = challenge(v)
    hello = hello_for(wallet_from(SECRET.hex()), key, ch, NOW)
    claims = await v.admit(EntryProof(hello.proof, hello.proof_signature))
    assert claims.address == WalletKey.from_secret(SECRET).address
    assert claims.session_key == hello.session_key == session_public_key(key)
    assert claims.expires_at == T0 + timedelta(hours=1)  # the client's default lifetime
    assert claims.nonce == ch.nonce
    check_possession(claims, ch.challenge, hello.possession_signature, verify_session_signature)


async def test_an_expired_proof_is_refused_by_the_verifier() -> None:
    v = verifier(timedelta(hours=2))
    proof = entry_proof(wallet_from(SECRET), new_session_key(), challenge(v), NOW)
    with pytest.raises(EntryProofInvalid) as info:
        await v.admit(proof)
    assert info.value.reason == "expired"


def test_hex_key_bytes_and_eth_account_sign_the_same_bytes() -> None:
    key = new_session_key()
    ch = Challenge("node-a", DOMAIN, CHAIN, URI, "abcdefgh1234", b"\x42" * 32)
    proofs = {
        entry_proof(wallet_from(k), key, ch, NOW)
        for k in (
            "0x" + SECRET.hex(),
            f"  {SECRET.hex().upper()}\n",
            SECRET,
            Account.from_key(SECRET),
        )
    }
    assert len(proofs) == 1


@pytest.mark.parametrize(
    "bad",
    ["", "zz" * 32, SECRET.hex()[:-2], b"\x00" * 32, b"\xff" * 32, b"short", 42],
)
def test_bad_account_keys_are_refused_without_echoing_them(bad: object) -> None:
    with pytest.raises(KeyFileError) as info:
        wallet_from(bad)  # type: ignore[arg-type]
    assert SECRET.hex() not in str(info.value)
    if isinstance(bad, str) and bad:
        assert bad not in str(info.value)


def test_a_challenge_too_short_to_sign_is_refused() -> None:
    ch = Challenge("node-a", DOMAIN, CHAIN, URI, "abcdefgh1234", b"\x42" * 8)
    with pytest.raises(SiweUsageError, match="a challenge is 16 to 256 bytes"):
        hello_for(wallet_from(SECRET), new_session_key(), ch, NOW)
