"""Bitswap 1.0.0/1.1.0/1.2.0 messages: strict, bounded protobuf encoding and decoding.

Pure (stdlib only). The schema (boxo's `message.proto`, as Helia 7 ships it)::

    message Message {
      message Wantlist {
        message Entry { bytes block = 1; int32 priority = 2; bool cancel = 3;
                        WantType wantType = 4; bool sendDontHave = 5; }   // Block=0, Have=1
        repeated Entry entries = 1; bool full = 2;
      }
      message Block { bytes prefix = 1; bytes data = 2; }
      message BlockPresence { bytes cid = 1; BlockPresenceType type = 2; }  // Have=0, DontHave=1
      Wantlist wantlist = 1;
      repeated bytes blocks = 2;          // bitswap 1.0.0 only: raw blocks, implied CIDv0
      repeated Block payload = 3;         // 1.1.0+
      repeated BlockPresence blockPresences = 4;  // 1.2.0
      int32 pendingBytes = 5;
    }

On the wire every message is preceded by its length as an unsigned varint. Peers are untrusted:
every size and count is bounded and every violation raises a `BitswapWireError` (or the shared
`BlockTooLarge` for an oversized block; both are `RemoteError`s). Unknown fields with ordinary
wire types are skipped (protobuf forward compatibility); groups and malformed varints are errors.

A block travels as (prefix, data); the prefix is `varint(version) varint(codec)
varint(mh type) varint(mh length)`. CIDv0 is `00 70 12 20` — stock py-libp2p sends an empty
prefix for it, which Helia drops. The receiver rebuilds the CID by hashing the data, so a block
whose rebuilt CID matches the one wanted is verified by construction.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from fluxnode.core.cid import DAG_PB, IDENTITY, MAX_IDENTITY_DIGEST, SHA2_256, Cid
from fluxnode.core.cid import encode_varint as uvarint
from fluxnode.core.errors import BitswapWireError as BitswapWireError  # re-exported
from fluxnode.core.errors import BlockTooLarge as BlockTooLarge
from fluxnode.core.errors import MessageTooLarge as MessageTooLarge
from fluxnode.core.errors import RemoteError

PROTOCOL_120 = "/ipfs/bitswap/1.2.0"
PROTOCOL_110 = "/ipfs/bitswap/1.1.0"
PROTOCOL_100 = "/ipfs/bitswap/1.0.0"

#: Largest framed message we read or write (Helia's default in and out is 4 MiB too).
MAX_MESSAGE_SIZE = 4 * 1024 * 1024
#: Most wantlist entries in one message (Helia and Kubo cap a peer's wantlist at 1024).
MAX_WANTLIST_ENTRIES = 1024
#: Most block presences in one message.
MAX_PRESENCES = 4096
#: Largest block (Kubo's network limit; our dag-pb limit).
MAX_BLOCK_SIZE = 2 * 1024 * 1024
MAX_PREFIX_BYTES = 32
MAX_CID_BYTES = 128

CIDV0_PREFIX = b"\x00\x70\x12\x20"

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


class WantType(enum.IntEnum):
    BLOCK = 0
    HAVE = 1


class PresenceType(enum.IntEnum):
    HAVE = 0
    DONT_HAVE = 1


@dataclass(frozen=True, slots=True)
class WantEntry:
    cid: Cid
    priority: int = 1
    cancel: bool = False
    want_type: WantType = WantType.BLOCK
    send_dont_have: bool = False


@dataclass(frozen=True, slots=True)
class BlockPayload:
    prefix: bytes
    data: bytes


@dataclass(frozen=True, slots=True)
class Presence:
    cid: Cid
    type: PresenceType


@dataclass(frozen=True, slots=True)
class Message:
    wantlist: tuple[WantEntry, ...] = ()
    full: bool = False
    blocks: tuple[BlockPayload, ...] = ()
    presences: tuple[Presence, ...] = ()
    pending_bytes: int = 0

    @property
    def empty(self) -> bool:
        return not (self.wantlist or self.full or self.blocks or self.presences)


# -- varints -----------------------------------------------------------------------------------
def read_uvarint(
    data: bytes | bytearray | memoryview, pos: int, max_bytes: int = 10
) -> tuple[int, int]:
    """Decode an unsigned varint (at most `max_bytes` bytes, < 2**64); return (value, pos)."""
    value = shift = 0
    end = min(len(data), pos + max_bytes)
    while pos < end:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if value >= 1 << 64:
                raise BitswapWireError("varint overflows 64 bits")
            return value, pos
        shift += 7
    raise BitswapWireError("truncated or overlong varint")


def _int32(value: int) -> int:
    if value >= 1 << 63:
        value -= 1 << 64
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise BitswapWireError("int32 field out of range")
    return value


def _enc_int32(value: int) -> bytes:
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise ValueError(f"int32 out of range: {value}")
    return uvarint(value if value >= 0 else value + (1 << 64))


# -- framing -----------------------------------------------------------------------------------
def frame(payload: bytes) -> bytes:
    """Length-prefix one message (unsigned varint length, then the bytes)."""
    if len(payload) > MAX_MESSAGE_SIZE:
        raise ValueError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_SIZE}")
    return uvarint(len(payload)) + payload


class FrameDecoder:
    """Splits a byte stream into length-prefixed frames, never buffering more than one frame."""

    def __init__(self, max_frame: int = MAX_MESSAGE_SIZE) -> None:
        self._buf = bytearray()
        self._max = max_frame
        self._need: int | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buf += chunk
        out: list[bytes] = []
        while True:
            if self._need is None:
                if not self._buf:
                    break
                try:
                    n, pos = read_uvarint(self._buf, 0, 5)
                except BitswapWireError:
                    if len(self._buf) >= 5:
                        raise BitswapWireError("bad frame length prefix") from None
                    break  # length prefix not complete yet
                if n > self._max:
                    raise MessageTooLarge(f"frame of {n} bytes exceeds {self._max}")
                del self._buf[:pos]
                self._need = n
            if len(self._buf) < self._need:
                break
            out.append(bytes(self._buf[: self._need]))
            del self._buf[: self._need]
            self._need = None
        return out

    def at_boundary(self) -> bool:
        """True when no partial frame is buffered (a clean place for the stream to end)."""
        return self._need is None and not self._buf


# -- CID prefixes --------------------------------------------------------------------------------
def cid_prefix(cid: Cid) -> bytes:
    """`version codec mh-type mh-length` as varints; CIDv0 gives `00 70 12 20`."""
    mh_type, pos = read_uvarint(cid.multihash, 0)
    mh_len, _ = read_uvarint(cid.multihash, pos)
    return uvarint(cid.version) + uvarint(cid.codec) + uvarint(mh_type) + uvarint(mh_len)


def parse_prefix(prefix: bytes) -> tuple[int, int, int, int]:
    """(version, codec, mh type, mh length) from a block prefix; strict."""
    if len(prefix) > MAX_PREFIX_BYTES:
        raise BitswapWireError("CID prefix too long")
    try:
        version, pos = read_uvarint(prefix, 0)
        codec, pos = read_uvarint(prefix, pos)
        mh_type, pos = read_uvarint(prefix, pos)
        mh_len, pos = read_uvarint(prefix, pos)
    except BitswapWireError as exc:
        raise BitswapWireError(f"bad CID prefix: {exc}") from None
    if pos != len(prefix):
        raise BitswapWireError("trailing bytes after CID prefix")
    if version == 0:
        if (codec, mh_type, mh_len) != (DAG_PB, SHA2_256, 32):
            raise BitswapWireError("CIDv0 prefix must be dag-pb sha2-256/32")
    elif version != 1:
        raise BitswapWireError(f"unsupported CID version {version}")
    return version, codec, mh_type, mh_len


def cid_for_block(prefix: bytes, data: bytes | memoryview) -> Cid:
    """Rebuild a block's CID from its prefix by hashing the data (sha2-256 or identity)."""
    version, codec, mh_type, mh_len = parse_prefix(prefix)
    if mh_type == SHA2_256:
        if mh_len != 32:
            raise BitswapWireError("sha2-256 prefix must say 32 bytes")
        digest = hashlib.sha256(data).digest()
        return Cid.v0(digest) if version == 0 else Cid.v1(codec, digest)
    if mh_type == IDENTITY:
        if mh_len != len(data) or mh_len > MAX_IDENTITY_DIGEST:
            raise BitswapWireError("bad identity block")
        return Cid(1, codec, uvarint(IDENTITY) + uvarint(mh_len) + bytes(data))
    raise BitswapWireError(f"unsupported multihash 0x{mh_type:x} in block prefix")


