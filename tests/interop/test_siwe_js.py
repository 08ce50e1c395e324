"""SIWE messages made and signed by viem (npm, nobody here wrote it) against our verifier.

viem's `createSiweMessage` writes the EIP-4361 text and `privateKeyToAccount(...).signMessage`
signs it (EIP-191); we parse it, check it round-trips byte for byte, and run the full
`SiweVerifier`: a good sign-in passes, and a wrong domain, wrong chain, replayed nonce, expired
message or another key's signature is refused with the right reason. The EIP-1271 path runs
against a real anvil: `anvil_setCode` puts a tiny hand-assembled wallet contract at the signer's
address, so `eip1271_check` does a genuine `isValidSignature(bytes32,bytes)` eth_call.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account

from fluxnode.chain.siwe_verify import (
    SiweVerifier,
    eip191_hash,
    eip1271_check,
    signature_from_hex,
)
from fluxnode.core.siwe import SiweError, format_timestamp, parse_siwe
from tests.interop import jsref

pytestmark = [pytest.mark.interop, pytest.mark.slow]

DOMAIN = "worlds.example:8443"
URI = "https://worlds.example:8443/enter?world=7"
CHAIN = 80002
T0 = datetime(2026, 3, 1, 9, 30, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _harness_installed() -> None:
    if not jsref.siwe_available():
        pytest.fail(
            f"JS reference harness or viem missing ({jsref.node_bin()}): run scripts/setup-npm.sh",
            pytrace=False,
        )


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def private_key(account: Any) -> str:
    return "0x" + bytes(account.key).hex()


def viem_sign(account: Any, nonce: str, **overrides: Any) -> tuple[str, bytes, str]:
    fields: dict[str, Any] = {
        "domain": DOMAIN,
        "uri": URI,
        "chain_id": CHAIN,
        "nonce": nonce,
        "issued_at": format_timestamp(T0),
        "expiration_time": format_timestamp(T0 + timedelta(minutes=5)),
    }
    fields.update(overrides)
    out = jsref.siwe_sign(private_key(account), **fields)
    assert out["address"] == account.address
    return out["message"], signature_from_hex(out["signature"]), out["address"]


def make_verifier(clock: Clock, **kw: Any) -> SiweVerifier:
    return SiweVerifier(
        domain=DOMAIN,
        chain_id=CHAIN,
        uri_prefix="https://worlds.example:8443/",
        skew=timedelta(seconds=30),
        clock=clock,
        **kw,
    )


async def refused(verifier: SiweVerifier, text: str, signature: bytes) -> str:
    with pytest.raises(SiweError) as info:
        await verifier.verify(text, signature)
    return info.value.reason


async def test_viem_message_parses_round_trips_and_verifies() -> None:
    clock = Clock(T0 + timedelta(seconds=2))
    verifier = make_verifier(clock)
    account = Account.create()
    text, sig, address = viem_sign(
        account,
        verifier.issue_nonce(),
        statement="Enter world 7 of Flux.",
        scheme="https",
        not_before=format_timestamp(T0 - timedelta(seconds=1)),
        request_id="req-42",
        resources=[
            "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi/",
            "https://worlds.example/tos",
        ],
    )
    msg = parse_siwe(text)
    assert msg.to_text() == text
    assert (msg.scheme, msg.domain, msg.address, msg.chain_id) == ("https", DOMAIN, address, CHAIN)
    assert msg.statement == "Enter world 7 of Flux."
    assert msg.issued_at == "2026-03-01T09:30:00.000Z"  # viem writes toISOString()
    assert msg.request_id == "req-42" and msg.resources is not None and len(msg.resources) == 2
    assert (await verifier.verify(text, sig)).address == account.address

    # the minimal form: no statement, no scheme, no optional fields
    text, sig, _ = viem_sign(account, verifier.issue_nonce(), expiration_time=None)
    assert f"{account.address}\n\n\nURI: " in text
    assert parse_siwe(text).to_text() == text
    await verifier.verify(text, sig)
    assert verifier.statistics().verified == 2


async def test_viem_sign_ins_refused_for_the_right_reason() -> None:
    clock = Clock(T0 + timedelta(seconds=2))
    verifier = make_verifier(clock)
    account, other = Account.create(), Account.create()

    text, sig, _ = viem_sign(account, verifier.issue_nonce(), domain="evil.example")
    assert await refused(verifier, text, sig) == "wrong_domain"

    text, sig, _ = viem_sign(account, verifier.issue_nonce(), chain_id=137)
    assert await refused(verifier, text, sig) == "wrong_chain"

    text, sig, _ = viem_sign(account, verifier.issue_nonce())
    await verifier.verify(text, sig)
    assert await refused(verifier, text, sig) == "nonce_reused"

    text, sig, _ = viem_sign(
        account, verifier.issue_nonce(), expiration_time=format_timestamp(T0 - timedelta(minutes=1))
    )
    assert await refused(verifier, text, sig) == "expired"

    # the same sign-in made by another key: its signature is not the account's
    nonce = verifier.issue_nonce()
    text, _, _ = viem_sign(account, nonce)
    other_text, other_sig, _ = viem_sign(other, nonce)
    assert other_text != text
    assert await refused(verifier, text, other_sig) == "wrong_signer"

    # a nonce we never issued
    text, sig, _ = viem_sign(account, "viemMadeThisUp1")
    assert await refused(verifier, text, sig) == "nonce_invalid"

    stats = verifier.statistics()
    assert stats.verified == 1
    assert stats.rejected == {
        "wrong_domain": 1,
        "wrong_chain": 1,
        "nonce_reused": 1,
        "expired": 1,
        "wrong_signer": 1,
        "nonce_invalid": 1,
    }


# -- EIP-1271 on a real chain ------------------------------------------------------------------


def wallet_code(accepted_hash: bytes) -> bytes:
    """Runtime code answering isValidSignature(h, sig) with the magic value iff h == accepted_hash
    (any signature), else 32 zero bytes. Hand-assembled so no compiler is needed."""
    assert len(accepted_hash) == 32
    code = (
        bytes.fromhex("600435")  # PUSH1 4 CALLDATALOAD: the bytes32 argument
        + b"\x7f"
        + accepted_hash  # PUSH32 accepted_hash
        + bytes.fromhex("14602d57")  # EQ PUSH1 0x2d JUMPI
        + bytes.fromhex("60206000f3")  # RETURN 32 zero bytes
        + bytes.fromhex("5b")  # 0x2d: JUMPDEST
        + bytes.fromhex("631626ba7e60e01b60005260206000f3")  # MSTORE(0, magic << 224) RETURN
    )
    assert code.index(b"\x5b", 36) == 0x2D
    return code


REVERTING_CODE = bytes.fromhex("60006000fd")  # REVERT(0, 0)


@pytest.fixture
def anvil() -> Iterator[Any]:
    from fluxnode.chain.anvil import AnvilError, start_anvil

    try:
        chain = start_anvil(chain_id=CHAIN)
    except AnvilError as exc:
        pytest.fail(f"anvil unavailable ({exc}): run scripts/setup-npm.sh", pytrace=False)
    with chain:
        yield chain


async def test_contract_wallet_sign_in_via_eip1271_on_anvil(anvil: Any) -> None:
    from web3 import AsyncHTTPProvider, AsyncWeb3

    w3 = AsyncWeb3(AsyncHTTPProvider(anvil.rpc_url))
    try:
        assert await w3.eth.chain_id == CHAIN

        async def set_code(address: str, code: bytes) -> None:
            await w3.provider.make_request("anvil_setCode", [address, "0x" + code.hex()])

        async def is_valid_1271(address: str, message_hash: bytes, signature: bytes) -> bool:
            return await eip1271_check(w3, address, message_hash, signature)

        clock = Clock(T0 + timedelta(seconds=2))
        verifier = make_verifier(clock, is_valid_1271=is_valid_1271)
        wallet, owner = Account.create(), Account.create()
        # viem makes the message for the wallet's address; the "contract" at that address
        # accepts the EIP-191 hash of exactly this text, whatever the signature bytes are.
        text, _, _ = viem_sign(wallet, verifier.issue_nonce())
        _, owner_sig, _ = viem_sign(owner, "ownerNonce123")
        message_hash = eip191_hash(text)
        await set_code(wallet.address, wallet_code(message_hash))

        assert await eip1271_check(w3, wallet.address, message_hash, owner_sig)
        assert (await verifier.verify(text, owner_sig)).address == wallet.address

        # the contract says no to another hash: refused as wrong_signer
        text2, _, _ = viem_sign(wallet, verifier.issue_nonce())
        assert not await eip1271_check(w3, wallet.address, eip191_hash(text2), owner_sig)
        assert await refused(verifier, text2, owner_sig) == "wrong_signer"

        # a reverting contract and an address without code both mean "not valid"
        await set_code(wallet.address, REVERTING_CODE)
        assert not await eip1271_check(w3, wallet.address, message_hash, owner_sig)
        assert not await eip1271_check(w3, owner.address, message_hash, owner_sig)
        text3, _, _ = viem_sign(wallet, verifier.issue_nonce())
        assert await refused(verifier, text3, b"\x00" * 65) == "wrong_signer"
    finally:
        await w3.provider.disconnect()
