"""UnixFS exporter: path resolution, file bytes (whole or ranges) and directory listings.

Every block read goes through the source's `get`, which returns only verified bytes
(`BlockStore.get` hashes each; the gateway's `BlockCache` hashes once per block file, see
storage/blockcache.py); raw leaves may instead come from a `LeafReader` as regions of verified
files. Every node is checked for consistency (sizes in `blocksizes` must add up) so a hostile
DAG can neither make us serve wrong bytes silently nor loop: depth is bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fluxnode.core.cid import DAG_PB, RAW, Cid
from fluxnode.core.content import ContentEntry, ContentLink, FileRegion, Kind
from fluxnode.core.dagpb import DataType, InvalidBlock, PBNode, decode_node, decode_unixfs
from fluxnode.core.errors import NotAFile as NotAFile  # re-exported
from fluxnode.core.errors import PathNotFound as PathNotFound
from fluxnode.core.hamt import find_in_shard, iter_shard_entries
from fluxnode.storage.dag import BlockSource

MAX_DEPTH = 64
MAX_PATH_SEGMENTS = 64

#: Bytes [start, end) of a raw leaf: as bytes, or as a region of its block file to send as is.
LeafReader = Callable[[Cid, int, int], "bytes | FileRegion"]


class Exporter:
    def __init__(self, store: BlockSource) -> None:
        self.store = store

    def _node(self, cid: Cid) -> PBNode:
        return decode_node(self.store.get(cid))

    def stat(self, cid: Cid) -> ContentEntry:
        if cid.codec == RAW:
            return ContentEntry(cid, Kind.FILE, len(self.store.get(cid)))
        if cid.codec != DAG_PB:
            raise NotAFile(f"{cid} is not UnixFS (codec 0x{cid.codec:x})")
        unixfs = decode_unixfs(self._node(cid).data)
        if unixfs.type in (DataType.FILE, DataType.RAW):
            return ContentEntry(cid, Kind.FILE, _file_size(unixfs.filesize, unixfs.data))
        if unixfs.type in (DataType.DIRECTORY, DataType.HAMT_SHARD):
            return ContentEntry(cid, Kind.DIRECTORY, 0)
        if unixfs.type == DataType.SYMLINK:
            return ContentEntry(cid, Kind.SYMLINK, len(unixfs.data or b""))
        raise NotAFile(f"{cid}: unsupported UnixFS type {unixfs.type.name}")

    def resolve(
        self, root: Cid, segments: list[str], traversed: list[Cid] | None = None
    ) -> ContentEntry:
        """Follow `segments` (already split and validated) from `root` through directories.

        If `traversed` is given, the CIDs of the directory (and HAMT shard) blocks read on the
        way are appended to it: a client needs exactly those to verify the path.
        """
        if len(segments) > MAX_PATH_SEGMENTS:
            raise PathNotFound(f"path deeper than {MAX_PATH_SEGMENTS} segments")
        seen = traversed if traversed is not None else []

        def shard_node(c: Cid) -> PBNode:
            seen.append(c)
            return self._node(c)

        cid = root
        for i, name in enumerate(segments):
            entry = self.stat(cid)
            if entry.kind is not Kind.DIRECTORY:
                raise PathNotFound(f"{'/'.join(segments[:i])} is not a directory")
            seen.append(cid)
            node = self._node(cid)
            unixfs = decode_unixfs(node.data)
            found: Cid | None
            if unixfs.type == DataType.HAMT_SHARD:
                found = find_in_shard(node, name, shard_node)
            else:
                found = next((link.cid for link in node.links if link.name == name), None)
            if found is None:
                raise PathNotFound(f"no link named {'/'.join(segments[: i + 1])!r} under {root}")
            cid = found
        return self.stat(cid)

    def list_dir(self, cid: Cid) -> list[ContentLink]:
        node = self._node(cid)
        unixfs = decode_unixfs(node.data)
        if unixfs.type == DataType.HAMT_SHARD:
            return [ContentLink(n, c, t) for n, c, t in iter_shard_entries(node, self._node)]
        if unixfs.type != DataType.DIRECTORY:
            raise NotAFile(f"{cid} is not a directory")
        return [ContentLink(link.name or "", link.cid, link.tsize or 0) for link in node.links]

    def read_link(self, cid: Cid) -> str:
        unixfs = decode_unixfs(self._node(cid).data)
        if unixfs.type != DataType.SYMLINK:
            raise NotAFile(f"{cid} is not a symlink")
        return (unixfs.data or b"").decode(errors="replace")

    def read(self, cid: Cid, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Yield the file's bytes in [offset, offset+length), fetching only the blocks needed."""
        for part in self.read_parts(cid, offset, length, self._leaf_bytes):
            assert isinstance(part, bytes)
            yield part

    def read_parts(
        self, cid: Cid, offset: int, length: int | None, leaf: LeafReader
    ) -> Iterator[bytes | FileRegion]:
        """`read`, with raw leaves produced by `leaf` (which may give file regions)."""
        entry = self.stat(cid)
        if entry.kind is not Kind.FILE:
            raise NotAFile(f"{cid} is a {entry.kind.value}, not a file")
        end = entry.size if length is None else min(entry.size, offset + length)
        if offset >= end:
            return
        produced = 0
        for chunk in self._read(cid, offset, end, 0, leaf):
            produced += chunk.count if isinstance(chunk, FileRegion) else len(chunk)
            yield chunk
        if produced != end - offset:
            # blocksizes lied about the children: refuse rather than serve a wrong length.
            raise InvalidBlock(f"{cid}: DAG holds {produced} bytes where {end - offset} expected")

    def _leaf_bytes(self, cid: Cid, start: int, end: int) -> bytes:
        return self.store.get(cid)[start:end]

    def _read(
        self, cid: Cid, start: int, end: int, depth: int, leaf: LeafReader
    ) -> Iterator[bytes | FileRegion]:
        """Bytes [start, end) of the subtree at `cid`, offsets relative to the subtree."""
        if depth > MAX_DEPTH:
            raise InvalidBlock(f"file DAG deeper than {MAX_DEPTH}")
        if cid.codec == RAW:
            part = leaf(cid, start, end)
            if part:
                yield part
            return
        node = self._node(cid)
        unixfs = decode_unixfs(node.data)
        if unixfs.type not in (DataType.FILE, DataType.RAW):
            raise InvalidBlock(f"{cid}: expected a file node inside a file, got {unixfs.type.name}")
        own = unixfs.data or b""
        if own and start < len(own):
            yield own[start : min(end, len(own))]
        if not node.links:
            return
        if len(unixfs.blocksizes) != len(node.links):
            raise InvalidBlock(
                f"{cid}: {len(node.links)} links but {len(unixfs.blocksizes)} blocksizes"
            )
        pos = len(own)
        for link, size in zip(node.links, unixfs.blocksizes, strict=True):
            child_start, child_end = pos, pos + size
            pos = child_end
            if child_end <= start:
                continue
            if child_start >= end:
                break
            yield from self._read(
                link.cid, max(0, start - child_start), min(size, end - child_start), depth + 1, leaf
            )


def _file_size(filesize: int | None, data: bytes | None) -> int:
    if filesize is not None:
        return filesize
    return len(data or b"")