# -- encoding ----------------------------------------------------------------------------------
def _key(field_no: int, wire: int) -> bytes:
    return uvarint(field_no << 3 | wire)


def _ld(field_no: int, payload: bytes) -> bytes:
    return _key(field_no, 2) + uvarint(len(payload)) + payload


def _encode_entry(e: WantEntry) -> bytes:
    out = _ld(1, e.cid.to_bytes())
    if e.priority:
        out += _key(2, 0) + _enc_int32(e.priority)
    if e.cancel:
        out += _key(3, 0) + b"\x01"
    if e.want_type:
        out += _key(4, 0) + uvarint(int(e.want_type))
    if e.send_dont_have:
        out += _key(5, 0) + b"\x01"
    return out


def encode_message(msg: Message, *, v100: bool = False) -> bytes:
    """Encode `msg`; with `v100`, blocks go in the 1.0.0 `blocks` field (CIDv0 only)."""
    if len(msg.wantlist) > MAX_WANTLIST_ENTRIES:
        raise ValueError(f"more than {MAX_WANTLIST_ENTRIES} wantlist entries")
    parts: list[bytes] = []
    if msg.wantlist or msg.full:
        wl = b"".join(_ld(1, _encode_entry(e)) for e in msg.wantlist)
        if msg.full:
            wl += _key(2, 0) + b"\x01"
        parts.append(_ld(1, wl))
    for b in msg.blocks:
        if len(b.data) > MAX_BLOCK_SIZE:
            raise ValueError(f"block of {len(b.data)} bytes exceeds {MAX_BLOCK_SIZE}")
        if v100:
            parts.append(_ld(2, b.data))
        else:
            parts.append(_ld(3, _ld(1, b.prefix) + _ld(2, b.data)))
    for p in msg.presences:
        body = _ld(1, p.cid.to_bytes())
        if p.type:
            body += _key(2, 0) + uvarint(int(p.type))
        parts.append(_ld(4, body))
    if msg.pending_bytes:
        parts.append(_key(5, 0) + _enc_int32(msg.pending_bytes))
    out = b"".join(parts)
    if len(out) > MAX_MESSAGE_SIZE:
        raise ValueError(f"message of {len(out)} bytes exceeds {MAX_MESSAGE_SIZE}")
    return out


