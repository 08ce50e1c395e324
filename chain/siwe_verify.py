"""Sign-In with Ethereum, the I/O edge: signature recovery (eth-account) and EIP-1271.

`fluxnode.core.siwe` parses and checks the message; this module proves who signed it:

- an EOA signature (65 bytes r‖s‖v, EIP-191 "personal_sign" of the exact message text) must
  recover to the message's address;
- otherwise, when an `is_valid_1271(address, eip191_hash, signature)` callable is given, the
  address is asked as a contract wallet (EIP-1271 `isValidSignature(bytes32,bytes)` must answer
  the magic value 0x1626ba7e). `eip1271_check` is that call over web3; `eip1271_checker(pool.call)`
  wires it to `RpcPool`, whose endpoints must be on the message's chain (EIP-4361: the contract
  is resolved on `chain-id`; `SiweVerifier` only accepts its configured chain id).

`SiweVerifier` is the whole sign-in check: parse → validate (domain, scheme, chain, URI, times)
→ spend the nonce → verify the signature. The nonce is spent before the signature is checked, so
each issued nonce buys at most one signature check (and at most one EIP-1271 `eth_call`), and
two concurrent submissions of one signed message cannot both pass. Counterfactual (not yet
deployed) contract wallets (ERC-6492) are not supported.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from eth_account import Account
from eth_account.messages import defunct_hash_message, encode_defunct

from fluxnode.core.siwe import (
    NonceBook,
    NonceStats,
    SiweError,
    SiweMessage,
    SiweUsageError,
    parse_siwe,
    validate,
)

if TYPE_CHECKING:
    from web3 import AsyncWeb3
    from web3.types import BlockIdentifier

__all__ = [
    "EIP1271_MAGIC",
    "MAX_SIGNATURE_BYTES",
    "Is1271",
    "Nonces",
    "SiweVerifier",
    "VerifierStats",
    "eip191_hash",
    "eip1271_check",
    "eip1271_checker",
    "recover_address",
    "signature_from_hex",
    "verify_signature",
]

#: `bytes4(keccak256("isValidSignature(bytes32,bytes)"))`, also the "valid" answer.
EIP1271_MAGIC = bytes.fromhex("1626ba7e")
#: Contract-wallet signatures can be long (a multisig concatenates one per owner); bound them.
MAX_SIGNATURE_BYTES = 16 * 1024

#: (address, EIP-191 hash of the message text, signature) -> does the contract accept it?
Is1271 = Callable[[str, bytes, bytes], Awaitable[bool]]

_HEX_SIGNATURE = re.compile(r"0x(?:[0-9a-fA-F]{2})*")


class Nonces(Protocol):
    """What `SiweVerifier` needs of a nonce store: `NonceBook` (memory) or
    `fluxnode.chain.nonce_store.SqliteNonceBook` (kept across restarts)."""

    def issue(self, now: datetime) -> str: ...

    def consume(self, nonce: str, now: datetime) -> None: ...

    def statistics(self) -> NonceStats: ...


def _refused(reason: str, message: str) -> SiweError:
    return SiweError(reason, message, http_status=401)


def eip191_hash(text: str) -> bytes:
    """keccak256("\\x19Ethereum Signed Message:\\n" + len(text) + text): what an EOA signs."""
    return bytes(defunct_hash_message(text=text))


def signature_from_hex(value: str) -> bytes:
    """A client's "0x…" hex signature as bytes; SiweError "bad_signature" if it is not one."""
    if not isinstance(value, str) or len(value) > 2 + 2 * MAX_SIGNATURE_BYTES:
        raise SiweError("bad_signature", "signature must be 0x-prefixed hex of bounded length")
    if not _HEX_SIGNATURE.fullmatch(value):
        raise SiweError("bad_signature", "signature must be 0x followed by whole hex bytes")
    return bytes.fromhex(value[2:])


def recover_address(text: str, signature: bytes) -> str:
    """The EIP-55 address whose key made this EIP-191 signature of `text`.

    Accepts v = 27/28 or 0/1. Anything that is not a 65-byte recoverable signature raises
    SiweError "bad_signature" (never a library exception).
    """
    if not isinstance(signature, bytes | bytearray):
        raise SiweError("bad_signature", f"signature must be bytes, not {type(signature).__name__}")
    if len(signature) != 65:
        raise SiweError("bad_signature", f"an EOA signature is 65 bytes, got {len(signature)}")
    v = signature[64]
    if v not in (0, 1, 27, 28):
        raise SiweError("bad_signature", f"signature recovery id v={v} is not 27/28 (or 0/1)")
    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=bytes(signature)))
    except Exception as exc:  # eth-keys BadSignature, ValueError, ...: all mean "not a signature"
        raise SiweError(
            "bad_signature", f"signature does not recover a public key ({type(exc).__name__})"
        ) from None


