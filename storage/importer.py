"""Importing files and folders: drives the sans-IO `FileBuilder` over real files.

Folder rules, as `ipfs add -r` with Kubo's defaults:
- hidden entries (names starting with `.`) are skipped, like Kubo without `--hidden`;
- symlinks inside the tree are stored as UnixFS symlink nodes, never followed; a symlink given
  as the top-level PATH is followed (the shell already resolved what the user meant);
- other special files (sockets, FIFOs, devices) are refused;
- directories become UnixFS directories, HAMT-sharded past the importer's size threshold;
- folders nest at most `MAX_DEPTH` levels; names must be valid UTF-8.

Leaves are read and hashed on a few threads (storage/leaves.py), a bounded window of chunks at
a time, and come back in file order. Given a `LeafStore`, those threads also write each leaf
block where they read it, and the sink gets every other block (parents, folders, links).

Each entry is read once, through file descriptors: a folder is opened (without following
links) relative to its parent's descriptor and listed from its own, a file is opened without
following links and checked with `fstat`, so a file or folder swapped for a link (or a FIFO)
between the listing and the read is refused instead of followed. `tree_size` applies the same
rules to estimate what an add will store.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fluxnode.core.cid import Cid
from fluxnode.core.errors import BadRequest
from fluxnode.core.hamt import hamt_directory, should_shard
from fluxnode.core.unixfs import Block, FileBuilder, Link, directory_node, symlink_node
from fluxnode.storage.leaves import LeafStore, Leaves, file_leaves, stream_leaves

MAX_DEPTH = 128


#: Takes the blocks as they complete. An import given no sink (None) only computes the CIDs:
#: blocks are counted but not handed over, and CIDv0 leaves are hashed without being assembled.
BlockSink = Callable[[list[Block]], None]


Progress = Callable[[int], None]


@dataclass(frozen=True)
class ImportResult:
    root: Link
    bytes_read: int
    blocks: int


class _Counter:
    def __init__(
        self, sink: BlockSink | None, progress: Progress | None, store: LeafStore | None
    ) -> None:
        if store is not None and sink is None:
            raise ValueError("a LeafStore needs a sink for the other blocks")
        self.sink = sink
        self.progress = progress
        self.bytes = 0
        self.blocks = 0
        #: What the store's writes raised: never reported as a failed read of the source.
        self.store_errors: list[BaseException] = []
        self.store = None if store is None else LeafStore(self._writer(store), store.keep)

    def _writer(self, store: LeafStore) -> Callable[[Cid, memoryview], None]:
        def write(cid: Cid, block: memoryview) -> None:  # on a reading thread
            try:
                store.write(cid, block)
            except BaseException as exc:
                self.store_errors.append(exc)
                raise

        return write

    def is_store_error(self, exc: BaseException) -> bool:
        return any(exc is e for e in self.store_errors)

    @property
    def want_blocks(self) -> bool:
        """Leaves carry their blocks to the sink (not only hashed, nor written by the store)."""
        return self.sink is not None and self.store is None

    def emit(self, blocks: list[Block]) -> None:
        if blocks:
            self.blocks += len(blocks)
            if self.sink is not None:
                self.sink(blocks)

    def advance(self, n: int) -> None:
        self.bytes += n
        if self.progress is not None:
            self.progress(self.bytes)


def import_stream(
    stream: BinaryIO,
    sink: BlockSink | None,
    cid_version: int = 0,
    progress: Progress | None = None,
    *,
    store: LeafStore | None = None,
) -> ImportResult:
    counter = _Counter(sink, progress, store)
    leaves = stream_leaves(stream, cid_version, counter.want_blocks, store=counter.store)
    link = _build(leaves, counter, cid_version)
    return ImportResult(link, counter.bytes, counter.blocks)


def _build(leaves: Leaves, counter: _Counter, cid_version: int) -> Link:
    """Build one file's DAG from its leaves (in file order), emitting blocks as they complete."""
    builder = FileBuilder(cid_version)
    with contextlib.closing(leaves):  # waits for reads in flight
        for leaf in leaves:
            parents = builder.add_leaf(leaf.link)
            if leaf.block is not None:
                counter.emit([Block(leaf.link.cid, leaf.block), *parents])
            else:
                counter.blocks += 1
                if leaf.written:
                    assert counter.store is not None
                    counter.store.keep(leaf.link.cid)
                counter.emit(parents)
            counter.advance(leaf.link.filesize)
    rest, root = builder.finish()
    counter.emit(rest)
    return root


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: opening a FIFO swapped in after the listing must not hang; regular files ignore it.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class EntryChanged(OSError):
    """An entry is no longer what its listing said (e.g. a file replaced by a link)."""


