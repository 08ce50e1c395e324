"""The node's ban directory: world owners' signed ban lists, checked, kept on disk and gossiped.

Lists arrive on the gossip topic `BANS_TOPIC` (py-libp2p asks `BanDirectory.offer` before it
delivers or relays one) or from the operator's `flux-node world ban` over the admin socket
(`publish_local`). Either way a list is accepted only if it parses strictly
(`fluxnode.core.session.bans.ban_list_from_wire`), its signature recovers to its owner and that
owner owns the world (`fluxnode.chain.bans.verify_ban_list`: a personal world's address, a land
world's owner or approved operator at a confirmed block; fail closed without a chain) and its
`seq` is higher than the one held (`BanBook`). An accepted list is on disk before it is relayed
or acknowledged, and `load` brings the stored lists back at start, so a restart can neither
forget a ban nor accept an older list of a world (which would lift bans the owner made since).

Storage: its own SQLite file, `bans.db`, rather than a table in `worlds.db`. The two have
different bounds and lives: the world store mirrors the `RecordBook` and deletes what the book
evicts, while a ban list is never evicted (a ban must not lapse), and each file's worker
thread then serves one kind of write.

`is_banned(world_id, address)` is what the session engine calls on join and on every frame:
synchronous and in memory.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fluxnode.core.errors import BanListInvalid, StateStoreError
from fluxnode.core.session.bans import BanBook, BanList, ban_list_from_wire
from fluxnode.node.statefile import SqliteFile

if TYPE_CHECKING:
    from fluxnode.chain.oracle import Oracle

# chain.bans pulls in eth-account (~0.3 s of imports): loaded on the first list instead of at
# start-up, as node/worlds.py does for world records.

__all__ = ["BANS_DB", "BANS_TOPIC", "BanDirectory", "BanStats", "BanStore"]

log = logging.getLogger("fluxnode.node.bans")

#: Versioned like the other topics of this node (`/flux/1/worlds`, `/flux/1/hosting`).
BANS_TOPIC = "/flux/1/bans"
BANS_DB = "bans.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ban_lists (
    world_id TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL,
    wire     BLOB NOT NULL
);
"""


def _load(db: sqlite3.Connection) -> list[tuple[str, bytes]]:
    rows = db.execute("SELECT world_id, wire FROM ban_lists ORDER BY world_id")
    return [(str(w), bytes(b)) for w, b in rows]


def _save(db: sqlite3.Connection, ban_list: BanList) -> None:
    with db:
        db.execute("BEGIN IMMEDIATE")
        # Only a higher seq replaces a row, so saves landing out of order never roll back.
        db.execute(
            "INSERT INTO ban_lists (world_id, seq, wire) VALUES (?, ?, ?) "
            "ON CONFLICT(world_id) DO UPDATE SET seq = excluded.seq, wire = excluded.wire "
            "WHERE excluded.seq > ban_lists.seq",
            (ban_list.world_id, ban_list.seq, ban_list.to_wire()),
        )


def _delete(db: sqlite3.Connection, world_ids: list[str]) -> None:
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("DELETE FROM ban_lists WHERE world_id = ?", [(w,) for w in world_ids])


