"""libp2p node identity: Ed25519 keys in libp2p's protobuf key format.

The key file is py-libp2p's serialization of an Ed25519 `PrivateKey` protobuf
(`08 01 12 20` + the 32-byte seed). It is read and written here with `cryptography` and a
few lines of protobuf, not with libp2p: importing libp2p costs over half a second, and the
CLI commands that only need the key (`init`, `id`, `publish`) must not pay for it. Only
`key_pair_from_private_key`, which the host calls, imports libp2p.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import base58
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fluxnode.core.cid import encode_varint
from fluxnode.core.errors import IdentityError

if TYPE_CHECKING:
    from libp2p.crypto.keys import KeyPair

#: A protobuf-wrapped Ed25519 private key is 36 bytes; anything far larger is not a key.
MAX_KEY_FILE_BYTES = 4096

#: libp2p's `KeyType` enum (crypto.proto).
_KEY_TYPES = {0: "RSA", 1: "Ed25519", 2: "Secp256k1", 3: "ECDSA"}
_ED25519 = 1
_SEED_BYTES = 32
#: Public keys this short are embedded in the peer ID (identity multihash, code 0x00).
_MAX_INLINE_KEY = 42


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise IdentityError("not a libp2p private key: truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _key_message(key_type: int, data: bytes) -> bytes:
    """A libp2p `PublicKey`/`PrivateKey` message: field 1 type (varint), field 2 data."""
    return b"\x08" + encode_varint(key_type) + b"\x12" + encode_varint(len(data)) + data


def _parse_key_message(data: bytes) -> tuple[int, bytes]:
    """(key type, key data) of a serialized libp2p key message. Like protobuf, a repeated field
    counts once (the last wins) and unknown varint/length-delimited fields are skipped."""
    key_type: int | None = None
    payload: bytes | None = None
    pos = 0
    while pos < len(data):
        tag, pos = _read_varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
            if field == 1:
                key_type = value
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise IdentityError("not a libp2p private key: truncated field")
            if field == 2:
                payload = data[pos : pos + length]
            pos += length
        else:
            raise IdentityError(f"not a libp2p private key: unexpected wire type {wire}")
    if key_type is None or payload is None:
        raise IdentityError("not a libp2p private key: missing key type or key data")
    return key_type, payload


def generate_private_key() -> bytes:
    """A new Ed25519 private key, serialized as a libp2p `PrivateKey` protobuf."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    return _key_message(_ED25519, seed)


def load_private_key(data: bytes) -> bytes:
    """Check a serialized libp2p private key; returns its 32-byte Ed25519 seed."""
    if len(data) > MAX_KEY_FILE_BYTES:
        raise IdentityError(f"key is {len(data)} bytes; not a libp2p private key")
    key_type, seed = _parse_key_message(data)
    if key_type != _ED25519:
        name = _KEY_TYPES.get(key_type, str(key_type))
        raise IdentityError(f"unsupported key type {name}; expected Ed25519")
    if len(seed) != _SEED_BYTES:
        raise IdentityError(
            f"not a libp2p private key: Ed25519 seed is {len(seed)} bytes, not {_SEED_BYTES}"
        )
    return seed


def public_key_bytes(data: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key of a serialized private key."""
    seed = load_private_key(data)
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def peer_id_from_private_key(data: bytes) -> str:
    """The base58 peer ID (12D3Koo...) of a serialized private key: the identity multihash of
    the protobuf-encoded public key, as libp2p's `ID.from_pubkey` computes it."""
    public = _key_message(_ED25519, public_key_bytes(data))
    assert len(public) <= _MAX_INLINE_KEY
    return base58.b58encode(b"\x00" + encode_varint(len(public)) + public).decode()


def key_pair_from_private_key(data: bytes) -> KeyPair:
    """The libp2p key pair for the host (imports libp2p; only the host needs it)."""
    from libp2p.crypto.ed25519 import Ed25519PrivateKey as Libp2pEd25519
    from libp2p.crypto.keys import KeyPair

    key = Libp2pEd25519.from_bytes(load_private_key(data))
    return KeyPair(key, key.get_public_key())
