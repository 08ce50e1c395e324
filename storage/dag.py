"""Walking DAGs stored in a block store: links of a block, completeness, DFS order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from fluxnode.core.cid import DAG_PB, Cid
from fluxnode.core.dagpb import decode_node
from fluxnode.core.errors import DagIncomplete as DagIncomplete  # re-exported
from fluxnode.core.errors import DagTooDeep as DagTooDeep
from fluxnode.storage.blockstore import BlockNotFound, BlockStore

#: Deepest DAG we follow. A balanced UnixFS file of 1 PiB is 4 levels deep; directories nest
#: further, but nothing legitimate comes near this.
MAX_DAG_DEPTH = 256


class BlockSource(Protocol):
    """What reading a DAG needs: verified block bytes by CID (a BlockStore, or a view of it)."""

    def get(self, cid: Cid) -> bytes: ...


def child_cids(cid: Cid, data: bytes) -> list[Cid]:
    """Links of a block. Only dag-pb has links we follow; raw and unknown codecs are leaves."""
    if cid.codec == DAG_PB:
        return [link.cid for link in decode_node(data).links]
    return []


def walk(store: BlockSource, root: Cid) -> Iterator[tuple[Cid, bytes]]:
    """Depth-first, pre-order, links in order (the CAR order of the trustless gateway spec).

    Each block is read (and so digest-verified) once; missing blocks raise DagIncomplete.
    """
    seen: set[bytes] = set()
    stack: list[tuple[Cid, int]] = [(root, 0)]
    while stack:
        cid, depth = stack.pop()
        if cid.multihash in seen:
            continue
        seen.add(cid.multihash)
        if depth > MAX_DAG_DEPTH:
            raise DagTooDeep(f"DAG under {root} is deeper than {MAX_DAG_DEPTH}")
        try:
            data = store.get(cid)
        except BlockNotFound:
            raise DagIncomplete(f"block {cid} of DAG {root} is missing") from None
        yield cid, data
        stack.extend((c, depth + 1) for c in reversed(child_cids(cid, data)))


def reachable(
    store: BlockStore, root: Cid, progress: Callable[[int], None] | None = None
) -> set[bytes]:
    """Multihashes of every block in the DAG (raises DagIncomplete if one is missing);
    `progress` hears the count after each block."""
    if progress is None:
        return {cid.multihash for cid, _ in walk(store, root)}
    found: set[bytes] = set()
    for cid, _ in walk(store, root):
        found.add(cid.multihash)
        progress(len(found))
    return found
