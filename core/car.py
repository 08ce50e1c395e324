"""CARv1 framing: header (DAG-CBOR `{roots, version}`) and length-prefixed sections. Sans-IO.

Only the tiny subset of DAG-CBOR a CARv1 header uses is implemented (maps, arrays, text, byte
strings, unsigned ints, booleans/null, tag 42 for CIDs), with bounds, because the `ipld-car`
package misreads CIDv0 sections and `libipld` only decodes DAG-CBOR payloads.
"""

from __future__ import annotations

from dataclasses import dataclass

from fluxnode.core.cid import Cid, InvalidCid, decode_varint, encode_varint
from fluxnode.core.errors import InvalidCar as InvalidCar  # re-exported

MAX_HEADER_BYTES = 64 * 1024
MAX_ROOTS = 1024
#: A section is varint(len) + CID + block; blocks are capped at 2 MiB (see dagpb.MAX_BLOCK_SIZE).
MAX_SECTION_BYTES = 2 * 1024 * 1024 + 256


@dataclass(frozen=True)
class CarHeader:
    version: int
    roots: tuple[Cid, ...]


# -- header encoding ------------------------------------------------------------------------------
def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def encode_header(roots: list[Cid] | tuple[Cid, ...]) -> bytes:
    """varint-prefixed DAG-CBOR `{"roots": [...], "version": 1}` (keys in DAG-CBOR order)."""
    body = bytearray(_cbor_head(5, 2))
    body += _cbor_head(3, 5) + b"roots" + _cbor_head(4, len(roots))
    for cid in roots:
        raw = b"\x00" + cid.to_bytes()
        body += b"\xd8\x2a" + _cbor_head(2, len(raw)) + raw
    body += _cbor_head(3, 7) + b"version" + _cbor_head(0, 1)
    return encode_varint(len(body)) + bytes(body)


def encode_section(cid: Cid, data: bytes) -> bytes:
    raw = cid.to_bytes()
    return encode_varint(len(raw) + len(data)) + raw + data


# -- header decoding ------------------------------------------------------------------------------
class _Cbor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise InvalidCar("truncated CAR header")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def _arg(self, info: int) -> int:
        if info < 24:
            return info
        sizes = {24: 1, 25: 2, 26: 4, 27: 8}
        if info not in sizes:
            raise InvalidCar("indefinite-length or reserved CBOR item in CAR header")
        return int.from_bytes(self._take(sizes[info]), "big")

    def item(self, depth: int = 0) -> object:
        if depth > 8:
            raise InvalidCar("CAR header nested too deeply")
        initial = self._take(1)[0]
        major, info = initial >> 5, initial & 31
        if major == 7:
            simple = {20: False, 21: True, 22: None}
            if info not in simple:
                raise InvalidCar("unsupported CBOR simple value or float in CAR header")
            return simple[info]
        n = self._arg(info)
        if major == 0:
            return n
        if major in (2, 3):
            raw = self._take(n)
            if major == 2:
                return raw
            try:
                return raw.decode()
            except UnicodeDecodeError:
                raise InvalidCar("non-UTF-8 text in CAR header") from None
        if major == 4:
            if n > MAX_ROOTS:
                raise InvalidCar(f"more than {MAX_ROOTS} items in a CAR header array")
            return [self.item(depth + 1) for _ in range(n)]
        if major == 5:
            if n > 16:
                raise InvalidCar("CAR header map too large")
            out: dict[str, object] = {}
            for _ in range(n):
                key = self.item(depth + 1)
                if not isinstance(key, str) or key in out:
                    raise InvalidCar("CAR header map keys must be unique strings")
                out[key] = self.item(depth + 1)
            return out
        if major == 6:
            if n != 42:
                raise InvalidCar(f"unsupported CBOR tag {n} in CAR header")
            wrapped = self.item(depth + 1)
            if not isinstance(wrapped, bytes) or not wrapped.startswith(b"\x00"):
                raise InvalidCar("tag 42 must wrap a 0x00-prefixed CID")
            try:
                return Cid.from_bytes(wrapped[1:])
            except InvalidCid as exc:
                raise InvalidCar(f"bad root CID: {exc}") from None
        raise InvalidCar("negative integers are not valid in a CAR header")


def decode_header(body: bytes) -> CarHeader:
    parser = _Cbor(body)
    value = parser.item()
    if parser.pos != len(body):
        raise InvalidCar("trailing bytes in CAR header")
    if not isinstance(value, dict):
        raise InvalidCar("CAR header is not a map")
    version = value.get("version")
    if version != 1:
        raise InvalidCar(f"unsupported CAR version {version!r} (only CARv1)")
    roots = value.get("roots")
    if not isinstance(roots, list) or not all(isinstance(r, Cid) for r in roots):
        raise InvalidCar("CAR header roots must be a list of CIDs")
    return CarHeader(1, tuple(r for r in roots if isinstance(r, Cid)))


def split_section(section: bytes) -> tuple[Cid, bytes]:
    """Split one section body (after its length prefix) into CID and block bytes."""
    try:
        cid, pos = Cid.read(section, 0)
    except InvalidCid as exc:
        raise InvalidCar(f"bad section CID: {exc}") from None
    return cid, section[pos:]


def read_length(data: bytes, what: str) -> tuple[int, int]:
    try:
        return decode_varint(data, 0)
    except InvalidCid as exc:
        raise InvalidCar(f"bad {what} length: {exc}") from None
