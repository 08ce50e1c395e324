"""Sign-In with Ethereum: signature recovery, EIP-1271, SiweVerifier (fluxnode.chain.siwe_verify).

Signatures come from eth-account keys made at run time; EIP-1271 is a fake async callable (and a
fake web3 for `eip1271_check`); tests/interop/test_siwe_js.py covers viem and a real anvil.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.address import to_checksum_address as ref_checksum
from eth_utils.crypto import keccak as ref_keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxnode.chain.rpc import ChainUnavailable
from fluxnode.chain.siwe_verify import (
    EIP1271_MAGIC,
    SiweVerifier,
    eip191_hash,
    eip1271_check,
    eip1271_checker,
    recover_address,
    signature_from_hex,
    verify_signature,
)
from fluxnode.core.siwe import (
    SiweError,
    SiweMessage,
    SiweUsageError,
    format_timestamp,
    to_checksum_address,
)
from tests.unit.siwe_samples import (
    ADDR,
    FULL_TEXT,
    SKEW,
    T0,
    full_message,
)

# -- signatures ----------------------------------------------------------------------------------


def sign(key: Any, text: str) -> bytes:
    return bytes(key.sign_message(encode_defunct(text=text)).signature)


def signed_message(key: Any, **changes: Any) -> tuple[SiweMessage, str]:
    msg = full_message(address=key.address, **changes)
    return msg, msg.to_text()


async def sig_reason(
    msg: SiweMessage,
    text: str,
    sig: Any,
    is_valid_1271: Callable[..., Awaitable[bool]] | None = None,
) -> str:
    with pytest.raises(SiweError) as info:
        await verify_signature(msg, text, sig, is_valid_1271=is_valid_1271)
    return info.value.reason


async def test_eoa_signature_verifies() -> None:
    key = Account.create()
    msg, text = signed_message(key)
    sig = sign(key, text)
    assert recover_address(text, sig) == key.address
    await verify_signature(msg, text, sig, is_valid_1271=None)
    # v as 0/1 (some hardware wallets) is the same signature
    await verify_signature(msg, text, sig[:64] + bytes([sig[64] - 27]))
    await verify_signature(msg, text, bytearray(sig))  # type: ignore[arg-type]


async def test_another_keys_signature_is_rejected() -> None:
    key, other = Account.create(), Account.create()
    msg, text = signed_message(key)
    assert await sig_reason(msg, text, sign(other, text)) == "wrong_signer"
    # a signature by the right key over different text
    _, other_text = signed_message(key, nonce="zzzzzzzzzzz")
    assert await sig_reason(msg, text, sign(key, other_text)) == "wrong_signer"


@pytest.mark.parametrize(
    "sig",
    [
        b"",
        b"\x00" * 64,
        b"\x00" * 66,
        b"\x00" * 65,
        b"\xff" * 65,
        b"\x01" * 64 + b"\x05",
        b"\x01" * 64 + b"\x25",  # EIP-155 style v: not for messages
        b"\x00" * 64 + b"\x1b",
        "0x" + "00" * 65,
        None,
        12345,
    ],
)
async def test_malformed_signatures_are_rejected_cleanly(sig: Any) -> None:
    key = Account.create()
    msg, text = signed_message(key)
    assert await sig_reason(msg, text, sig) in ("bad_signature", "wrong_signer")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_recover_garbage_never_crashes(sig: bytes) -> None:
    try:
        recover_address(FULL_TEXT, sig)
    except SiweError as exc:
        reason: str | None = exc.reason
    else:
        reason = None  # 65 bytes that happen to recover some key
    assert reason in (None, "bad_signature")


async def test_text_must_be_the_messages_text() -> None:
    key = Account.create()
    msg, text = signed_message(key)
    with pytest.raises(SiweUsageError):
        await verify_signature(msg, text + " ", sign(key, text))


class Fake1271:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.calls: list[tuple[str, bytes, bytes]] = []

    async def __call__(self, address: str, message_hash: bytes, signature: bytes) -> bool:
        self.calls.append((address, message_hash, signature))
        return self.answer


async def test_contract_wallet_is_asked_for_non_eoa_signatures() -> None:
    wallet = to_checksum_address("0x" + os.urandom(20).hex())
    msg = full_message(address=wallet)
    text = msg.to_text()
    safe_sig = os.urandom(130)  # e.g. two owners' signatures
    fake = Fake1271(True)
    await verify_signature(msg, text, safe_sig, is_valid_1271=fake)
    assert fake.calls == [(wallet, eip191_hash(text), safe_sig)]
    assert eip191_hash(text) == ref_keccak(
        b"\x19Ethereum Signed Message:\n" + str(len(text)).encode() + text.encode()
    )
    # a 65-byte signature by some owner key (not the wallet address) goes to the contract too
    owner = Account.create()
    fake.calls.clear()
    await verify_signature(msg, text, sign(owner, text), is_valid_1271=fake)
    assert len(fake.calls) == 1
    # an empty signature (e.g. a Safe's on-chain approved message) is the contract's call
    fake.calls.clear()
    await verify_signature(msg, text, b"", is_valid_1271=fake)
    assert fake.calls[0][2] == b""


async def test_contract_wallet_saying_no_is_wrong_signer() -> None:
    wallet = to_checksum_address("0x" + os.urandom(20).hex())
    msg = full_message(address=wallet)
    fake = Fake1271(False)
    assert await sig_reason(msg, msg.to_text(), os.urandom(70), fake) == "wrong_signer"
    assert len(fake.calls) == 1


async def test_contract_wallet_not_asked_when_the_eoa_signature_holds() -> None:
    key = Account.create()
    msg, text = signed_message(key)
    fake = Fake1271(False)
    await verify_signature(msg, text, sign(key, text), is_valid_1271=fake)
    assert fake.calls == []


async def test_oversized_signature_is_refused_before_the_contract_call() -> None:
    msg = full_message()
    fake = Fake1271(True)
    assert await sig_reason(msg, msg.to_text(), b"\x00" * 20_000, fake) == "bad_signature"
    assert fake.calls == []


async def test_a_failing_1271_call_propagates() -> None:
    async def down(address: str, message_hash: bytes, signature: bytes) -> bool:
        raise ChainUnavailable("no RPC")

    msg = full_message()
    with pytest.raises(ChainUnavailable):
        await verify_signature(msg, msg.to_text(), b"\x01" * 70, is_valid_1271=down)


def test_signature_from_hex() -> None:
    assert signature_from_hex("0x" + "ab" * 65) == b"\xab" * 65
    assert signature_from_hex("0x") == b""
    for bad in ("ab" * 65, "0x" + "a" * 129, "0xzz", "0x" + "00" * 20_000, 5):
        with pytest.raises(SiweError, match="bad_signature"):
            signature_from_hex(bad)  # type: ignore[arg-type]


# -- eip1271_check with a stand-in web3 ------------------------------------------------------------


class FakeEth:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.calls: list[tuple[dict[str, Any], Any]] = []

    async def call(self, tx: dict[str, Any], block: Any) -> bytes:
        self.calls.append((tx, block))
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return bytes(self.outcome)


class FakeW3:
    def __init__(self, outcome: Any) -> None:
        self.eth = FakeEth(outcome)

    @staticmethod
    def to_checksum_address(address: str) -> str:
        return ref_checksum(address)


async def test_eip1271_check_call_and_answers() -> None:
    from eth_abi.abi import decode
    from web3.exceptions import ContractLogicError

    addr, h, sig = ADDR, os.urandom(32), os.urandom(77)
    ok = FakeW3(EIP1271_MAGIC + bytes(28))
    assert await eip1271_check(ok, addr.lower(), h, sig)  # type: ignore[arg-type]
    tx, block = ok.eth.calls[0]
    assert tx["to"] == ADDR and block == "latest"
    assert tx["data"][:4] == bytes.fromhex("1626ba7e")
    assert ref_keccak(b"isValidSignature(bytes32,bytes)")[:4] == EIP1271_MAGIC
    assert decode(["bytes32", "bytes"], tx["data"][4:]) == (h, sig)
    for answer in (
        b"",  # no code at the address
        EIP1271_MAGIC,  # too short
        EIP1271_MAGIC + b"\x00" * 27 + b"\x01",  # dirty padding
        bytes(32),
        b"\xff" * 32,
    ):
        assert not await eip1271_check(FakeW3(answer), addr, h, sig)  # type: ignore[arg-type]
    assert await eip1271_check(FakeW3(EIP1271_MAGIC + bytes(60)), addr, h, sig)  # type: ignore[arg-type]
    reverted = FakeW3(ContractLogicError("execution reverted"))
    assert not await eip1271_check(reverted, addr, h, sig)  # type: ignore[arg-type]
    with pytest.raises(ChainUnavailable):
        await eip1271_check(FakeW3(ConnectionError("refused")), addr, h, sig)  # type: ignore[arg-type]
    with pytest.raises(SiweUsageError):
        await eip1271_check(ok, addr, b"short", sig)  # type: ignore[arg-type]


async def test_eip1271_checker_runs_through_a_pool_call() -> None:
    w3 = FakeW3(EIP1271_MAGIC + bytes(28))
    seen: list[int] = []

    async def call(fn: Callable[[Any], Awaitable[bool]]) -> bool:
        seen.append(1)
        return await fn(w3)

    checker = eip1271_checker(call)
    assert await checker(ADDR, bytes(32), b"sig")
    assert seen == [1]


# -- SiweVerifier ------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def verifier(clock: Clock, **kw: Any) -> SiweVerifier:
    args: dict[str, Any] = {
        "domain": "worlds.example:8443",
        "chain_id": 80002,
        "uri_prefix": "https://worlds.example:8443/",
        "scheme": "https",
        "skew": SKEW,
        "clock": clock,
    }
    args.update(kw)
    return SiweVerifier(**args)


def sign_in(key: Any, v: SiweVerifier, clock: Clock, **changes: Any) -> tuple[str, bytes]:
    fields: dict[str, Any] = {
        "nonce": v.issue_nonce(),
        "issued_at": format_timestamp(clock.now),
        "expiration_time": format_timestamp(clock.now + timedelta(minutes=5)),
        "not_before": None,
    }
    fields.update(changes)
    msg = full_message(address=key.address, **fields)
    text = msg.to_text()
    return text, sign(key, text)


async def verifier_reason(v: SiweVerifier, text: str, sig: bytes) -> str:
    with pytest.raises(SiweError) as info:
        await v.verify(text, sig)
    return info.value.reason


async def test_verifier_end_to_end() -> None:
    clock = Clock(T0)
    v = verifier(clock)
    key = Account.create()
    text, sig = sign_in(key, v, clock)
    clock.now += timedelta(seconds=3)
    msg = await v.verify(text, sig)
    assert msg.address == key.address
    assert await verifier_reason(v, text, sig) == "nonce_reused"  # replay
    stats = v.statistics()
    assert stats.verified == 1 and stats.rejected == {"nonce_reused": 1}
    assert stats.nonces.consumed == 1


async def test_verifier_rejections() -> None:
    clock = Clock(T0)
    v = verifier(clock)
    key, other = Account.create(), Account.create()
    cases = {
        "wrong_domain": sign_in(key, v, clock, domain="evil.example"),
        "wrong_chain": sign_in(key, v, clock, chain_id=137),
        "wrong_uri": sign_in(key, v, clock, uri="https://evil.example/"),
        "wrong_scheme": sign_in(key, v, clock, scheme="http"),
        "nonce_invalid": sign_in(key, v, clock, nonce="madeUpNonce1"),
        "issued_in_future": sign_in(
            key, v, clock, issued_at=format_timestamp(T0 + timedelta(hours=1))
        ),
        "expired": sign_in(
            key, v, clock, expiration_time=format_timestamp(T0 - timedelta(hours=1))
        ),
        "not_yet_valid": sign_in(
            key, v, clock, not_before=format_timestamp(T0 + timedelta(hours=1))
        ),
    }
    for reason, (text, sig) in cases.items():
        assert await verifier_reason(v, text, sig) == reason, reason
    text, _ = sign_in(key, v, clock)
    assert await verifier_reason(v, text, sign(other, text)) == "wrong_signer"
    # the nonce is spent by the failed attempt: one signature check per nonce
    assert await verifier_reason(v, text, sign(key, text)) == "nonce_reused"
    assert await verifier_reason(v, "garbage", b"") == "bad_header"
    text, sig = sign_in(key, v, clock)
    clock.now += timedelta(minutes=11)  # past the nonce TTL (10 min) and the expiration
    assert await verifier_reason(v, text, sig) == "expired"
    text, sig = sign_in(key, v, clock, expiration_time=None)
    clock.now += timedelta(minutes=11)
    assert await verifier_reason(v, text, sig) == "nonce_invalid"
    assert v.statistics().verified == 0


async def test_verifier_with_contract_wallet() -> None:
    clock = Clock(T0)
    fake = Fake1271(True)
    v = verifier(clock, is_valid_1271=fake)
    wallet = to_checksum_address("0x" + os.urandom(20).hex())
    msg = full_message(
        address=wallet,
        nonce=v.issue_nonce(),
        issued_at=format_timestamp(T0),
        expiration_time=None,
        not_before=None,
    )
    assert (await v.verify(msg.to_text(), b"\x42" * 100)).address == wallet
    assert fake.calls == [(wallet, eip191_hash(msg.to_text()), b"\x42" * 100)]
