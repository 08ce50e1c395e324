"""libp2p node identity: Ed25519 keys in libp2p's protobuf key format (as Kubo stores them)."""

from __future__ import annotations

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair, KeyType, PrivateKey
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.peer.id import ID

from fluxnode.core.errors import IdentityError

#: A protobuf-wrapped Ed25519 private key is 68 bytes; anything far larger is not a key.
MAX_KEY_FILE_BYTES = 4096


def generate_private_key() -> bytes:
    """A new Ed25519 private key, serialized as a libp2p `PrivateKey` protobuf."""
    return create_new_key_pair().private_key.serialize()


def load_private_key(data: bytes) -> PrivateKey:
    if len(data) > MAX_KEY_FILE_BYTES:
        raise IdentityError(f"key is {len(data)} bytes; not a libp2p private key")
    try:
        key = deserialize_private_key(data)
    except Exception as exc:  # protobuf/nacl raise assorted types on garbage
        raise IdentityError(f"not a libp2p private key: {exc}") from exc
    if key.get_type() is not KeyType.Ed25519:
        raise IdentityError(f"unsupported key type {key.get_type().name}; expected Ed25519")
    return key


def key_pair_from_private_key(data: bytes) -> KeyPair:
    key = load_private_key(data)
    return KeyPair(key, key.get_public_key())


def peer_id_from_private_key(data: bytes) -> str:
    """The base58 peer ID (12D3Koo...) of a serialized private key."""
    return ID.from_pubkey(load_private_key(data).get_public_key()).to_base58()
