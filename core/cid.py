"""Content identifiers (CIDv0 and CIDv1) with sha2-256, and the multibase text forms we use.

Written here rather than taken from `multiformats`/`py-cid` because the importer creates one CID
per 256 KiB block and needs them cheap (a frozen dataclass over bytes, no registry lookups), and
because parsing untrusted CIDs must be bounded and fail with our own error type.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from fluxnode.core.errors import InvalidCid as InvalidCid  # re-exported

DAG_PB = 0x70
RAW = 0x55
DAG_CBOR = 0x71
DAG_JSON = 0x0129
SHA2_256 = 0x12
IDENTITY = 0x00
KNOWN_CODECS = {DAG_PB: "dag-pb", RAW: "raw", DAG_CBOR: "dag-cbor", DAG_JSON: "dag-json"}

#: Longest CID text or binary form we accept (a sha2-512 CIDv1 in base32 is ~113 chars).
MAX_CID_TEXT = 200
MAX_CID_BYTES = 128
#: Identity-hashed CIDs inline their data; cap what we accept from peers.
MAX_IDENTITY_DIGEST = 64

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


def encode_varint(n: int) -> bytes:
    if n < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """Decode an unsigned LEB128 varint at `pos`; return (value, new_pos). At most 9 bytes."""
    value = shift = 0
    end = min(len(data), pos + 9)
    while pos < end:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and shift:
                raise InvalidCid("varint is not minimally encoded")
            return value, pos
        shift += 7
    raise InvalidCid("truncated or overlong varint")


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        try:
            n = n * 58 + _B58_INDEX[ch]
        except KeyError:
            raise InvalidCid(f"invalid base58 character {ch!r}") from None
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + body


@dataclass(frozen=True, slots=True)
class Cid:
    version: int
    codec: int
    #: The full multihash: varint(hash code) + varint(length) + digest.
    multihash: bytes

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def v0(cls, digest: bytes) -> Cid:
        return cls(0, DAG_PB, b"\x12\x20" + digest)

    @classmethod
    def v1(cls, codec: int, digest: bytes) -> Cid:
        return cls(1, codec, b"\x12\x20" + digest)

    @classmethod
    def hash_block(cls, data: bytes | memoryview, version: int, codec: int) -> Cid:
        digest = hashlib.sha256(data).digest()
        if version == 0:
            if codec != DAG_PB:
                raise ValueError("CIDv0 is dag-pb only")
            return cls.v0(digest)
        return cls.v1(codec, digest)

    # -- properties ----------------------------------------------------------------------------
    @property
    def hash_code(self) -> int:
        return decode_varint(self.multihash, 0)[0]

    @property
    def digest(self) -> bytes:
        _, pos = decode_varint(self.multihash, 0)
        _, pos = decode_varint(self.multihash, pos)
        return self.multihash[pos:]

    def verify(self, data: bytes | memoryview) -> bool:
        """True if `data` hashes to this CID's multihash (sha2-256 or identity)."""
        code = self.hash_code
        if code == SHA2_256:
            return hashlib.sha256(data).digest() == self.digest
        if code == IDENTITY:
            return bytes(data) == self.digest
        return False

    def to_bytes(self) -> bytes:
        if self.version == 0:
            return self.multihash
        return encode_varint(1) + encode_varint(self.codec) + self.multihash

    def to_v1(self) -> Cid:
        return Cid(1, self.codec, self.multihash)

    def __str__(self) -> str:
        if self.version == 0:
            return b58encode(self.multihash)
        return "b" + base64.b32encode(self.to_bytes()).decode().lower().rstrip("=")

    def __repr__(self) -> str:
        return f"Cid({self})"

    # -- parsing -------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> Cid:
        """Parse a CID's text form; errors read `invalid CID '...': reason`."""
        try:
            return cls._parse(text)
        except InvalidCid as exc:
            shown = text if isinstance(text, str) and len(text) <= 80 else f"{str(text)[:80]}..."
            raise InvalidCid(f"invalid CID {shown!r}: {exc}") from None

    @classmethod
    def _parse(cls, text: str) -> Cid:
        if not isinstance(text, str) or not text:
            raise InvalidCid("empty CID")
        if len(text) > MAX_CID_TEXT:
            raise InvalidCid(f"CID longer than {MAX_CID_TEXT} characters")
        if len(text) == 46 and text.startswith("Qm"):
            return cls.from_bytes(b58decode(text))
        prefix, body = text[0], text[1:]
        try:
            if prefix == "b":
                raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
            elif prefix == "B":
                raw = base64.b32decode(body + "=" * (-len(body) % 8))
            elif prefix == "z":
                raw = b58decode(body)
            elif prefix in "fF":
                raw = bytes.fromhex(body)
            else:
                raise InvalidCid(f"unsupported multibase prefix {prefix!r}")
        except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
            raise InvalidCid(f"bad multibase encoding: {exc}") from None
        cid = cls.from_bytes(raw)
        if cid.version == 0:
            raise InvalidCid("a CIDv0 must be written in base58btc without a prefix")
        return cid

    @classmethod
    def from_bytes(cls, raw: bytes) -> Cid:
        cid, end = cls.read(raw, 0)
        if end != len(raw):
            raise InvalidCid("trailing bytes after CID")
        return cid

    @classmethod
    def read(cls, data: bytes | memoryview, pos: int) -> tuple[Cid, int]:
        """Read one binary CID starting at `pos` (as inside CAR sections); return (cid, end)."""
        if len(data) - pos >= 34 and data[pos] == 0x12 and data[pos + 1] == 0x20:
            return cls(0, DAG_PB, bytes(data[pos : pos + 34])), pos + 34
        version, p = decode_varint(data, pos)
        if version != 1:
            raise InvalidCid(f"unsupported CID version {version}")
        codec, p = decode_varint(data, p)
        mh_start = p
        code, p = decode_varint(data, p)
        length, p = decode_varint(data, p)
        if code == SHA2_256 and length != 32:
            raise InvalidCid("sha2-256 digest must be 32 bytes")
        if code == IDENTITY and length > MAX_IDENTITY_DIGEST:
            raise InvalidCid(f"identity digest longer than {MAX_IDENTITY_DIGEST} bytes")
        if code not in (SHA2_256, IDENTITY):
            raise InvalidCid(f"unsupported multihash 0x{code:x}")
        if p + length > len(data):
            raise InvalidCid("truncated multihash")
        if p + length - pos > MAX_CID_BYTES:
            raise InvalidCid("CID too long")
        return cls(1, codec, bytes(data[mh_start : p + length])), p + length
