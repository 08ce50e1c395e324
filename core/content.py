"""What the gateway needs from stored content, as a protocol (storage/ implements it; node/
hands it in), so gateway/ never imports storage/."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

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


class ContentApi(Protocol):
    """Synchronous (disk-bound) reads; the gateway runs them in worker threads."""

    def servable(self, cid: Cid) -> bool:
        """May this CID be served? (pinned, or a block of a pinned DAG). Raises ContentDenied
        (HTTP 451) for content on the operator's denylist, so it is not mistaken for absent."""

    def block(self, cid: Cid) -> bytes:
        """The verified bytes of one block; NotFound if absent."""

    def resolve(self, root: Cid, segments: list[str]) -> tuple[ContentEntry, list[Cid]]:
        """The entry at `root/segments`, and the CIDs of the blocks traversed to reach it."""

    def read(self, cid: Cid, offset: int, length: int | None) -> Iterator[bytes]:
        """File bytes [offset, offset+length)."""

    def list_dir(self, cid: Cid) -> list[ContentLink]: ...

    def car(self, root: Cid, path_blocks: list[Cid], terminal: Cid, scope: str) -> Iterator[bytes]:
        """A CARv1 whose root is `root`: the `path_blocks`, then the DAG under `terminal` per
        `scope` ("all", "entity" or "block"), each block once."""
