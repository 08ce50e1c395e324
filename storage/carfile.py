"""Streaming CARv1 import and export over a block store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from fluxnode.core.car import (
    MAX_HEADER_BYTES,
    MAX_SECTION_BYTES,
    CarHeader,
    InvalidCar,
    decode_header,
    encode_header,
    encode_section,
    split_section,
)
from fluxnode.core.cid import Cid
from fluxnode.storage.blockstore import BlockHashMismatch, BlockStore
from fluxnode.storage.dag import walk


@dataclass(frozen=True)
class CarImport:
    roots: tuple[Cid, ...]
    blocks: int
    #: Blocks this import added (not already stored): what undoing it must remove.
    added: tuple[Cid, ...]
    bytes: int


def _read_uvarint(stream: BinaryIO, what: str) -> int | None:
    """Read a varint byte by byte; None at a clean EOF before the first byte."""
    value = shift = 0
    for i in range(9):
        b = stream.read(1)
        if not b:
            if i == 0:
                return None
            raise InvalidCar(f"truncated {what} length")
        value |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return value
        shift += 7
    raise InvalidCar(f"overlong {what} length")


def _read_exact(stream: BinaryIO, n: int, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise InvalidCar(f"truncated {what}: wanted {n} bytes, got {len(data)}")
    return data


def read_header(stream: BinaryIO) -> CarHeader:
    n = _read_uvarint(stream, "header")
    if n is None:
        raise InvalidCar("empty CAR file")
    if not 0 < n <= MAX_HEADER_BYTES:
        raise InvalidCar(f"CAR header length {n} out of range (1..{MAX_HEADER_BYTES})")
    return decode_header(_read_exact(stream, n, "header"))


def iter_blocks(stream: BinaryIO) -> Iterator[tuple[Cid, bytes]]:
    """Sections after the header, each verified against its CID."""
    while True:
        n = _read_uvarint(stream, "section")
        if n is None:
            return
        if not 0 < n <= MAX_SECTION_BYTES:
            raise InvalidCar(f"CAR section length {n} out of range (1..{MAX_SECTION_BYTES})")
        cid, data = split_section(_read_exact(stream, n, "section"))
        if not cid.verify(data):
            raise BlockHashMismatch(f"CAR block does not hash to its CID {cid}")
        yield cid, data


def import_car(
    stream: BinaryIO,
    store: BlockStore,
    check: Callable[[Cid], None] | None = None,
    *,
    added: list[Cid],
    require_roots: bool = False,
) -> CarImport:
    """Store every block of a CAR, appending each block this import wrote to `added`.

    On an error the caller undoes the import from `added` (under the store's exclusive lock:
    another writer may rely on those blocks, see `PinStore.discard_unpinned`). `check` (e.g.
    the denylist) sees every root and every block before it is written and may raise to refuse
    the import. `require_roots` refuses a CAR naming no root before anything is stored."""
    header = read_header(stream)
    if require_roots and not header.roots:
        raise InvalidCar("the CAR names no root, so there is nothing to pin; nothing imported")
    if check is not None:
        for root in header.roots:
            check(root)
    count = nbytes = 0
    for cid, data in iter_blocks(stream):
        if check is not None:
            check(cid)
        count += 1
        nbytes += len(data)
        if store.put(cid, data, verified=True):
            added.append(cid)
    return CarImport(header.roots, count, tuple(added), nbytes)


def export_car(store: BlockStore, root: Cid, out: BinaryIO) -> int:
    """Write the DAG under `root` as a CARv1 in DFS pre-order; returns bytes written."""
    written = out.write(encode_header([root]))
    for cid, data in walk(store, root):
        written += out.write(encode_section(cid, data))
    return written


def car_chunks(store: BlockStore, root: Cid) -> Iterator[bytes]:
    """The same CAR as an iterator of byte chunks, for streaming HTTP responses."""
    yield encode_header([root])
    for cid, data in walk(store, root):
        yield encode_section(cid, data)