class BanStore:
    """The best ban list per world, as its canonical wire bytes, in SQLite (WAL)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = SqliteFile(path, _SCHEMA)

    async def load(self) -> list[tuple[str, bytes]]:
        return await self._file.run(_load, "read")

    async def save(self, ban_list: BanList) -> None:
        await self._file.run(lambda db: _save(db, ban_list), "write")

    async def delete(self, world_ids: list[str]) -> None:
        if world_ids:
            await self._file.run(lambda db: _delete(db, world_ids), "write")

    async def aclose(self) -> None:
        await self._file.aclose()


@dataclass
class BanStats:
    accepted: int = 0
    rejected: int = 0
    #: Lists not newer than the one held (a replay, a duplicate, a same-seq conflict).
    stale: int = 0
    #: Read back from the store at start, and dropped there because they no longer parse.
    loaded: int = 0
    dropped_on_load: int = 0
    #: Accepted lists that could not be stored: refused (not relayed, not acknowledged).
    store_failures: int = 0


class BanDirectory:
    """See the module docstring. Without a `store` (tests), lists live in memory only."""

    def __init__(
        self,
        *,
        oracle: Oracle | None,
        own_peer_id: str,
        store: BanStore | None = None,
        clock: Callable[[], float] = time.time,
        book: BanBook | None = None,
    ) -> None:
        self.oracle = oracle
        self.own_peer_id = own_peer_id
        self.store = store
        self.book = book if book is not None else BanBook()
        self._clock = clock
        self.stats = BanStats()
        self.rejections: dict[str, int] = {}

    # -- what the session engine asks ----------------------------------------------------------
    def is_banned(self, world_id: str, address: str) -> bool:
        """Has the owner of `world_id` banned `address` (any letter case), as far as the best
        list this node holds says? Synchronous, in memory."""
        ban_list = self.book.get(world_id)
        return ban_list is not None and ban_list.is_banned(address)

    def get(self, world_id: str) -> BanList | None:
        return self.book.get(world_id)

    # -- accepting lists -----------------------------------------------------------------------
    async def load(self) -> int:
        """Read the stored lists into the book. Their signatures and owners were checked when
        they were accepted and a ban never ages, so they are only parsed again; what no longer
        parses is deleted. Returns how many were loaded."""
        if self.store is None:
            return 0
        drop: list[str] = []
        for world_id, wire in await self.store.load():
            try:
                ban_list = ban_list_from_wire(wire)
            except BanListInvalid as exc:  # damaged on disk, or written by another version
                log.warning("dropping a stored ban list of %s: %s", world_id, exc)
                self.stats.dropped_on_load += 1
                drop.append(world_id)
                continue
            if ban_list.world_id == world_id and self.book.offer(ban_list):
                self.stats.loaded += 1
            else:  # filed under another world, or beyond the book's bound
                self.stats.dropped_on_load += 1
                drop.append(world_id)
        await self.store.delete(drop)
        if self.stats.loaded:
            log.info("ban directory: %d lists loaded", self.stats.loaded)
        return self.stats.loaded

    async def check(self, data: bytes) -> BanList:
        """Parse and verify a list (signature, owner, not from the future); BanListInvalid."""
        return await self._verify(ban_list_from_wire(data))

    async def _verify(self, ban_list: BanList) -> BanList:
        from fluxnode.chain.bans import verify_ban_list

        await verify_ban_list(ban_list, oracle=self.oracle, now=int(self._clock()))
        return ban_list

    def _is_news(self, ban_list: BanList) -> bool:
        current = self.book.get(ban_list.world_id)
        if current is None:
            return len(self.book) < self.book.max_worlds
        return ban_list.seq > current.seq

    async def _accept(self, ban_list: BanList) -> bool:
        """Store `ban_list`, then take it into the book. False if it is no news (by the time
        the store answered, another list of its world may have won). StateStoreError if it
        cannot be stored: then it is not taken either."""
        if not self._is_news(ban_list):
            return False
        if self.store is not None:
            try:
                await self.store.save(ban_list)
            except StateStoreError:
                self.stats.store_failures += 1
                raise
        if self.book.offer(ban_list):
            self.stats.accepted += 1
            log.info(
                "bans of %s: seq %d, %d banned",
                ban_list.world_id,
                ban_list.seq,
                len(ban_list.banned),
            )
            return True
        if self.store is not None and self.book.get(ban_list.world_id) is None:
            # The book filled up while this one was being stored: keep the file as bounded.
            await self.store.delete([ban_list.world_id])
        return False

    async def offer(self, data: bytes, *, forwarder: str) -> bool:
        """The gossip validator: True = keep and relay, False = drop."""
        try:
            ban_list = ban_list_from_wire(data)
            if not self._is_news(ban_list):  # cheapest first: no signature recovery, no RPC
                return self._not_news(ban_list, forwarder)
            await self._verify(ban_list)
        except BanListInvalid as exc:
            self._reject(exc.reason or "malformed", forwarder)
            return False
        try:
            if await self._accept(ban_list):
                return True
        except StateStoreError as exc:
            log.error("bans of %s not kept: %s", ban_list.world_id, exc)
            return False
        return self._not_news(ban_list, forwarder)

    def _not_news(self, ban_list: BanList, forwarder: str) -> bool:
        if forwarder == self.own_peer_id and self.book.get(ban_list.world_id) == ban_list:
            return True  # our own publication, already verified and taken in: let it go out
        self.stats.stale += 1
        return False

    async def publish_local(self, data: bytes) -> BanList:
        """A list handed to this node to publish (the admin socket): the same checks, and on
        disk before this returns. BanListInvalid ("stale" for one not newer than the held one)
        or StateStoreError otherwise."""
        try:
            ban_list = await self.check(data)
        except BanListInvalid as exc:
            self._reject(exc.reason or "malformed", "the admin endpoint")
            raise
        if not await self._accept(ban_list):
            self.stats.stale += 1
            held = self.book.get(ban_list.world_id)
            if held is None:
                raise BanListInvalid(
                    "full", f"this node holds ban lists of {len(self.book)} worlds already"
                )
            raise BanListInvalid(
                "stale", f"seq {ban_list.seq} is not newer than the held seq {held.seq}"
            )
        return ban_list

    def _reject(self, reason: str, forwarder: str) -> None:
        self.stats.rejected += 1
        self.rejections[reason] = self.rejections.get(reason, 0) + 1
        log.info("dropped a ban list from %s: %s", forwarder, reason)

    # -- reporting -----------------------------------------------------------------------------
    def describe(self, world_id: str) -> dict[str, Any] | None:
        ban_list = self.book.get(world_id)
        if ban_list is None:
            return None
        return {
            "world_id": ban_list.world_id,
            "seq": ban_list.seq,
            "owner": ban_list.owner,
            "issued_at": ban_list.issued_at,
            "banned": list(ban_list.banned),
        }

    def statistics(self) -> dict[str, Any]:
        return {
            "worlds": len(self.book),
            "banned": sum(len(b.banned) for b in self.book.lists()),
            **vars(self.stats),
            "rejections": dict(self.rejections),
        }