def open_entry(dir_fd: int, name: str, st: os.stat_result) -> int:
    """Open `name` under `dir_fd` without following links, as the kind `st` (its lstat) says.

    Raises `EntryChanged` when what was opened is not of that kind, `OSError` when it cannot be
    opened at all. The caller closes the descriptor.
    """
    want_dir = stat.S_ISDIR(st.st_mode)
    try:
        fd = os.open(name, _DIR_FLAGS if want_dir else _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise EntryChanged(exc.errno, "changed while being read") from None
        raise
    got = os.fstat(fd).st_mode
    if stat.S_IFMT(got) != stat.S_IFMT(st.st_mode):
        os.close(fd)
        raise EntryChanged(errno.EINVAL, "changed while being read")
    return fd


def read_link(dir_fd: int, name: str) -> bytes:
    return os.readlink(os.fsencode(name), dir_fd=dir_fd)


def list_folder(fd: int) -> list[str]:
    """The entry names of the open folder `fd`, sorted."""
    with os.scandir(fd) as it:
        return sorted(entry.name for entry in it)


def lstat_entry(dir_fd: int, name: str) -> os.stat_result:
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)


def directory_link(
    entries: list[tuple[str, Link]],
    nonempty_subdirs: set[str],
    cid_version: int,
    emit: Callable[[list[Block]], None],
    where: str,
) -> Link:
    """Build one folder's UnixFS node(s) from its children's links; emit them, return its link."""
    # The reference importer counts a non-empty sub-folder as nothing toward the shard
    # threshold (see core/hamt.should_shard); Kubo counts it. We match the reference we test.
    if should_shard(entries, cid_version, subdirectories=nonempty_subdirs):
        try:
            blocks, link = hamt_directory(entries, cid_version)
        except ValueError as exc:  # e.g. names crafted to collide in all 128 hash bits
            raise BadRequest(f"{where}: cannot shard this folder: {exc}") from exc
        emit(blocks)
        return link
    block, link = directory_node(entries, cid_version)
    emit([block])
    return link


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _open_top(path: Path) -> int:
    """Open the PATH an add was given, following a top-level link (the user named it).

    Stat first: opening a device can have effects of its own, so only folders and regular files
    are opened; `fstat` then confirms the opened entry is still that kind.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {_reason(exc)}") from exc
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        raise BadRequest(f"{path} is not a regular file or directory")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {_reason(exc)}") from exc
    if stat.S_IFMT(os.fstat(fd).st_mode) != stat.S_IFMT(st.st_mode):
        os.close(fd)
        raise BadRequest(f"{path} changed while being read")
    return fd


def import_path(
    path: Path,
    sink: BlockSink | None,
    cid_version: int = 0,
    progress: Progress | None = None,
    *,
    store: LeafStore | None = None,
) -> ImportResult:
    counter = _Counter(sink, progress, store)
    fd = _open_top(path)
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            link, _ = _directory(fd, str(path), counter, cid_version, 0)
        else:
            link = _file(fd, str(path), counter, cid_version)
    finally:
        os.close(fd)
    return ImportResult(link, counter.bytes, counter.blocks)


def _file(fd: int, shown: str, counter: _Counter, cid_version: int) -> Link:
    try:
        size = os.fstat(fd).st_size
        leaves = file_leaves(
            fd, cid_version, counter.want_blocks, size_hint=size, store=counter.store
        )
        return _build(leaves, counter, cid_version)
    except OSError as exc:
        if counter.is_store_error(exc):  # e.g. no space left: the store's, not the source's
            raise
        raise BadRequest(f"cannot read {shown}: {_reason(exc)}") from exc


def _shown(path: str) -> str:
    """A path safe to print (undecodable bytes escaped)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _visible(names: Iterable[str]) -> list[str]:
    return [name for name in names if not name.startswith(".")]


