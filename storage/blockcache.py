"""Verified blocks, remembered: what lets the gateway stop re-hashing every block it serves.

What we chose: verify once, remember per block-file identity. The first read of a block hashes
its bytes against the CID (as `BlockStore.get` does). What is remembered is the identity of the
open file those bytes came from, as `fstat` gives it: (st_dev, st_ino, st_size, st_mtime_ns,
st_ctime_ns). A later read skips the hash only if the file it opens (or, for bytes kept in
memory, the file at the block's path) has that same identity; otherwise the entry is dropped and
the bytes are read and hashed again, so a block corrupted on disk after it was remembered raises
BlockCorrupted and is never served (fails closed).

Why an identity is enough:
- Block files are never changed in place: a block is written to a temp file and linked into
  place. A replaced file has another inode. A file changed in place (written to, truncated, its
  times set back with `utime`) gets a new ctime, and no process can set ctime back.
- File times are coarse (a kernel clock tick): a file changed twice within one tick may keep
  its times. So an identity is remembered only once its ctime is `racy_s` old (as git treats
  "racily clean" index entries); until then every read hashes.
- A large file's raw leaves go out with sendfile(2) (`verified_file`, a `FileRegion` for the
  gateway): the sender opens the file, checks the open file's identity before the send and again
  after it, so the bytes sent are those of the inode that was verified; a change seen after the
  send cuts the transfer (the client gets a truncated body, never a clean end).
- What no identity can show is the disk changing bytes under an unchanged inode (media rot
  below the file system). Bytes kept in memory are the verified bytes themselves, so they never
  carry that; `flux-node repo verify` re-hashes everything on disk.

Memory is bounded: at most `max_entries` identities (about 200 bytes each) and `max_bytes` of
block bytes (only blocks of at most `max_block` bytes, and only when the caller asks to keep
them), least recently used first out. One cache serves every thread (a lock guards it).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from fluxnode.core.cid import Cid
from fluxnode.core.dagpb import MAX_BLOCK_SIZE
from fluxnode.core.errors import BlockCorrupted, BlockNotFound
from fluxnode.storage.blockstore import BlockStore

Identity = tuple[int, int, int, int, int]

DEFAULT_ENTRIES = 65536
DEFAULT_BYTES = 64 << 20
DEFAULT_MAX_BLOCK = 1 << 20
#: An identity whose ctime is younger than this may still change within the same clock tick.
RACY_S = 2.0


def identity_of(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class BlockCacheStatistics:
    entries: int
    kept_blocks: int
    kept_bytes: int
    hashed: int
    skipped_hashes: int


@dataclass(frozen=True)
class VerifiedFile:
    """A block file verified earlier and unchanged when last looked at, for sendfile."""

    path: str
    identity: Identity

    @property
    def size(self) -> int:
        return self.identity[2]

    def unchanged(self, file: BinaryIO) -> bool:
        """Is this open file (of `path`) still the one verified?"""
        return identity_of(os.fstat(file.fileno())) == self.identity


class BlockCache:
    def __init__(
        self,
        store: BlockStore,
        *,
        max_entries: int = DEFAULT_ENTRIES,
        max_bytes: int = DEFAULT_BYTES,
        max_block: int = DEFAULT_MAX_BLOCK,
        racy_s: float = RACY_S,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_block = max_block
        self.racy_s = racy_s
        self._now = now
        self._lock = threading.Lock()
        self._ids: OrderedDict[bytes, Identity] = OrderedDict()
        # Multihash -> (identity, path, bytes).
        self._kept: OrderedDict[bytes, tuple[Identity, str, bytes]] = OrderedDict()
        self._kept_bytes = 0
        self._hashed = 0
        self._skipped = 0

    # -- memory only (cheap enough for the event loop: one stat, no read, no hash) -------------
    def cached(self, cid: Cid) -> bytes | None:
        """The block's bytes if they are kept in memory and its file is still the one they were
        read from; None otherwise (the caller then reads it with `get`)."""
        mh = cid.multihash
        with self._lock:
            hit = self._kept.get(mh)
            if hit is not None:
                self._kept.move_to_end(mh)
        if hit is None:
            return None
        try:
            st = os.stat(hit[1])
        except OSError:
            self._forget(mh)
            return None
        if identity_of(st) != hit[0]:
            self._forget(mh)
            return None
        return hit[2]

    # -- reads (blocking: worker threads) ------------------------------------------------------
    def get(self, cid: Cid, *, keep: bool = False) -> bytes:
        """The block's verified bytes (BlockNotFound, BlockCorrupted). `keep`: also keep them in
        memory for `cached` (small blocks only)."""
        if keep:
            data = self.cached(cid)
            if data is not None:
                return data
        fh = self._open(cid)
        with fh:
            ident = identity_of(os.fstat(fh.fileno()))
            data = fh.read(MAX_BLOCK_SIZE + 1)
        self._check(cid, ident, data)
        if keep and len(data) <= self.max_block and self._rememberable(ident):
            self._keep(cid, ident, data)
        return data

    def verified_file(self, cid: Cid) -> VerifiedFile | bytes:
        """For sendfile: the block file if it was verified before and is unchanged, else its
        bytes, read and verified now (and remembered for next time). Whoever opens the file
        must check it with `VerifiedFile.unchanged` before and after sending from it."""
        path = str(self.store.path_for(cid))
        try:
            ident = identity_of(os.stat(path))
        except FileNotFoundError:
            raise BlockNotFound(f"block {cid} is not in the store") from None
        with self._lock:
            known = self._ids.get(cid.multihash) == ident
            if known:
                self._ids.move_to_end(cid.multihash)
                self._skipped += 1
        if known:
            return VerifiedFile(path, ident)
        return self.get(cid)

    def _open(self, cid: Cid) -> BinaryIO:
        try:
            return self.store.path_for(cid).open("rb")
        except FileNotFoundError:
            raise BlockNotFound(f"block {cid} is not in the store") from None

    def _check(self, cid: Cid, ident: Identity, data: bytes) -> None:
        """Hash `data` unless `ident` is known verified; remember it if it may be."""
        mh = cid.multihash
        with self._lock:
            known = self._ids.get(mh) == ident and len(data) == ident[2]
            if known:
                self._ids.move_to_end(mh)
                self._skipped += 1
                return
            self._hashed += 1
        if not cid.verify(data):
            self._forget(mh)
            # No path in the message: it may answer a client. Operators run `repo verify`.
            raise BlockCorrupted(f"block {cid} is corrupted on disk; not served")
        if len(data) == ident[2] and self._rememberable(ident):
            with self._lock:
                self._ids[mh] = ident
                self._ids.move_to_end(mh)
                while len(self._ids) > self.max_entries:
                    self._ids.popitem(last=False)

    def _rememberable(self, ident: Identity) -> bool:
        return ident[4] / 1e9 <= self._now() - self.racy_s

    def _keep(self, cid: Cid, ident: Identity, data: bytes) -> None:
        mh, path = cid.multihash, str(self.store.path_for(cid))
        with self._lock:
            old = self._kept.pop(mh, None)
            if old is not None:
                self._kept_bytes -= len(old[2])
            self._kept[mh] = (ident, path, data)
            self._kept_bytes += len(data)
            while self._kept_bytes > self.max_bytes:
                _, (_, _, dropped) = self._kept.popitem(last=False)
                self._kept_bytes -= len(dropped)

    def _forget(self, mh: bytes) -> None:
        with self._lock:
            self._ids.pop(mh, None)
            old = self._kept.pop(mh, None)
            if old is not None:
                self._kept_bytes -= len(old[2])

    def statistics(self) -> BlockCacheStatistics:
        with self._lock:
            return BlockCacheStatistics(
                len(self._ids), len(self._kept), self._kept_bytes, self._hashed, self._skipped
            )
