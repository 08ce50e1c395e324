"""UnixFS importer core: turns bytes into blocks with CIDs byte-identical to Kubo's.

Sans-IO: `FileBuilder.write()` takes bytes and returns the blocks that became complete; the
caller stores them. Memory stays flat in file size: one chunk buffer plus at most 174 pending
links per tree level. A caller that reads and hashes chunks itself (on several threads, see
storage/leaves.py) frames each chunk with `leaf_frame`, names it with `leaf_link` and hands the
links to `FileBuilder.add_leaf` in file order; the builder then only makes the parents.

Layouts (Kubo defaults, cross-checked against the JS reference importer in the test suite):
- fixed-size chunks of 262,144 bytes;
- balanced DAG, at most 174 links per node, filled left to right: leaves are grouped in runs of
  174 under a parent, parents again in runs of 174, until one root remains; a file of one chunk
  is that chunk's leaf itself;
- CIDv0: leaves are dag-pb nodes `UnixFS{File, Data, filesize}`;
- CIDv1 (`--cid-version=1`): leaves are raw blocks; parents are dag-pb, addressed by CIDv1.
py-libp2p's own importer differs from Kubo beyond one chunk (raw-leaf link sizes of 0, a single
leftover leaf handled wrongly), which is why this exists.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from fluxnode.core.cid import DAG_PB, RAW, Cid
from fluxnode.core.dagpb import (
    DataType,
    UnixFSData,
    encode_link,
    encode_node,
    encode_unixfs,
    file_leaf_frame,
)

CHUNK_SIZE = 262_144
MAX_LINKS_PER_NODE = 174

#: Hashes several leaf blocks at once. Injected so the I/O edge can spread the work over cores
#: (hashlib releases the GIL) while this module stays pure; the default is sequential.
DigestMany = Callable[[Sequence[bytes]], list[bytes]]


def sha256_many(blocks: Sequence[bytes]) -> list[bytes]:
    return [hashlib.sha256(b).digest() for b in blocks]


@dataclass(frozen=True, slots=True)
class Block:
    cid: Cid
    data: bytes


@dataclass(frozen=True, slots=True)
class Link:
    """What a parent needs to know about a child: its CID, cumulative DAG size, file bytes."""

    cid: Cid
    tsize: int
    filesize: int


@functools.lru_cache(maxsize=8)
def leaf_frame(n: int, cid_version: int) -> tuple[bytes, bytes]:
    """The bytes before and after an n-byte chunk in its leaf block: a dag-pb/UnixFS wrapper
    for CIDv0, nothing for the raw leaves of CIDv1. The block is `head + chunk + tail`."""
    if cid_version == 0:
        return file_leaf_frame(n)
    return b"", b""


def leaf_link(n: int, digest: bytes, cid_version: int) -> Link:
    """The link to the leaf of an n-byte chunk whose block (see `leaf_frame`) has this sha256."""
    if cid_version == 0:
        head, tail = leaf_frame(n, 0)
        return Link(Cid.v0(digest), len(head) + n + len(tail), n)
    return Link(Cid.v1(RAW, digest), n, n)


class FileBuilder:
    """Chunk a byte stream and build its balanced UnixFS DAG, emitting blocks as they complete."""

    def __init__(
        self,
        cid_version: int = 0,
        chunk_size: int = CHUNK_SIZE,
        max_links: int = MAX_LINKS_PER_NODE,
        digest_many: DigestMany = sha256_many,
    ) -> None:
        if cid_version not in (0, 1):
            raise ValueError("cid_version must be 0 or 1")
        if chunk_size < 1 or max_links < 2:
            raise ValueError("chunk_size must be >= 1 and max_links >= 2")
        self.cid_version = cid_version
        self.chunk_size = chunk_size
        self.max_links = max_links
        self._digest_many = digest_many
        self._buf = bytearray()
        self._levels: list[list[Link]] = [[]]
        self._leaves = 0
        self._short = False  # a chunk shorter than chunk_size came: it must be the last
        self.bytes_in = 0
        self._finished = False

    def write(self, data: bytes | bytearray | memoryview) -> list[Block]:
        if self._finished:
            raise RuntimeError("write after finish")
        if self._short:
            raise RuntimeError("write after the last (short) leaf")
        self.bytes_in += len(data)
        chunks: list[bytes | memoryview] = []
        view = memoryview(data)
        if self._buf:
            need = self.chunk_size - len(self._buf)
            self._buf += view[:need]
            view = view[need:]
            if len(self._buf) == self.chunk_size:
                chunks.append(bytes(self._buf))
                self._buf.clear()
        while len(view) >= self.chunk_size:
            chunks.append(view[: self.chunk_size])
            view = view[self.chunk_size :]
        if len(view):
            self._buf += view
        out: list[Block] = []
        self._leaves_from(chunks, out)
        return out

    def add_leaf(self, link: Link) -> list[Block]:
        """Take the next leaf, read and hashed by the caller: a full chunk, or the last one.

        Returns the parent blocks that became complete; the leaf's own block is the caller's
        to store. Not mixed with a `write` that left part of a chunk buffered.
        """
        if self._finished:
            raise RuntimeError("add_leaf after finish")
        if self._buf:
            raise RuntimeError("add_leaf after a write that left a partial chunk")
        if self._short or link.filesize > self.chunk_size:
            raise ValueError("only the last leaf may be shorter than chunk_size, none longer")
        if link.filesize == 0 and self._leaves:
            raise ValueError("an empty leaf stands only for an empty file")
        self._short = link.filesize < self.chunk_size
        self.bytes_in += link.filesize
        out: list[Block] = []
        self._leaves += 1
        self._push(0, link, out)
        return out

    def finish(self) -> tuple[list[Block], Link]:
        """Flush the last chunk and the pending parents; return them and the root link."""
        if self._finished:
            raise RuntimeError("finish called twice")
        self._finished = True
        out: list[Block] = []
        if self._buf or self._leaves == 0:
            self._leaves_from([bytes(self._buf)], out)
            self._buf.clear()
        if self._leaves == 1:
            return out, self._levels[0][0]  # a single chunk is its own root
        level = 0
        while True:
            pending = self._levels[level]
            higher = any(self._levels[i] for i in range(level + 1, len(self._levels)))
            if len(pending) == 1 and not higher:
                return out, pending[0]
            if pending:
                self._parent(level, out)
            level += 1

    # -- internals -----------------------------------------------------------------------------
    def _leaves_from(self, chunks: list[bytes | memoryview], out: list[Block]) -> None:
        if not chunks:
            return
        datas = [self._leaf_block(c) for c in chunks]
        for chunk, data, digest in zip(chunks, datas, self._digest_many(datas), strict=True):
            link = leaf_link(len(chunk), digest, self.cid_version)
            out.append(Block(link.cid, data))
            self._leaves += 1
            self._push(0, link, out)

    def _leaf_block(self, chunk: bytes | memoryview) -> bytes:
        head, tail = leaf_frame(len(chunk), self.cid_version)
        return b"".join((head, chunk, tail)) if head else bytes(chunk)

    def _push(self, level: int, link: Link, out: list[Block]) -> None:
        if level == len(self._levels):
            self._levels.append([])
        self._levels[level].append(link)
        if len(self._levels[level]) == self.max_links:
            self._parent(level, out)

    def _parent(self, level: int, out: list[Block]) -> None:
        children = self._levels[level]
        self._levels[level] = []
        block, link = file_parent(children, self.cid_version)
        out.append(block)
        self._push(level + 1, link, out)


def file_parent(children: list[Link], cid_version: int) -> tuple[Block, Link]:
    filesize = sum(c.filesize for c in children)
    unixfs = encode_unixfs(
        UnixFSData(DataType.FILE, filesize=filesize, blocksizes=tuple(c.filesize for c in children))
    )
    data = encode_node([encode_link(c.cid.to_bytes(), "", c.tsize) for c in children], unixfs)
    cid = Cid.hash_block(data, cid_version, DAG_PB)
    return Block(cid, data), Link(cid, len(data) + sum(c.tsize for c in children), filesize)


def import_bytes(data: bytes, cid_version: int = 0) -> tuple[list[Block], Link]:
    """Convenience for small inputs: all blocks of `data` and the root link."""
    builder = FileBuilder(cid_version)
    blocks = builder.write(data)
    rest, root = builder.finish()
    return blocks + rest, root


DIRECTORY_DATA = encode_unixfs(UnixFSData(DataType.DIRECTORY))


def directory_node(entries: Iterable[tuple[str, Link]], cid_version: int) -> tuple[Block, Link]:
    """A plain (unsharded) UnixFS directory; links sorted bytewise by UTF-8 name, as Kubo does."""
    items = sorted(entries, key=lambda e: e[0].encode())
    data = encode_node(
        [encode_link(link.cid.to_bytes(), name, link.tsize) for name, link in items], DIRECTORY_DATA
    )
    cid = Cid.hash_block(data, cid_version, DAG_PB)
    tsize = len(data) + sum(link.tsize for _, link in items)
    return Block(cid, data), Link(cid, tsize, 0)


def symlink_node(target: str, cid_version: int) -> tuple[Block, Link]:
    """A UnixFS symlink (Kubo stores symlinks inside a tree as such, never following them)."""
    data = encode_node([], encode_unixfs(UnixFSData(DataType.SYMLINK, data=target.encode())))
    cid = Cid.hash_block(data, cid_version, DAG_PB)
    return Block(cid, data), Link(cid, len(data), 0)