def _directory(
    fd: int, shown: str, counter: _Counter, cid_version: int, depth: int
) -> tuple[Link, bool]:
    """Import the open folder `fd`; returns its link and whether it had any entries."""
    if depth > MAX_DEPTH:
        raise BadRequest(f"{shown}: folders nested deeper than {MAX_DEPTH} levels")
    try:
        listing = _visible(list_folder(fd))
    except OSError as exc:
        raise BadRequest(f"cannot list {shown}: {_reason(exc)}") from exc
    entries: list[tuple[str, Link]] = []
    nonempty_subdirs: set[str] = set()
    for name in listing:
        child = _shown(f"{shown}/{name}")
        try:
            name.encode()
        except UnicodeEncodeError:
            raise BadRequest(f"{child}: file name is not valid UTF-8") from None
        try:
            st = lstat_entry(fd, name)
        except OSError as exc:
            raise BadRequest(f"cannot read {child}: {_reason(exc)}") from exc
        if stat.S_ISLNK(st.st_mode):
            link = _symlink(fd, name, child, counter, cid_version)
        elif stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
            try:
                child_fd = open_entry(fd, name, st)
            except OSError as exc:
                raise BadRequest(f"cannot read {child}: {_reason(exc)}") from exc
            try:
                if stat.S_ISDIR(st.st_mode):
                    link, nonempty = _directory(child_fd, child, counter, cid_version, depth + 1)
                    if nonempty:
                        nonempty_subdirs.add(name)
                else:
                    link = _file(child_fd, child, counter, cid_version)
            finally:
                os.close(child_fd)
        else:
            raise BadRequest(f"{child} is a special file (socket, FIFO or device)")
        entries.append((name, link))
    link = directory_link(entries, nonempty_subdirs, cid_version, counter.emit, shown)
    return link, bool(entries)


def _symlink(fd: int, name: str, shown: str, counter: _Counter, cid_version: int) -> Link:
    try:
        raw = read_link(fd, name)
    except OSError as exc:
        raise BadRequest(f"cannot read {shown}: {_reason(exc)}") from exc
    try:
        target = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{shown}: link target is not valid UTF-8") from None
    block, link = symlink_node(target, cid_version)
    counter.emit([block])
    return link


def tree_size(path: Path) -> int:
    """Bytes of the files an `import_path(path)` would read, by the same rules (hidden entries
    skipped, links not followed but a top-level one), from one listing of each folder.

    An estimate for an up-front quota check: files may grow before they are read, so the
    store's own quota check on every write stays the limit. Unreadable entries count 0 (the
    import reports them).
    """
    try:
        fd = _open_top(path)
    except BadRequest:
        return 0
    try:
        st = os.fstat(fd)
        return st.st_size if stat.S_ISREG(st.st_mode) else _folder_size(fd, 0)
    finally:
        os.close(fd)


def _folder_size(fd: int, depth: int) -> int:
    if depth > MAX_DEPTH:
        return 0
    try:
        listing = _visible(list_folder(fd))
    except OSError:
        return 0
    total = 0
    for name in listing:
        try:
            st = lstat_entry(fd, name)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            total += st.st_size
        elif stat.S_ISDIR(st.st_mode):
            try:
                child = open_entry(fd, name, st)
            except OSError:
                continue
            try:
                total += _folder_size(child, depth + 1)
            finally:
                os.close(child)
    return total