# -- decoding ----------------------------------------------------------------------------------
def _fields(view: memoryview) -> list[tuple[int, int, int | memoryview]]:
    """All fields of one protobuf message: (number, wire type, int value or bytes view)."""
    out: list[tuple[int, int, int | memoryview]] = []
    pos, n = 0, len(view)
    while pos < n:
        key, pos = read_uvarint(view, pos)
        field_no, wire = key >> 3, key & 7
        if field_no == 0:
            raise BitswapWireError("field number 0")
        if wire == 0:
            value, pos = read_uvarint(view, pos)
            out.append((field_no, 0, value))
        elif wire == 2:
            length, pos = read_uvarint(view, pos)
            if length > n - pos:
                raise BitswapWireError("length-delimited field runs past the end")
            out.append((field_no, 2, view[pos : pos + length]))
            pos += length
        elif wire == 1 or wire == 5:
            size = 8 if wire == 1 else 4
            if size > n - pos:
                raise BitswapWireError("fixed-width field runs past the end")
            pos += size  # no fixed fields in this schema: skip unknown ones
        else:
            raise BitswapWireError(f"unsupported wire type {wire}")
    return out


def _expect(wire: int, want: int, what: str) -> None:
    if wire != want:
        raise BitswapWireError(f"{what}: wrong wire type {wire}")


def _cid(value: int | memoryview, what: str) -> Cid:
    assert isinstance(value, memoryview)
    if len(value) > MAX_CID_BYTES:
        raise BitswapWireError(f"{what}: CID too long")
    try:
        return Cid.from_bytes(bytes(value))
    except RemoteError as exc:
        raise BitswapWireError(f"{what}: {exc}") from None


