"""The content repository of one data dir: block store + pins, and the operations on them.

Used both by the CLI (`flux-node add/cat/pin/gc/car ...`, whether or not a node runs on the same
data dir: files, flock and SQLite WAL are safe across processes) and by the running node, which
opens ONE Repo and uses it from every thread (asyncio loop, worker threads, the p2p thread):
`block_for_peer`, `put_fetched` and `is_servable` are what peers' block requests are answered
with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fluxnode.core.cid import Cid
from fluxnode.core.denylist import Denylist
from fluxnode.core.unixfs import Block
from fluxnode.storage.blockstore import BlockCorrupted, BlockNotFound, BlockStore, StoreStats
from fluxnode.storage.carfile import CarImport, export_car, import_car
from fluxnode.storage.dag import walk
from fluxnode.storage.exporter import Exporter
from fluxnode.storage.importer import ImportResult, import_path, import_stream, tree_size
from fluxnode.storage.leaves import LeafStore
from fluxnode.storage.pins import GcResult, Pin, PinStore
from fluxnode.storage.writebehind import WriteBehind

log = logging.getLogger("fluxnode.storage.repo")

#: An import that is more than a file or folder (a world package): called with the sink that
#: stores (and on failure rolls back) every block it emits.
Importer = Callable[[Callable[[list[Block]], None]], ImportResult]

BLOCKS_DIR = "blocks"
PINS_DB = "pins.db"


@dataclass(frozen=True)
class AddResult:
    cid: Cid
    size: int
    blocks: int
    pinned: bool


@dataclass(frozen=True)
class VerifyResult:
    blocks: int
    corrupted: tuple[str, ...]
    missing_in_pins: tuple[str, ...]


class DenyingPinStore(PinStore):
    """A PinStore that refuses to pin denied content (the root, or any block of the DAG)."""

    def __init__(self, path: Path, store: BlockStore, denylist: Denylist) -> None:
        super().__init__(path, store)
        self.denylist = denylist

    def add_many(
        self,
        cids: Sequence[Cid],
        *,
        recursive: bool = True,
        name: str | None = None,
        known_blocks: set[bytes] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Pin]:
        for cid in cids:
            self.denylist.check(cid)
        return super().add_many(
            cids, recursive=recursive, name=name, known_blocks=known_blocks, progress=progress
        )

    def _dag_blocks(
        self, cid: Cid, recursive: bool, progress: Callable[[int], None] | None = None
    ) -> set[bytes]:
        if not recursive or not self.denylist:
            return super()._dag_blocks(cid, recursive, progress)
        # The same verifying walk PinStore does, checking each block on the way.
        blocks = set()
        for block_cid, _ in walk(self.store, cid):
            self.denylist.check(block_cid)
            blocks.add(block_cid.multihash)
            if progress is not None:
                progress(len(blocks))
        return blocks


class Repo:
    def __init__(
        self,
        data_dir: Path,
        *,
        quota_bytes: int | None = None,
        denylist: Denylist | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.denylist = denylist if denylist is not None else Denylist()
        self.blocks = BlockStore(data_dir / BLOCKS_DIR, quota_bytes=quota_bytes)
        self.pins: PinStore = DenyingPinStore(data_dir / PINS_DB, self.blocks, self.denylist)
        self.exporter = Exporter(self.blocks)

    # -- add -----------------------------------------------------------------------------------
    def add(
        self,
        source: Path | BinaryIO | Importer,
        *,
        cid_version: int = 0,
        only_hash: bool = False,
        pin: bool = True,
        name: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> AddResult:
        """Import a file, folder, stream or `Importer`. With `only_hash` nothing is written.

        Denied content (the root or any block, see core/denylist.py) raises ContentDenied and
        leaves the store as it was: a denied block is never written, and what was written
        before it is rolled back like any other failure.
        """
        if only_hash:
            result = _import(source, None, cid_version, progress)
            return AddResult(result.root.cid, result.bytes_read, result.blocks, False)
        if isinstance(source, Path):
            # Known size: refuse up front rather than part-way through.
            self.blocks.reserve(tree_size(source))
        dag: set[bytes] = set()
        # Blocks are written on a few threads while the import reads and hashes the next ones.
        writer = WriteBehind(self.blocks)
        denylist = self.denylist

        def store(blocks: list[Block]) -> None:
            for block in blocks:
                if denylist:
                    denylist.check(block.cid)  # before the write: a denied block never lands
                dag.add(block.cid.multihash)
                writer.put(block.cid, block.data)

        def write_leaf(cid: Cid, data: memoryview) -> None:
            # On a leaf-reading thread, from its buffer; every one has finished when the
            # import returns or raises (storage/leaves.ordered waits), before any rollback.
            if denylist:
                denylist.check(cid)
            writer.put_now(cid, data)

        def keep_leaf(cid: Cid) -> None:
            dag.add(cid.multihash)

        leaves = LeafStore(write_leaf, keep_leaf)
        try:
            with self.blocks.write_lock():
                try:
                    result = _import(source, store, cid_version, progress, leaves)
                finally:
                    writer.wait()  # no write outlives the lock, and `added` is complete
                writer.check()
                # The root went through `store` too; checked again as the one that matters.
                self.denylist.check(result.root.cid)
                # Blocks found present may come from a writer that has not flushed yet.
                self.blocks.flush(force=writer.found)
                if pin:
                    # Every block of the DAG just went through `store`: no need to re-read it.
                    self.pins.add(result.root.cid, recursive=True, name=name, known_blocks=dag)
        except BaseException:
            # Leave the store as it was: remove what this add wrote (blocks that existed before
            # were never in `added`), after releasing the shared lock, and only blocks no pin
            # references: another writer may have found them present and pinned them.
            self.pins.discard_unpinned(writer.added)
            raise
        return AddResult(result.root.cid, result.bytes_read, result.blocks, pin)

    # -- read ----------------------------------------------------------------------------------
    def cat(
        self, cid: Cid, segments: list[str], offset: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        self.denylist.check(cid)
        self.denylist.check(cid, segments)
        traversed: list[Cid] = []
        entry = self.exporter.resolve(cid, segments, traversed)
        for block_cid in (*traversed, entry.cid):
            self.denylist.check(block_cid)
        return self.exporter.read(entry.cid, offset, length)

    # -- block access for peers (any thread) ---------------------------------------------------
    def is_servable(self, cid: Cid) -> bool:
        """May this block be given to a peer: not denied, and pinned or inside a pinned DAG."""
        return not self.denylist.is_denied(cid) and self.pins.is_servable(cid)

    def block_for_peer(self, cid: Cid) -> bytes | None:
        """The block's bytes if it is servable and stored intact, else None. A corrupted block
        is logged and never served."""
        if not self.is_servable(cid):
            return None
        return self.local_block(cid)

    def local_block(self, cid: Cid) -> bytes | None:
        """The block's bytes if it is stored intact and not denied, pinned or not (what a fetch
        in progress already has), else None. A corrupted block is logged, never returned."""
        if self.denylist.is_denied(cid):
            return None
        try:
            return self.blocks.get(cid)
        except BlockNotFound:
            return None
        except BlockCorrupted:
            log.warning(
                "block %s is corrupted on disk (%s); not served, run `repo verify`",
                cid,
                self.blocks.path_for(cid),
            )
            return None

    def put_fetched(self, cid: Cid, data: bytes, *, verified: bool = False) -> bool:
        """Store a block fetched from a peer; True if it was new, False if already stored.

        Raises ContentDenied (the operator refuses it), BlockHashMismatch (the bytes do not
        hash to `cid`), BlockTooLarge or QuotaExceeded; nothing is written then. `verified`:
        the caller already hashed these exact bytes against `cid` (Bitswap's engine does for
        every block it accepts), so they are not hashed a second time."""
        self.denylist.check(cid)
        return self.blocks.put(cid, data, verified=verified)

    # -- pins and gc ---------------------------------------------------------------------------
    def gc(self) -> GcResult:
        return self.pins.gc()

    def stat(self) -> StoreStats:
        return self.blocks.stats()

    def verify(self) -> VerifyResult:
        """Re-hash every block; check every pinned DAG is complete."""
        corrupted: list[str] = []
        count = 0
        for cid in self.blocks.iter_cids():
            count += 1
            try:
                self.blocks.get(cid)
            except BlockCorrupted:
                corrupted.append(str(cid))
        broken: list[str] = []
        for pin in self.pins.list():
            root = Cid.parse(pin.cid)
            try:
                if pin.mode == "recursive":
                    for _ in walk(self.blocks, root):
                        pass
                else:
                    self.blocks.get(root)
            except (BlockNotFound, BlockCorrupted):
                broken.append(pin.cid)
        return VerifyResult(count, tuple(corrupted), tuple(broken))

    # -- CAR -----------------------------------------------------------------------------------
    def import_car(self, stream: BinaryIO, *, pin_roots: bool = True) -> CarImport:
        """Import a CAR and pin its roots; all-or-nothing (a root whose DAG is incomplete, a
        denied root or block, or a CAR with no root to pin undoes the import; a denied block is
        never written)."""
        added: list[Cid] = []
        try:
            with self.blocks.write_lock():
                result = import_car(
                    stream,
                    self.blocks,
                    self.denylist.check if self.denylist else None,
                    added=added,
                    require_roots=pin_roots,
                )
                if pin_roots:
                    # One transaction: a root that cannot be pinned leaves every pin as it was.
                    self.pins.add_many(list(result.roots), recursive=True)
                else:
                    self.blocks.flush()
        except BaseException:
            self.pins.discard_unpinned(added)
            raise
        return result

    def export_car(self, root: Cid, out: BinaryIO) -> int:
        self.denylist.check(root)
        return export_car(self.blocks, root, out)


def _discard(blocks: list[Block]) -> None:
    return None


def _import(
    source: Path | BinaryIO | Importer,
    sink: Callable[[list[Block]], None] | None,
    cid_version: int,
    progress: Callable[[int], None] | None,
    leaves: LeafStore | None = None,
) -> ImportResult:
    """`sink` None: only the CIDs are wanted (see importer.BlockSink). `leaves`: where a file's
    leaf blocks are written, on the threads that read them (an `Importer` uses `sink` only)."""
    if callable(source):
        return source(sink if sink is not None else _discard)
    if isinstance(source, Path):
        return import_path(source, sink, cid_version, progress, store=leaves)
    return import_stream(source, sink, cid_version, progress, store=leaves)