async def verify_signature(
    msg: SiweMessage,
    text: str,
    signature: bytes,
    *,
    is_valid_1271: Is1271 | None = None,
) -> None:
    """Prove `msg.address` signed `text` (which must be `msg.to_text()`).

    EOA first; when that fails and `is_valid_1271` is given, the contract wallet at the address
    decides. Raises SiweError "bad_signature" (malformed) or "wrong_signer" (someone else
    signed, or the contract said no). Errors raised by `is_valid_1271` itself (e.g. the chain
    cannot be read) propagate: callers fail closed.
    """
    if msg.to_text() != text:
        raise SiweUsageError("verify_signature: text is not the message's canonical text")
    if not isinstance(signature, bytes | bytearray):
        raise SiweError("bad_signature", f"signature must be bytes, not {type(signature).__name__}")
    if len(signature) > MAX_SIGNATURE_BYTES:
        raise SiweError(
            "bad_signature", f"signature is {len(signature)} bytes, over {MAX_SIGNATURE_BYTES}"
        )
    eoa_problem: SiweError
    try:
        signer = recover_address(text, signature)
    except SiweError as exc:
        eoa_problem = exc
    else:
        if signer == msg.address:
            return
        eoa_problem = _refused(
            "wrong_signer", f"message is for {msg.address}, signed by another key"
        )
    if is_valid_1271 is None:
        raise eoa_problem
    if await is_valid_1271(msg.address, eip191_hash(text), bytes(signature)):
        return
    raise _refused(
        "wrong_signer",
        f"not signed by {msg.address}: no EOA signature ({eoa_problem.message}) and its "
        "contract (EIP-1271) did not accept it",
    )


def _is_revert(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "revert" in text or "invalid opcode" in text or "out of gas" in text


async def eip1271_check(
    w3: AsyncWeb3[Any],
    address: str,
    message_hash: bytes,
    signature: bytes,
    *,
    block_identifier: BlockIdentifier = "latest",
) -> bool:
    """`isValidSignature(message_hash, signature)` by eth_call on the contract at `address`.

    True only for the exact EIP-1271 answer (first 32 bytes = 0x1626ba7e padded with zeros).
    False when the call reverts, the address has no code (empty answer) or answers anything else.
    Transport failures are raised as `ChainUnavailable` (via `fluxnode.chain.rpc.translate`),
    so a caller that cannot read the chain fails closed.
    """
    from eth_abi.abi import encode
    from web3.exceptions import ContractLogicError, Web3RPCError

    from fluxnode.chain.rpc import translate

    if len(message_hash) != 32:
        raise SiweUsageError(f"message hash must be 32 bytes, got {len(message_hash)}")
    data = EIP1271_MAGIC + encode(["bytes32", "bytes"], [bytes(message_hash), bytes(signature)])
    try:
        result = await w3.eth.call(
            {"to": w3.to_checksum_address(address), "data": data}, block_identifier
        )
    except ContractLogicError:
        return False
    except Web3RPCError as exc:
        if _is_revert(exc):
            return False
        raise translate(exc) from exc
    except Exception as exc:
        raise translate(exc) from exc
    answer = bytes(result)
    return len(answer) >= 32 and answer[:32] == EIP1271_MAGIC + bytes(28)


def eip1271_checker(
    call: Callable[[Callable[[Any], Awaitable[bool]]], Awaitable[bool]],
) -> Is1271:
    """An `is_valid_1271` that runs `eip1271_check` through `call` (e.g. `RpcPool.call`)."""

    async def is_valid_1271(address: str, message_hash: bytes, signature: bytes) -> bool:
        return await call(lambda w3: eip1271_check(w3, address, message_hash, signature))

    return is_valid_1271


@dataclass(frozen=True)
class VerifierStats:
    verified: int
    #: Rejections by SiweError reason ("wrong_domain", "nonce_reused", "wrong_signer", ...).
    rejected: dict[str, int]
    nonces: NonceStats


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SiweVerifier:
    """Everything a relying party checks for one sign-in, with an injected clock.

    `issue_nonce()` for the client, then `await verify(text, signature)` returns the parsed
    message (bind the session to `msg.address`) or raises SiweError with a `reason`.
    """

    def __init__(
        self,
        *,
        domain: str,
        chain_id: int,
        uri_prefix: str | None = None,
        scheme: str | None = None,
        skew: timedelta = timedelta(seconds=60),
        nonces: Nonces | None = None,
        is_valid_1271: Is1271 | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if skew < timedelta(0):
            raise SiweUsageError(f"skew must not be negative: {skew}")
        self.domain = domain
        self.chain_id = chain_id
        self.uri_prefix = uri_prefix
        self.scheme = scheme
        self.skew = skew
        self.nonces: Nonces = nonces if nonces is not None else NonceBook()
        self._is_valid_1271 = is_valid_1271
        self._clock = clock
        self._verified = 0
        self._rejected: collections.Counter[str] = collections.Counter()

    def issue_nonce(self) -> str:
        return self.nonces.issue(self._clock())

    async def verify(self, text: str, signature: bytes) -> SiweMessage:
        try:
            msg = parse_siwe(text)
            now = self._clock()
            validate(
                msg,
                expected_domain=self.domain,
                expected_chain_id=self.chain_id,
                now=now,
                skew=self.skew,
                expected_uri_prefix=self.uri_prefix,
                expected_scheme=self.scheme,
            )
            self.nonces.consume(msg.nonce, now)
            await verify_signature(msg, text, signature, is_valid_1271=self._is_valid_1271)
        except SiweError as exc:
            self._rejected[exc.reason] += 1
            raise
        self._verified += 1
        return msg

    def statistics(self) -> VerifierStats:
        return VerifierStats(
            verified=self._verified,
            rejected=dict(self._rejected),
            nonces=self.nonces.statistics(),
        )
