"""`ContentApi` (core/content.py) over a repository, for the gateway.

Only covered blocks are served, and every block a request reads is checked, on the path as in
the file, listing or CAR: a block is covered if it belongs to the DAG of a recursive pin, or is
itself pinned. A direct pin covers its one block, not what it links to, so a folder pinned
`--direct` answers for its own listing while an unpinned file under it is "not pinned" — by its
CID, by path, or inside a CAR. Checking each block costs nothing on the common path: once a
block is known to lie in a recursive pin's DAG, so are its children, and they are not asked
about again (`_Covered`).

Blocks are read through a `BlockCache` (storage/blockcache.py): verified once, then remembered
by block-file identity, so a block corrupted or replaced on disk later is hashed again and fails
closed. Small files, directory and file-root blocks are kept in memory, so that `cached_file`
can answer a hot request on the event loop without a thread hop or a read; raw leaves of larger
files go out as regions of their verified block files (sendfile).

The repository's denylist applies here too: asking whether a denied CID is servable, or resolving
a denied root, path or any block on the way, raises ContentDenied (the gateway answers 451); CAR
responses leave out denied blocks (as Kubo does), and `block` refuses them.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterator

from fluxnode.core.car import encode_header, encode_section
from fluxnode.core.cid import DAG_PB, Cid
from fluxnode.core.content import ContentEntry, ContentLink, FileRegion, Kind
from fluxnode.core.denylist import Denylist
from fluxnode.core.errors import NotFound, NotInMemory
from fluxnode.storage.blockcache import BlockCache, VerifiedFile
from fluxnode.storage.dag import child_cids, walk
from fluxnode.storage.exporter import MAX_DEPTH, Exporter
from fluxnode.storage.pins import PinView
from fluxnode.storage.repo import Repo

#: Files up to this size are read whole in one go and kept in memory (`cached_file`).
SMALL_FILE_BYTES = 1 << 20

Reader = Callable[[Cid], bytes]


class Coverage(enum.Enum):
    NONE = "none"
    #: The block itself is pinned (direct), its links are not covered by that.
    BLOCK = "block"
    #: The block is in a recursive pin's DAG: so is everything under it.
    DAG = "dag"


class _Covered:
    """The block store as one request may read it: `get` refuses blocks no pin covers.

    Children of a block found in a recursive pin's DAG are remembered as covered until read,
    so a walk asks the pin store once per request, not once per block.
    """

    def __init__(self, repo: Repo, read: Reader, pins: PinView | None = None) -> None:
        self._repo = repo
        self._read = read
        self._pins = pins
        self._inherited: set[bytes] = set()

    def coverage(self, cid: Cid) -> Coverage:
        pins = self._pins
        if pins is None or pins.thread != threading.get_ident():
            # A file's blocks are read in whichever worker thread runs the next step.
            pins = self._pins = self._repo.pins.view()
        if not pins.is_servable(cid):
            return Coverage.NONE
        # A block both direct-pinned and inside a recursive DAG counts as BLOCK here: its
        # children are then checked one by one and found in that DAG. Slower, never wrong.
        return Coverage.BLOCK if cid.multihash in pins.direct_multihashes() else Coverage.DAG

    def check(self, cid: Cid) -> Coverage:
        """The block's coverage; raises NotFound if none."""
        if cid.multihash in self._inherited:
            return Coverage.DAG
        found = self.coverage(cid)
        if found is Coverage.NONE:
            raise NotFound(f"block {cid} is not pinned on this node")
        return found

    def get(self, cid: Cid) -> bytes:
        found = self.check(cid)
        self._inherited.discard(cid.multihash)
        data = self._read(cid)
        if found is Coverage.DAG and cid.codec == DAG_PB:
            self._inherited.update(c.multihash for c in child_cids(cid, data))
        return data

    def require_dag(self, root: Cid) -> None:
        """Raise NotFound unless every block of the DAG under `root` is covered. Free when
        `root` lies in a recursive pin's DAG; otherwise it reads the DAG once."""
        if self.check(root) is not Coverage.DAG:
            for _ in walk(self, root):
                pass


