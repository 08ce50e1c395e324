"""`ContentApi` (core/content.py) over a repository, for the gateway."""

from __future__ import annotations

from collections.abc import Iterator

from fluxnode.core.car import encode_header, encode_section
from fluxnode.core.cid import Cid
from fluxnode.core.content import ContentEntry, ContentLink, Kind
from fluxnode.storage.dag import walk
from fluxnode.storage.repo import Repo


class RepoContent:
    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    def servable(self, cid: Cid) -> bool:
        return self.repo.pins.is_servable(cid)

    def block(self, cid: Cid) -> bytes:
        return self.repo.blocks.get(cid)

    def resolve(self, root: Cid, segments: list[str]) -> tuple[ContentEntry, list[Cid]]:
        traversed: list[Cid] = []
        return self.repo.exporter.resolve(root, segments, traversed), traversed

    def read(self, cid: Cid, offset: int, length: int | None) -> Iterator[bytes]:
        return self.repo.exporter.read(cid, offset, length)

    def list_dir(self, cid: Cid) -> list[ContentLink]:
        return self.repo.exporter.list_dir(cid)

    def car(self, root: Cid, path_blocks: list[Cid], terminal: Cid, scope: str) -> Iterator[bytes]:
        yield encode_header([root])
        sent: set[bytes] = set()
        for cid in path_blocks:
            if cid.multihash not in sent:
                sent.add(cid.multihash)
                yield encode_section(cid, self.repo.blocks.get(cid))
        if scope == "block" or (
            scope == "entity" and self.repo.exporter.stat(terminal).kind is not Kind.FILE
        ):
            if terminal.multihash not in sent:
                yield encode_section(terminal, self.repo.blocks.get(terminal))
            return
        for cid, data in walk(self.repo.blocks, terminal):
            if cid.multihash not in sent:
                sent.add(cid.multihash)
                yield encode_section(cid, data)
