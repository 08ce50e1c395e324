"""What the gateway needs from stored content, as a protocol (storage/ implements it; node/
hands it in), so gateway/ never imports storage/."""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from fluxnode.core.cid import Cid


class Kind(enum.Enum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"


@dataclass(frozen=True)
class ContentEntry:
    cid: Cid
    kind: Kind
    #: File size in bytes (files), the link target's length (symlinks), 0 for directories.
    size: int


@dataclass(frozen=True)
class ContentLink:
    """One entry of a directory listing; `size` is the child's cumulative DAG size (Tsize)."""

    name: str
    cid: Cid
    size: int


@dataclass(frozen=True)
class FileRegion:
    """`count` bytes at `offset` of the file at `path`, whose bytes were verified against their
    CID, to send with sendfile(2). `verified(file)` tells whether an open file of that path is
    still the one verified: ask it after opening and again after the send (if it turns False,
    the transfer must be cut)."""

    path: str
    offset: int
    count: int
    verified: Callable[[BinaryIO], bool]

    def __bool__(self) -> bool:
        return self.count > 0


class ContentApi(Protocol):
    """Synchronous (disk-bound) reads; the gateway runs them in worker threads, except
    `cached_file`, which touches only memory (and stats a file) and runs on the event loop."""

    def cached_file(self, root: Cid, segments: list[str]) -> tuple[ContentEntry, bytes] | None:
        """The file at `root/segments` and all its verified bytes if everything needed is in
        memory and the file is small, else None (ask `open_file`). Raises what `open_file`
        would (NotFound, ContentDenied, PathNotFound, ...)."""

    def version(self) -> Hashable:
        """A token that changes whenever any answer may change (a pin or unpin by any process,
        another denylist). Cheap enough to ask per request on the event loop; read it before
        a lookup, so an answer computed while something changed is never kept as current."""

    def unchanged(self, cid: Cid) -> bool:
        """Are the blocks of the small file `cid`, as `cached_file` or `open_file` last gave
        it, still in memory and their block files the ones verified then? (A stat a block,
        no read; False means: ask again the full way, which re-reads and re-hashes.)"""

    def open_file(
        self, root: Cid, segments: list[str], *, small_body: bool
    ) -> tuple[ContentEntry, list[Cid], bytes | None]:
        """`servable` (NotFound if not) and `resolve` in one call; with `small_body`, also the
        whole verified body of a small file (None for anything else)."""

    def servable(self, cid: Cid) -> bool:
        """May this CID be served? (pinned, or a block of a pinned DAG). Raises ContentDenied
        (HTTP 451) for content on the operator's denylist, so it is not mistaken for absent."""

    def block(self, cid: Cid) -> bytes:
        """The verified bytes of one block; NotFound if absent."""

    def resolve(self, root: Cid, segments: list[str]) -> tuple[ContentEntry, list[Cid]]:
        """The entry at `root/segments`, and the CIDs of the blocks traversed to reach it."""

    def read(self, cid: Cid, offset: int, length: int | None) -> Iterator[bytes | FileRegion]:
        """File bytes [offset, offset+length), as bytes or regions of verified files."""

    def list_dir(self, cid: Cid) -> list[ContentLink]: ...

    def car(self, root: Cid, path_blocks: list[Cid], terminal: Cid, scope: str) -> Iterator[bytes]:
        """A CARv1 whose root is `root`: the `path_blocks`, then the DAG under `terminal` per
        `scope` ("all", "entity" or "block"), each block once."""