class RepoContent:
    def __init__(self, repo: Repo, cache: BlockCache | None = None) -> None:
        self.repo = repo
        self.cache = cache if cache is not None else BlockCache(repo.blocks)

    def _kept(self, cid: Cid) -> bytes:
        return self.cache.get(cid, keep=True)

    def _nodes_kept(self, cid: Cid) -> bytes:
        # Interior nodes of a large file are few and small; its leaves are not kept.
        return self.cache.get(cid, keep=cid.codec == DAG_PB)

    def _exporter(
        self, read: Reader | None = None, pins: PinView | None = None
    ) -> tuple[Exporter, _Covered]:
        covered = _Covered(self.repo, read or self._kept, pins)
        return Exporter(covered), covered

    def cached_file(self, root: Cid, segments: list[str]) -> tuple[ContentEntry, bytes] | None:
        """On the event loop: memory, a stat per block, and the pins' cached answers only."""
        memo: dict[bytes, bytes] = {}

        def from_memory(cid: Cid) -> bytes:
            data = memo.get(cid.multihash)
            if data is None:
                data = self.cache.cached(cid)
                if data is None:
                    raise NotInMemory(f"block {cid} is not in memory")
                memo[cid.multihash] = data
            return data

        pins = self.repo.pins.view()
        if not pins.is_servable(root):
            return None  # the thread path says why
        try:
            entry, _ = self._resolve(root, segments, from_memory, pins)
            if entry.kind is not Kind.FILE or entry.size > SMALL_FILE_BYTES:
                return None
            return entry, self._body(entry.cid, from_memory, pins)
        except NotInMemory:
            return None

    def version(self) -> tuple[tuple[int, int], Denylist]:
        # A denylist is immutable and compares by identity: another list is another token.
        return (self.repo.pins.version(), self.repo.denylist)

    def unchanged(self, cid: Cid, depth: int = 0) -> bool:
        data = self.cache.cached(cid)
        if data is None or depth > MAX_DEPTH:
            return False
        if cid.codec == DAG_PB:
            return all(self.unchanged(child, depth + 1) for child in child_cids(cid, data))
        return True

    def open_file(
        self, root: Cid, segments: list[str], *, small_body: bool
    ) -> tuple[ContentEntry, list[Cid], bytes | None]:
        if not self.servable(root):
            raise NotFound(f"{root} is not pinned on this node")
        entry, traversed = self.resolve(root, segments)
        body = None
        if small_body and entry.kind is Kind.FILE and entry.size <= SMALL_FILE_BYTES:
            body = self._body(entry.cid, self._kept)
        return entry, traversed, body

    def _body(self, cid: Cid, read: Reader, pins: PinView | None = None) -> bytes:
        exporter, covered = self._exporter(read, pins)
        covered.require_dag(cid)
        return b"".join(exporter.read(cid))

    def servable(self, cid: Cid) -> bool:
        """Never True for a denied CID: raises ContentDenied instead, so that the gateway (which
        asks this first) answers 451 rather than 404."""
        self.repo.denylist.check(cid)
        return self.repo.pins.is_servable(cid)

    def is_denied(self, cid: Cid) -> bool:
        return self.repo.denylist.is_denied(cid)

    def block(self, cid: Cid) -> bytes:
        self.repo.denylist.check(cid)
        return _Covered(self.repo, self.cache.get).get(cid)

    def resolve(self, root: Cid, segments: list[str]) -> tuple[ContentEntry, list[Cid]]:
        return self._resolve(root, segments, self._kept)

    def _resolve(
        self, root: Cid, segments: list[str], read: Reader, pins: PinView | None = None
    ) -> tuple[ContentEntry, list[Cid]]:
        denylist = self.repo.denylist
        denylist.check(root)
        denylist.check(root, segments)
        traversed: list[Cid] = []
        exporter, _ = self._exporter(read, pins)
        entry = exporter.resolve(root, segments, traversed)
        if denylist:
            for cid in (*traversed, entry.cid):
                denylist.check(cid)
        return entry, traversed

    def read(self, cid: Cid, offset: int, length: int | None) -> Iterator[bytes | FileRegion]:
        exporter, covered = self._exporter(self._nodes_kept)
        covered.require_dag(cid)

        def leaf(leaf_cid: Cid, start: int, end: int) -> bytes | FileRegion:
            covered.check(leaf_cid)  # what `covered.get` would refuse, refused here too
            found = self.cache.verified_file(leaf_cid)
            if isinstance(found, VerifiedFile):
                end = min(end, found.size)
                if end <= start:
                    return b""
                return FileRegion(found.path, start, end - start, found.unchanged)
            return found[start:end]

        return exporter.read_parts(cid, offset, length, leaf)

    def list_dir(self, cid: Cid) -> list[ContentLink]:
        exporter, _ = self._exporter()
        return exporter.list_dir(cid)

    def car(self, root: Cid, path_blocks: list[Cid], terminal: Cid, scope: str) -> Iterator[bytes]:
        """Checks coverage of everything the CAR will hold before returning, so that an
        unpinned block is a 404 before any byte is sent; the blocks are read as it is consumed."""
        exporter, covered = self._exporter(self._nodes_kept)
        for cid in (root, *path_blocks):
            covered.check(cid)
        whole = scope == "all" or (scope == "entity" and exporter.stat(terminal).kind is Kind.FILE)
        if whole:
            covered.require_dag(terminal)
        else:
            covered.check(terminal)
        return self._car(covered, root, path_blocks, terminal, whole)

    def _car(
        self, covered: _Covered, root: Cid, path_blocks: list[Cid], terminal: Cid, whole: bool
    ) -> Iterator[bytes]:
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
                yield encode_section(cid, covered.get(cid))
        if not whole:
            if terminal.multihash not in sent:
                yield encode_section(terminal, covered.get(terminal))
            return
        for cid, data in walk(covered, terminal):
            if denylist and denylist.is_denied(cid):
                continue
            if cid.multihash not in sent:
                sent.add(cid.multihash)
                yield encode_section(cid, data)