def _decode_entry(view: memoryview) -> WantEntry:
    cid: Cid | None = None
    priority, cancel, want_type, sdh = 0, False, WantType.BLOCK, False  # proto3 defaults
    for no, wire, value in _fields(view):
        if no == 1:
            _expect(wire, 2, "wantlist entry cid")
            cid = _cid(value, "wantlist entry")
        elif no in (2, 3, 4, 5):
            _expect(wire, 0, "wantlist entry")
            assert isinstance(value, int)
            if no == 2:
                priority = _int32(value)
            elif no == 3:
                cancel = bool(value)
            elif no == 4:
                if value not in (0, 1):
                    raise BitswapWireError(f"unknown want type {value}")
                want_type = WantType(value)
            else:
                sdh = bool(value)
    if cid is None:
        raise BitswapWireError("wantlist entry without a CID")
    return WantEntry(cid, priority, cancel, want_type, sdh)


def _bytes(value: int | memoryview) -> memoryview:
    assert isinstance(value, memoryview)
    return value


def decode_message(data: bytes | memoryview) -> Message:
    """Decode one (unframed) message; raises BitswapWireError on anything malformed."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise MessageTooLarge(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}")
    view = memoryview(data)
    entries: list[WantEntry] = []
    full = False
    blocks: list[BlockPayload] = []
    presences: list[Presence] = []
    pending = 0
    for no, wire, value in _fields(view):
        if no == 1:
            _expect(wire, 2, "wantlist")
            for wno, wwire, wvalue in _fields(_bytes(value)):
                if wno == 1:
                    _expect(wwire, 2, "wantlist entry")
                    if len(entries) >= MAX_WANTLIST_ENTRIES:
                        raise BitswapWireError(f"more than {MAX_WANTLIST_ENTRIES} wantlist entries")
                    entries.append(_decode_entry(_bytes(wvalue)))
                elif wno == 2:
                    _expect(wwire, 0, "wantlist full")
                    full = bool(wvalue)
        elif no == 2:  # bitswap 1.0.0 raw block: CIDv0 implied
            _expect(wire, 2, "block")
            raw = _bytes(value)
            if len(raw) > MAX_BLOCK_SIZE:
                raise BlockTooLarge(f"block of {len(raw)} bytes exceeds {MAX_BLOCK_SIZE}")
            blocks.append(BlockPayload(CIDV0_PREFIX, bytes(raw)))
        elif no == 3:
            _expect(wire, 2, "payload block")
            prefix, body = b"", b""
            for bno, bwire, bvalue in _fields(_bytes(value)):
                if bno in (1, 2):
                    _expect(bwire, 2, "payload block field")
                    if bno == 1:
                        prefix = bytes(_bytes(bvalue))
                    else:
                        raw = _bytes(bvalue)
                        if len(raw) > MAX_BLOCK_SIZE:
                            raise BlockTooLarge(
                                f"block of {len(raw)} bytes exceeds {MAX_BLOCK_SIZE}"
                            )
                        body = bytes(raw)
            parse_prefix(prefix)
            blocks.append(BlockPayload(prefix, body))
        elif no == 4:
            _expect(wire, 2, "block presence")
            if len(presences) >= MAX_PRESENCES:
                raise BitswapWireError(f"more than {MAX_PRESENCES} block presences")
            pcid: Cid | None = None
            ptype = PresenceType.HAVE
            for pno, pwire, pvalue in _fields(_bytes(value)):
                if pno == 1:
                    _expect(pwire, 2, "presence cid")
                    pcid = _cid(pvalue, "block presence")
                elif pno == 2:
                    _expect(pwire, 0, "presence type")
                    if pvalue not in (0, 1):
                        raise BitswapWireError(f"unknown presence type {pvalue}")
                    assert isinstance(pvalue, int)
                    ptype = PresenceType(pvalue)
            if pcid is None:
                raise BitswapWireError("block presence without a CID")
            presences.append(Presence(pcid, ptype))
        elif no == 5:
            _expect(wire, 0, "pendingBytes")
            assert isinstance(value, int)
            pending = _int32(value)
    return Message(tuple(entries), full, tuple(blocks), tuple(presences), pending)
