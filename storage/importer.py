"""Importing files and folders: drives the sans-IO `FileBuilder` over real files.

Folder rules, as `ipfs add -r` with Kubo's defaults:
- hidden entries (names starting with `.`) are skipped, like Kubo without `--hidden`;
- symlinks inside the tree are stored as UnixFS symlink nodes, never followed; a symlink given
  as the top-level PATH is followed (the shell already resolved what the user meant);
- other special files (sockets, FIFOs, devices) are refused;
- directories become UnixFS directories, HAMT-sharded past the importer's size threshold.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fluxnode.core.errors import BadRequest
from fluxnode.core.hamt import hamt_directory, should_shard
from fluxnode.core.unixfs import (
    CHUNK_SIZE,
    Block,
    FileBuilder,
    Link,
    directory_node,
    sha256_many,
    symlink_node,
)

READ_SIZE = 4 * CHUNK_SIZE
MAX_DEPTH = 128


BlockSink = Callable[[list[Block]], None]


Progress = Callable[[int], None]


@dataclass(frozen=True)
class ImportResult:
    root: Link
    bytes_read: int
    blocks: int


class _Counter:
    def __init__(self, sink: BlockSink, progress: Progress | None) -> None:
        self.sink = sink
        self.progress = progress
        self.bytes = 0
        self.blocks = 0

    def emit(self, blocks: list[Block]) -> None:
        if blocks:
            self.blocks += len(blocks)
            self.sink(blocks)

    def advance(self, n: int) -> None:
        self.bytes += n
        if self.progress is not None:
            self.progress(self.bytes)


def import_stream(
    stream: BinaryIO, sink: BlockSink, cid_version: int = 0, progress: Progress | None = None
) -> ImportResult:
    counter = _Counter(sink, progress)
    link = _stream(stream, counter, cid_version)
    return ImportResult(link, counter.bytes, counter.blocks)


_POOL: ThreadPoolExecutor | None = None


def parallel_sha256(blocks: Sequence[bytes]) -> list[bytes]:
    """sha256 of several blocks on all cores: hashlib drops the GIL for large inputs."""
    global _POOL
    if len(blocks) < 2 or (os.cpu_count() or 1) < 2:
        return sha256_many(blocks)
    if _POOL is None:
        _POOL = ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="flux-hash")
    return list(_POOL.map(lambda b: hashlib.sha256(b).digest(), blocks))


def _stream(stream: BinaryIO, counter: _Counter, cid_version: int) -> Link:
    builder = FileBuilder(cid_version, digest_many=parallel_sha256)
    buf = bytearray(READ_SIZE)
    view = memoryview(buf)
    while True:
        n = stream.readinto(view)  # type: ignore[attr-defined]
        if not n:
            break
        counter.emit(builder.write(view[:n]))
        counter.advance(n)
    rest, root = builder.finish()
    counter.emit(rest)
    return root


def import_path(
    path: Path, sink: BlockSink, cid_version: int = 0, progress: Progress | None = None
) -> ImportResult:
    counter = _Counter(sink, progress)
    target = path.resolve()  # top-level symlink: follow, as the user named it
    try:
        st = target.stat()
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror}") from exc
    if stat.S_ISDIR(st.st_mode):
        link, _ = _directory(target, counter, cid_version, 0)
    elif stat.S_ISREG(st.st_mode):
        link = _file(target, counter, cid_version)
    else:
        raise BadRequest(f"{path} is not a regular file or directory")
    return ImportResult(link, counter.bytes, counter.blocks)


def _file(path: Path, counter: _Counter, cid_version: int) -> Link:
    try:
        with path.open("rb", buffering=0) as fh:
            return _stream(fh, counter, cid_version)
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror}") from exc


def _directory(path: Path, counter: _Counter, cid_version: int, depth: int) -> tuple[Link, bool]:
    """Import a folder; returns its link and whether it had any entries."""
    if depth > MAX_DEPTH:
        raise BadRequest(f"{path}: directories nested deeper than {MAX_DEPTH}")
    entries: list[tuple[str, Link]] = []
    nonempty_subdirs: set[str] = set()
    try:
        listing = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as exc:
        raise BadRequest(f"cannot list {path}: {exc.strerror}") from exc
    for entry in listing:
        if entry.name.startswith("."):
            continue
        child = Path(entry.path)
        try:
            entry.name.encode()
        except UnicodeEncodeError:
            raise BadRequest(f"{child!r}: file name is not valid UTF-8") from None
        if entry.is_symlink():
            block, link = symlink_node(os.readlink(child), cid_version)
            counter.emit([block])
        elif entry.is_dir(follow_symlinks=False):
            link, nonempty = _directory(child, counter, cid_version, depth + 1)
            if nonempty:
                nonempty_subdirs.add(entry.name)
        elif entry.is_file(follow_symlinks=False):
            link = _file(child, counter, cid_version)
        else:
            raise BadRequest(f"{child} is a special file (socket, FIFO or device)")
        entries.append((entry.name, link))
    # The reference importer counts a non-empty sub-folder as nothing toward the shard
    # threshold (see core/hamt.should_shard); Kubo counts it. We match the reference we test.
    if should_shard(entries, cid_version, subdirectories=nonempty_subdirs):
        try:
            blocks, link = hamt_directory(entries, cid_version)
        except ValueError as exc:  # e.g. names crafted to collide in all 128 hash bits
            raise BadRequest(f"{path}: cannot shard this folder: {exc}") from exc
        counter.emit(blocks)
        return link, bool(entries)
    block, link = directory_node(entries, cid_version)
    counter.emit([block])
    return link, bool(entries)
