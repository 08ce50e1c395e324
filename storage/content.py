"""`ContentApi` (core/content.py) over a repository, for the gateway.

The repository's denylist applies here too: asking whether a denied CID is servable, or resolving
a denied root, path or any block on the way, raises ContentDenied (the gateway answers 451); CAR
responses leave out denied blocks (as Kubo does), and `block` refuses them.
"""

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
        """Never True for a denied CID: raises ContentDenied instead, so that the gateway (which
        asks this first) answers 451 rather than 404."""
        self.repo.denylist.check(cid)
        return self.repo.pins.is_servable(cid)

    def is_denied(self, cid: Cid) -> bool:
        return self.repo.denylist.is_denied(cid)

    def block(self, cid: Cid) -> bytes:
        self.repo.denylist.check(cid)
        return self.repo.blocks.get(cid)

    def resolve(self, root: Cid, segments: list[str]) -> tuple[ContentEntry, list[Cid]]:
        denylist = self.repo.denylist
        denylist.check(root)
        denylist.check(root, segments)
        traversed: list[Cid] = []
        entry = self.repo.exporter.resolve(root, segments, traversed)
        if denylist:
            for cid in (*traversed, entry.cid):
                denylist.check(cid)
        return entry, traversed

    def read(self, cid: Cid, offset: int, length: int | None) -> Iterator[bytes]:
        return self.repo.exporter.read(cid, offset, length)

    def list_dir(self, cid: Cid) -> list[ContentLink]:
        return self.repo.exporter.list_dir(cid)

    def car(self, root: Cid, path_blocks: list[Cid], terminal: Cid, scope: str) -> Iterator[bytes]:
        yield encode_header([root])
        denylist = self.repo.denylist
        # Denied blocks are never sent: count them as sent so they are skipped.
        sent: set[bytes] = set()
        if denylist:
            sent.update(
                c.multihash for c in (root, *path_blocks, terminal) if denylist.is_denied(c)
            )
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
            if denylist and denylist.is_denied(cid):
                continue
            if cid.multihash not in sent:
                sent.add(cid.multihash)
                yield encode_section(cid, data)
