"""secp256k1 wallet keys without eth-account: key files, addresses, EIP-191 signing and recovery.

`flux-node publish` signs one record and exits. Importing eth-account costs it most of a
second (it pulls py_ecc, which computes pairing constants at import), so the signing path
uses `coincurve` (libsecp256k1, the backend eth-keys itself prefers) and pycryptodome's
keccak. The signatures are byte-identical to eth-account's `sign_message(encode_defunct(...))`:
RFC 6979 nonces and low-s, as libsecp256k1 always produces, `r ‖ s ‖ v` with v = 27 + recid.
`recover_personal` recovers what eth-account's `recover_message` recovers, refusing the same
signatures; every node runs it on every world record it validates.

Key files: `read_key_secret(path)` reads one hex private key (optional 0x, surrounding
whitespace ignored) from a file that, like ssh keys, must be a regular file owned by the current
user (or root) with no group/other permission bits, or else from an environment variable.
Never pass keys on the command line: argv is visible to every local user. Errors never include
key material.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from coincurve import PrivateKey, PublicKey
from Crypto.Hash import keccak

from fluxnode.core.errors import KeyFileError

__all__ = [
    "WalletKey",
    "checksum_address",
    "keccak256",
    "load_wallet_key",
    "personal_message_hash",
    "read_key_secret",
    "recover_personal",
]

_KEY = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")
_MAX_KEY_FILE = 4096
#: The order of the secp256k1 group: a private key is an integer in [1, N).
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def keccak256(data: bytes) -> bytes:
    return keccak.new(data=data, digest_bits=256).digest()


def checksum_address(raw: bytes) -> str:
    """The EIP-55 mixed-case text of a 20-byte address."""
    hex_addr = raw.hex()
    digest = keccak256(hex_addr.encode("ascii")).hex()
    return "0x" + "".join(
        c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c for i, c in enumerate(hex_addr)
    )


def personal_message_hash(text: str) -> bytes:
    """EIP-191 version 0x45 ("personal_sign") hash of a UTF-8 text message."""
    body = text.encode("utf-8")
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(body)).encode() + body)


@dataclass(frozen=True)
class WalletKey:
    """A secp256k1 private key and its EIP-55 address. `key` and `address` match the attributes
    of eth-account's `LocalAccount`, so either can be handed to `sign_record`."""

    key: bytes = field(repr=False)
    address: str

    @classmethod
    def from_secret(cls, secret: bytes) -> WalletKey:
        if len(secret) != 32 or not 0 < int.from_bytes(secret, "big") < _SECP256K1_N:
            raise ValueError("not a secp256k1 private key")
        public = PrivateKey(secret).public_key.format(compressed=False)[1:]
        return cls(bytes(secret), checksum_address(keccak256(public)[-20:]))

    def sign_personal(self, text: str) -> bytes:
        """The 65-byte EIP-191 signature `r ‖ s ‖ v` (v = 27 or 28) of `text`."""
        sig = PrivateKey(self.key).sign_recoverable(personal_message_hash(text), hasher=None)
        return sig[:64] + bytes([27 + sig[64]])


def recover_personal(text: str, signature: bytes) -> str:
    """The EIP-55 address whose key made the 65-byte EIP-191 signature `signature` of `text`.

    v may be 27/28 or 0/1; r and s must be below the group order, as eth-keys requires (high s
    is accepted, as eth-account accepts it). Raises ValueError for anything that does not
    recover a public key."""
    if len(signature) != 65:
        raise ValueError(f"an EOA signature is 65 bytes, got {len(signature)}")
    v = signature[64]
    if v not in (0, 1, 27, 28):
        raise ValueError(f"signature recovery id v={v} is not 27/28 (or 0/1)")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
    if r >= _SECP256K1_N or s >= _SECP256K1_N:
        raise ValueError("signature r or s is not below the secp256k1 group order")
    compact = bytes(signature[:64]) + bytes([v % 27])
    try:
        public = PublicKey.from_signature_and_message(
            compact, personal_message_hash(text), hasher=None
        )
    except Exception as exc:  # libsecp256k1 refuses: not a signature of anything
        raise ValueError(
            f"signature does not recover a public key ({type(exc).__name__})"
        ) from None
    return checksum_address(keccak256(public.format(compressed=False)[1:])[-20:])


def read_key_secret(path: Path | None, env_var: str) -> tuple[bytes, str]:
    """The 32-byte private key from key file `path`, or else from environment variable
    `env_var`, and where it came from (for messages). KeyFileError if missing or malformed."""
    if path is not None:
        text = _read_key_file(Path(path))
        source = f"key file {path}"
    else:
        value = os.environ.get(env_var)
        if not value:
            raise KeyFileError(f"no deploy key: give a key file or set {env_var}")
        text = value
        source = f"environment variable {env_var}"
    match = _KEY.fullmatch(text.strip())
    if match is None:
        raise KeyFileError(f"{source} does not hold a 32-byte hex private key")
    secret = bytes.fromhex(match.group(1))
    if not 0 < int.from_bytes(secret, "big") < _SECP256K1_N:
        raise KeyFileError(f"{source} does not hold a valid secp256k1 private key")
    return secret, source


def load_wallet_key(path: Path | None, env_var: str) -> WalletKey:
    """`read_key_secret` as a `WalletKey`."""
    secret, source = read_key_secret(path, env_var)
    try:
        return WalletKey.from_secret(secret)
    except ValueError:
        raise KeyFileError(f"{source} does not hold a valid secp256k1 private key") from None


def _read_key_file(path: Path) -> str:
    try:
        # O_NONBLOCK: a FIFO would block the open before fstat could refuse it.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise KeyFileError(f"cannot open key file {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        if st.st_uid not in (os.geteuid(), 0):
            raise KeyFileError(f"key file {path} is owned by another user (uid {st.st_uid})")
        if st.st_mode & 0o077:
            mode = stat.S_IMODE(st.st_mode)
            raise KeyFileError(
                f"key file {path} has permissions {mode:04o}, which are too open: "
                f"it must not be accessible by group or others (chmod 600 {path})"
            )
        if st.st_size > _MAX_KEY_FILE:
            raise KeyFileError(f"key file {path} is too large to be a key")
        data = os.read(fd, _MAX_KEY_FILE + 1)
    finally:
        os.close(fd)
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyFileError(f"key file {path} is not ASCII hex") from None
