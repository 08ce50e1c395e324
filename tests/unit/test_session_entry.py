"""Entry proofs: the verification table (core checks, wallet signature, nonce), session keys.

Proofs are signed by eth-account keys made at run time and checked by `EntryVerifier` with an
injected clock (the EOA path; tests/chain/test_entry.py runs EIP-1271 on anvil).
"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from fluxnode.chain.entry import (
    EntryVerifier,
    new_session_key,
    session_public_key,
    sign_entry,
    sign_session,
    verify_session_signature,
)
from fluxnode.chain.nonce_store import SqliteNonceBook
from fluxnode.core.errors import EntryProofInvalid, SessionSignatureInvalid
from fluxnode.core.session.entry import (
    ENTRY_STATEMENT,
    MAX_ENTRY_LIFETIME,
    SESSION_KEY_PREFIX,
    EntryProof,
    build_entry_message,
    check_entry,
    check_possession,
    parse_session_key_resource,
    possession_message,
    session_key_resource,
)
from fluxnode.core.siwe import MAX_MESSAGE_CHARS, SiweMessage, SiweUsageError, format_timestamp

DOMAIN = "node.example:8443"
URI = "https://node.example:8443/session"
CHAIN = 80002
T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def account() -> LocalAccount:
    acct: LocalAccount = Account.create()
    return acct


def verifier(clock: Clock, **kw: Any) -> EntryVerifier:
    return EntryVerifier(domain=DOMAIN, chain_id=CHAIN, uri_prefix=URI, clock=clock, **kw)


def message(acct: LocalAccount, nonce: str, **changes: Any) -> SiweMessage:
    msg = build_entry_message(
        domain=DOMAIN,
        address=acct.address,
        uri=URI,
        chain_id=CHAIN,
        nonce=nonce,
        session_key=KEY,
        issued_at=T0,
        lifetime=timedelta(hours=1),
    )
    return replace(msg, **changes)


def sign(acct: LocalAccount, msg: SiweMessage) -> EntryProof:
    text = msg.to_text()
    return EntryProof(text, bytes(acct.sign_message(encode_defunct(text=text)).signature))


async def reason(v: EntryVerifier, proof: EntryProof) -> str:
    with pytest.raises(EntryProofInvalid) as info:
        await v.admit(proof)
    return info.value.reason


async def test_good_proof_gives_address_and_session_key() -> None:
    clock, acct = Clock(T0 + timedelta(seconds=5)), account()
    v = verifier(clock)
    proof = sign(acct, message(acct, v.issue_nonce()))
    claims = await v.admit(proof)
    assert claims.address == acct.address
    assert claims.session_key == KEY
    assert claims.expires_at == T0 + timedelta(hours=1)
    assert v.statistics().admitted == 1


async def test_sign_entry_helper_with_a_real_session_key() -> None:
    clock, acct = Clock(T0), account()
    v = verifier(clock)
    key = new_session_key()
    proof = sign_entry(
        acct,
        session_public_key(key),
        domain=DOMAIN,
        uri=URI,
        chain_id=CHAIN,
        nonce=v.issue_nonce(),
        issued_at=T0,
    )
    claims = await v.admit(proof)
    assert claims.expires_at == T0 + MAX_ENTRY_LIFETIME
    challenge = b"c" * 32
    signature = sign_session(key, possession_message(challenge))
    check_possession(claims, challenge, signature, verify_session_signature)


def resource(key: bytes) -> str:
    return session_key_resource(key)


# (case, changes to the message, clock offset from T0, expected reason)
TABLE: list[tuple[str, dict[str, Any], timedelta, str]] = [
    ("expired", {}, timedelta(hours=1, seconds=61), "expired"),
    ("issued in the future", {}, timedelta(seconds=-61), "issued_in_future"),
    (
        "not yet valid",
        {"not_before": format_timestamp(T0 + timedelta(minutes=5))},
        timedelta(0),
        "not_yet_valid",
    ),
    (
        "expiry over 24 h",
        {"expiration_time": format_timestamp(T0 + MAX_ENTRY_LIFETIME + timedelta(seconds=1))},
        timedelta(0),
        "lifetime_too_long",
    ),
    ("no expiry", {"expiration_time": None}, timedelta(0), "no_expiry"),
    ("wrong domain", {"domain": "evil.example"}, timedelta(0), "wrong_domain"),
    ("wrong chain", {"chain_id": 137}, timedelta(0), "wrong_chain"),
    ("wrong uri", {"uri": "https://evil.example/session"}, timedelta(0), "wrong_uri"),
    ("no statement", {"statement": None}, timedelta(0), "wrong_statement"),
    ("other statement", {"statement": "Sign in to example"}, timedelta(0), "wrong_statement"),
    ("no resources", {"resources": None}, timedelta(0), "no_session_key"),
    ("empty resources", {"resources": ()}, timedelta(0), "no_session_key"),
    (
        "only other resources",
        {"resources": ("https://node.example/tos",)},
        timedelta(0),
        "no_session_key",
    ),
    (
        "two session keys",
        {"resources": (resource(KEY), resource(OTHER_KEY))},
        timedelta(0),
        "several_session_keys",
    ),
    (
        "the same key twice",
        {"resources": (resource(KEY), resource(KEY))},
        timedelta(0),
        "several_session_keys",
    ),
    (
        "key too short",
        {"resources": (SESSION_KEY_PREFIX + "AAAA",)},
        timedelta(0),
        "bad_session_key",
    ),
    (
        "key with padding",
        {"resources": (resource(KEY) + "=",)},
        timedelta(0),
        "bad_session_key",
    ),
    (
        "key not canonical (unused bits set)",
        {"resources": (resource(KEY)[:-1] + "B",)},
        timedelta(0),
        "bad_session_key",
    ),
    (
        "key in standard base64",
        {"resources": (SESSION_KEY_PREFIX + base64.b64encode(b"\xfb" * 32).decode()[:43],)},
        timedelta(0),
        "bad_session_key",
    ),
    (
        "another key type",
        {"resources": ("urn:flux:session-key:secp256k1:" + resource(KEY).rsplit(":", 1)[1],)},
        timedelta(0),
        "bad_session_key",
    ),
]


@pytest.mark.parametrize(
    ("changes", "offset", "expected"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE]
)
async def test_refused(changes: dict[str, Any], offset: timedelta, expected: str) -> None:
    clock, acct = Clock(T0 + offset), account()
    v = verifier(clock)
    nonce = v.issue_nonce()
    assert await reason(v, sign(acct, message(acct, nonce, **changes))) == expected
    assert v.statistics().rejected == {expected: 1}
    # Refused before the nonce was spent: the good proof with the same nonce still passes.
    clock.now = T0
    assert (await v.admit(sign(acct, message(acct, nonce)))).address == acct.address


async def test_replayed_nonce_is_refused() -> None:
    clock, acct = Clock(T0), account()
    v = verifier(clock)
    proof = sign(acct, message(acct, v.issue_nonce()))
    await v.admit(proof)
    assert await reason(v, proof) == "nonce_reused"


async def test_nonce_this_node_never_issued_is_refused() -> None:
    clock, acct = Clock(T0), account()
    assert await reason(verifier(clock), sign(acct, message(acct, "notFromThisNode1"))) == (
        "nonce_invalid"
    )


async def test_replay_after_a_restart_with_the_sqlite_nonce_book(tmp_path: Path) -> None:
    clock, acct = Clock(T0), account()
    book = SqliteNonceBook(tmp_path / "nonces.sqlite")
    v = verifier(clock, nonces=book)
    proof = sign(acct, message(acct, v.issue_nonce()))
    await v.admit(proof)
    book.close()
    reopened = SqliteNonceBook(tmp_path / "nonces.sqlite")
    try:
        assert await reason(verifier(clock, nonces=reopened), proof) == "nonce_reused"
    finally:
        reopened.close()


async def test_signature_by_another_key() -> None:
    clock, acct, mallory = Clock(T0), account(), account()
    v = verifier(clock)
    msg = message(acct, v.issue_nonce())
    forged = EntryProof(msg.to_text(), sign(mallory, msg).signature)
    assert await reason(v, forged) == "wrong_signer"


async def test_garbage_signature() -> None:
    clock, acct = Clock(T0), account()
    v = verifier(clock)
    msg = message(acct, v.issue_nonce())
    assert await reason(v, EntryProof(msg.to_text(), b"\x01" * 64 + b"\x05")) == "bad_signature"


async def test_tampered_text_is_not_the_signed_one() -> None:
    clock, acct = Clock(T0), account()
    v = verifier(clock)
    proof = sign(acct, message(acct, v.issue_nonce()))
    # Swap the session key for one the thief holds: the wallet never signed that text.
    text = proof.message.replace(resource(KEY), resource(OTHER_KEY))
    assert text != proof.message
    assert await reason(v, EntryProof(text, proof.signature)) == "wrong_signer"


async def test_malformed_text_keeps_the_siwe_reason() -> None:
    v = verifier(Clock(T0))
    assert await reason(v, EntryProof("hello", b"\x00" * 65)) == "bad_header"


async def test_relayed_proof_is_checked_without_the_nonce() -> None:
    home_clock, acct = Clock(T0), account()
    home = verifier(home_clock)
    proof = sign(acct, message(acct, home.issue_nonce()))
    await home.admit(proof)
    member = verifier(Clock(T0 + timedelta(minutes=1)))
    # Another node cannot spend the home node's nonce: the proof verifies there, every time.
    assert (await member.verify_relayed(proof, domain=DOMAIN)).session_key == KEY
    assert (await member.verify_relayed(proof, domain=DOMAIN)).address == acct.address
    assert member.statistics().relayed == 2
    # ...until it expires; and a forged signature is refused there too.
    late = verifier(Clock(T0 + timedelta(hours=2)))
    with pytest.raises(EntryProofInvalid) as info:
        await late.verify_relayed(proof, domain=DOMAIN)
    assert info.value.reason == "expired"
    forged = EntryProof(proof.message, sign(account(), message(acct, "abcdefgh1")).signature)
    with pytest.raises(EntryProofInvalid) as info:
        await member.verify_relayed(forged, domain=DOMAIN)
    assert info.value.reason == "wrong_signer"
    # A proof signed for another node's domain is refused for this one's visitors.
    with pytest.raises(EntryProofInvalid) as info:
        await member.verify_relayed(proof, domain="elsewhere.example")
    assert info.value.reason == "wrong_domain"


def test_check_entry_alone() -> None:
    acct = account()
    proof = sign(acct, message(acct, "abcdefgh1"))
    claims = check_entry(proof, now=T0, domain=DOMAIN, chain_id=CHAIN)
    assert (claims.address, claims.nonce, claims.message.statement) == (
        acct.address,
        "abcdefgh1",
        ENTRY_STATEMENT,
    )
    with pytest.raises(EntryProofInvalid) as info:
        check_entry(proof, now=T0, domain=DOMAIN, chain_id=CHAIN, scheme="http")
    assert (info.value.reason, info.value.http_status) == ("wrong_scheme", 401)


def test_session_key_resource_round_trip() -> None:
    for key in (KEY, OTHER_KEY, b"\xff" * 32, b"\x00" * 32):
        uri = session_key_resource(key)
        assert len(uri) == len(SESSION_KEY_PREFIX) + 43
        assert parse_session_key_resource(uri) == key
    with pytest.raises(SiweUsageError):
        session_key_resource(b"\x00" * 31)


def test_build_entry_message_bounds_the_lifetime() -> None:
    acct = account()
    kw: dict[str, Any] = {
        "domain": DOMAIN,
        "address": acct.address,
        "uri": URI,
        "chain_id": CHAIN,
        "nonce": "abcdefgh1",
        "session_key": KEY,
        "issued_at": T0,
    }
    for bad in (timedelta(0), MAX_ENTRY_LIFETIME + timedelta(milliseconds=1)):
        with pytest.raises(SiweUsageError):
            build_entry_message(**kw, lifetime=bad)


def test_entry_proof_bounds_and_json() -> None:
    proof = EntryProof("text", b"\x01" * 65)
    assert EntryProof.from_json(proof.to_json()) == proof
    bad: list[object] = [
        None,
        [],
        {"message": "text"},
        {"message": "text", "signature": "0x01", "extra": 1},
        {"message": 5, "signature": "0x01"},
        {"message": "text", "signature": "01"},
        {"message": "text", "signature": "0x0"},
        {"message": "text", "signature": "0x"},
        {"message": "text", "signature": "0x" + "00" * (16 * 1024 + 1)},
        {"message": "x" * (MAX_MESSAGE_CHARS + 1), "signature": "0x01"},
        {"message": "caf\u00e9", "signature": "0x01"},
    ]
    for obj in bad:
        with pytest.raises(EntryProofInvalid) as info:
            EntryProof.from_json(obj)
        assert info.value.reason == "malformed"


def test_session_signatures() -> None:
    key, other = new_session_key(), new_session_key()
    pub = session_public_key(key)
    sig = sign_session(key, b"hello")
    assert verify_session_signature(pub, b"hello", sig)
    assert not verify_session_signature(pub, b"hellO", sig)
    assert not verify_session_signature(session_public_key(other), b"hello", sig)
    assert not verify_session_signature(pub, b"hello", sig[:63])
    assert not verify_session_signature(pub[:31], b"hello", sig)
    assert not verify_session_signature(b"\x00" * 32, b"hello", b"\x00" * 64)


def test_possession_needs_the_session_key() -> None:
    key, other = new_session_key(), new_session_key()
    acct = account()
    msg = replace(message(acct, "abcdefgh1"), resources=(resource(session_public_key(key)),))
    claims = check_entry(sign(acct, msg), now=T0, domain=DOMAIN, chain_id=CHAIN)
    challenge = b"\x07" * 32
    good = sign_session(key, possession_message(challenge))
    check_possession(claims, challenge, good, verify_session_signature)
    for sig in (
        sign_session(other, possession_message(challenge)),  # someone who copied the proof
        sign_session(key, challenge),  # no domain separation header
        sign_session(key, possession_message(b"\x08" * 32)),  # another challenge
        good[:63],
    ):
        with pytest.raises(SessionSignatureInvalid):
            check_possession(claims, challenge, sig, verify_session_signature)
    with pytest.raises(SiweUsageError):
        possession_message(b"short")
