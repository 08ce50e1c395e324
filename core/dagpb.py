"""dag-pb nodes and UnixFS `Data` messages: byte-exact protobuf encoding and strict decoding.

Encoding follows the canonical dag-pb form that Kubo and the JS importer produce: all `Links`
(field 2) first, then `Data` (field 1); inside a link `Hash`, `Name`, `Tsize` in that order, with
`Name` present even when empty. Decoding is strict and bounded (untrusted blocks arrive from
peers and CAR files): unknown fields, wrong wire types, duplicates and trailing garbage are errors.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from fluxnode.core.cid import Cid, InvalidCid, decode_varint, encode_varint
from fluxnode.core.errors import InvalidBlock as InvalidBlock  # re-exported

#: Kubo refuses blocks above 2 MiB from the network (bitswap's limit is similar).
MAX_BLOCK_SIZE = 2 * 1024 * 1024
MAX_LINKS = 100_000
MAX_NAME_BYTES = 1024


class DataType(enum.IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


@dataclass(frozen=True, slots=True)
class PBLink:
    cid: Cid
    name: str | None
    tsize: int | None


@dataclass(frozen=True, slots=True)
class PBNode:
    links: tuple[PBLink, ...]
    data: bytes | None


@dataclass(frozen=True, slots=True)
class UnixFSData:
    type: DataType
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = field(default_factory=tuple)
    hash_type: int | None = None
    fanout: int | None = None


def _key(field_no: int, wire: int) -> bytes:
    return bytes([(field_no << 3) | wire])


def _len_delimited(field_no: int, payload: bytes | memoryview) -> bytes:
    return _key(field_no, 2) + encode_varint(len(payload)) + payload


def encode_link(cid_bytes: bytes, name: str, tsize: int) -> bytes:
    name_b = name.encode()
    body = (
        _len_delimited(1, cid_bytes) + _len_delimited(2, name_b) + _key(3, 0) + encode_varint(tsize)
    )
    return _len_delimited(2, body)


def encode_node(links: list[bytes] | tuple[bytes, ...], data: bytes | memoryview | None) -> bytes:
    """A dag-pb node from pre-encoded links (see `encode_link`) and optional Data."""
    parts = list(links)
    if data is not None:
        parts.append(_len_delimited(1, data))
    return b"".join(parts)


def encode_unixfs(u: UnixFSData) -> bytes:
    out = bytearray(_key(1, 0) + encode_varint(int(u.type)))
    if u.data is not None:
        out += _len_delimited(2, u.data)
    if u.filesize is not None:
        out += _key(3, 0) + encode_varint(u.filesize)
    for size in u.blocksizes:
        out += _key(4, 0) + encode_varint(size)
    if u.hash_type is not None:
        out += _key(5, 0) + encode_varint(u.hash_type)
    if u.fanout is not None:
        out += _key(6, 0) + encode_varint(u.fanout)
    return bytes(out)


def file_leaf_frame(n: int) -> tuple[bytes, bytes]:
    """The bytes before and after an n-byte chunk in its CIDv0-style leaf (see `file_leaf_node`).

    Separate so a hasher can hash the three parts without assembling the block at all.
    """
    inner_head = _key(1, 0) + b"\x02"
    if n:
        inner_head += _key(2, 2) + encode_varint(n)
    inner_tail = _key(3, 0) + encode_varint(n)
    inner_len = len(inner_head) + n + len(inner_tail)
    return _key(1, 2) + encode_varint(inner_len) + inner_head, inner_tail


def file_leaf_node(chunk: bytes | memoryview) -> bytes:
    """A CIDv0-style leaf: dag-pb node whose Data is UnixFS{File, Data=chunk, filesize}.

    Hand-assembled (not via `encode_unixfs`) to copy the 256 KiB chunk exactly once.
    """
    head, tail = file_leaf_frame(len(chunk))
    return b"".join((head, chunk, tail))


# -- decoding ----------------------------------------------------------------------------------
def _read_field(data: memoryview, pos: int) -> tuple[int, int, int, int]:
    """Return (field, wire, value_or_length, new_pos) for one field header."""
    try:
        key, pos = decode_varint(data, pos)
    except InvalidCid as exc:
        raise InvalidBlock(f"bad protobuf key: {exc}") from None
    field_no, wire = key >> 3, key & 7
    if wire not in (0, 2):
        raise InvalidBlock(f"unsupported protobuf wire type {wire} (field {field_no})")
    try:
        value, pos = decode_varint(data, pos)
    except InvalidCid as exc:
        raise InvalidBlock(f"bad protobuf varint: {exc}") from None
    if wire == 2 and pos + value > len(data):
        raise InvalidBlock(f"field {field_no} overruns the block")
    return field_no, wire, value, pos


def decode_node(block: bytes | memoryview) -> PBNode:
    if len(block) > MAX_BLOCK_SIZE:
        raise InvalidBlock(f"block larger than {MAX_BLOCK_SIZE} bytes")
    view = memoryview(block)
    pos, data = 0, None
    links: list[PBLink] = []
    seen_data = False
    while pos < len(view):
        field_no, wire, value, pos = _read_field(view, pos)
        if wire != 2 or field_no not in (1, 2):
            raise InvalidBlock(f"unexpected field {field_no} in dag-pb node")
        payload = view[pos : pos + value]
        pos += value
        if field_no == 2:
            if seen_data:
                raise InvalidBlock("dag-pb links must come before data")
            if len(links) >= MAX_LINKS:
                raise InvalidBlock(f"more than {MAX_LINKS} links")
            links.append(_decode_link(payload))
        else:
            if seen_data:
                raise InvalidBlock("duplicate Data field")
            seen_data, data = True, bytes(payload)
    return PBNode(tuple(links), data)


def _decode_link(view: memoryview) -> PBLink:
    pos, cid, name, tsize, last = 0, None, None, None, 0
    while pos < len(view):
        field_no, wire, value, pos = _read_field(view, pos)
        if field_no <= last or field_no > 3:
            raise InvalidBlock(f"unexpected or out-of-order field {field_no} in dag-pb link")
        last = field_no
        if field_no == 3:
            if wire != 0:
                raise InvalidBlock("Tsize must be a varint")
            tsize = value
            continue
        if wire != 2:
            raise InvalidBlock(f"link field {field_no} must be bytes")
        payload = view[pos : pos + value]
        pos += value
        if field_no == 1:
            try:
                cid = Cid.from_bytes(bytes(payload))
            except InvalidCid as exc:
                raise InvalidBlock(f"bad link CID: {exc}") from None
        else:
            if len(payload) > MAX_NAME_BYTES:
                raise InvalidBlock("link name too long")
            try:
                name = bytes(payload).decode()
            except UnicodeDecodeError:
                raise InvalidBlock("link name is not UTF-8") from None
    if cid is None:
        raise InvalidBlock("link without Hash")
    return PBLink(cid, name, tsize)


def decode_unixfs(data: bytes | None) -> UnixFSData:
    if data is None:
        raise InvalidBlock("dag-pb node has no UnixFS Data")
    view = memoryview(data)
    pos = 0
    fields: dict[int, int | bytes] = {}
    blocksizes: list[int] = []
    while pos < len(view):
        field_no, wire, value, pos = _read_field(view, pos)
        if field_no == 2:
            if wire != 2:
                raise InvalidBlock("UnixFS Data must be bytes")
            fields[2] = bytes(view[pos : pos + value])
            pos += value
        elif field_no == 4:
            if wire != 0:
                raise InvalidBlock("packed blocksizes are not produced by Kubo; refusing")
            if len(blocksizes) >= MAX_LINKS:
                raise InvalidBlock("too many blocksizes")
            blocksizes.append(value)
        elif field_no in (1, 3, 5, 6):
            if wire != 0:
                raise InvalidBlock(f"UnixFS field {field_no} must be a varint")
            fields[field_no] = value
        elif field_no in (7, 8):  # mode / mtime: accepted and ignored (Kubo omits them)
            if wire == 2:
                pos += value
        else:
            raise InvalidBlock(f"unknown UnixFS field {field_no}")
    if 1 not in fields:
        raise InvalidBlock("UnixFS Data without Type")
    try:
        dtype = DataType(int(fields[1]))
    except ValueError:
        raise InvalidBlock(f"unknown UnixFS type {fields[1]!r}") from None
    raw = fields.get(2)
    filesize = fields.get(3)
    hash_type = fields.get(5)
    fanout = fields.get(6)
    return UnixFSData(
        type=dtype,
        data=raw if isinstance(raw, bytes) else None,
        filesize=filesize if isinstance(filesize, int) else None,
        blocksizes=tuple(blocksizes),
        hash_type=hash_type if isinstance(hash_type, int) else None,
        fanout=fanout if isinstance(fanout, int) else None,
    )
