"""The node's world directory: signed world records, validated before they are relayed.

Records arrive on the gossip topic `/flux/1/worlds`. py-libp2p calls our validator (through the
bridge's `ask`) before a message is delivered or forwarded; it accepts a record only if it
parses strictly, its signature recovers to its owner, it is fresh, its owner owns the world
(on chain for `land:` ids, fail closed) and its seq is higher than the one we hold. Everything
else is dropped and not relayed, and py-libp2p's router scores the forwarding peer down.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fluxnode.core.errors import StateStoreError
from fluxnode.core.record_book import Outcome, RecordBook, Verdict
from fluxnode.core.world_record import (
    RecordInvalid,
    WorldRecord,
    check_freshness,
    check_owner_matches_id,
)

if TYPE_CHECKING:
    from fluxnode.chain.oracle import Oracle
    from fluxnode.node.worldstore import WorldStore

# chain.records pulls in eth-account (~0.3 s of imports): loaded on the first record instead of
# at start-up, so a node is ready sooner.

log = logging.getLogger("fluxnode.node.worlds")

WORLDS_TOPIC = "/flux/1/worlds"
#: DHT namespace of world records: key `/flux-world/<sha256 of the world id>`.
DHT_NAMESPACE = "flux-world"


def dht_key(world_id: str) -> str:
    return f"/{DHT_NAMESPACE}/{hashlib.sha256(world_id.encode()).hexdigest()}"


def dht_validate(key: str, value: bytes) -> None:
    """What every DHT node checks before storing a world record: it parses strictly, its key
    is its world id's, it is fresh, and its signature is its owner's (a personal world's owner
    is in its id). Land ownership needs the chain and is checked when a node adopts a record."""
    from fluxnode.chain.records import recover_owner

    record = WorldRecord.from_wire(value)
    if key != dht_key(record.world_id):
        raise RecordInvalid("malformed", "record stored under another world's key")
    check_freshness(record, int(time.time()))
    if recover_owner(record).lower() != record.owner.lower():
        raise RecordInvalid("signer_mismatch", "signature is not the owner's")
    check_owner_matches_id(record)


def dht_select(key: str, values: list[bytes]) -> int:
    """The highest seq wins (like IPNS)."""
    best, best_seq = 0, -1
    for i, value in enumerate(values):
        try:
            seq = WorldRecord.from_wire(value).seq
        except RecordInvalid:
            continue
        if seq > best_seq:
            best, best_seq = i, seq
    return best


def _reason_word(verdict: Verdict) -> str:
    """The key a refusal is counted under: a stable word, never free text (a CONFLICT's reason
    names the seq, which would give the `rejections` map one key per seq)."""
    return verdict.reason if verdict.outcome is Outcome.REJECT else verdict.outcome.value


@dataclass
class DirectoryStats:
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    #: Records read back from the world store at start, and those dropped there because they
    #: no longer pass (expired, or no longer parse).
    loaded: int = 0
    dropped_on_load: int = 0
    #: Accepted records that could not be stored: refused (not relayed, not acknowledged).
    store_failures: int = 0


class WorldDirectory:
    """The best record per world, checked before it is kept, relayed or acknowledged.

    With a `store`, every accepted record is written to disk before `offer` lets it be relayed
    and before `publish_local` returns; `load` brings the stored records back at start, so a
    restart neither forgets worlds nor accepts an older seq of one (a rollback).
    """

    def __init__(
        self,
        *,
        oracle: Oracle | None,
        own_peer_id: str,
        clock: Callable[[], float] = time.time,
        book: RecordBook | None = None,
        store: WorldStore | None = None,
    ) -> None:
        self.oracle = oracle
        self.own_peer_id = own_peer_id
        # `book or ...` would drop an empty book: RecordBook has a length, so it is falsy then.
        self.book = book if book is not None else RecordBook()
        self.store = store
        self._clock = clock
        self.stats = DirectoryStats()
        self.rejections: dict[str, int] = {}

    async def load(self) -> int:
        """Read the stored records into the book, oldest first (so a full book keeps the
        newest). Their signatures and ownership were checked when they were accepted; freshness
        depends on the clock, so it is checked again, and what fails is deleted from the store.
        Returns how many were loaded."""
        if self.store is None:
            return 0
        now = int(self._clock())
        drop: list[str] = []
        for world_id, wire in await self.store.load():
            try:
                record = WorldRecord.from_wire(wire)
            except RecordInvalid:  # written by another version, or damaged on disk
                self.stats.dropped_on_load += 1
                drop.append(world_id)
                continue
            verdict = self.book.offer(record, now, verified_owner=True)
            if verdict.accepted:
                self.stats.loaded += 1
                if verdict.evicted is not None:
                    drop.append(verdict.evicted.world_id)
            elif verdict.outcome is Outcome.REJECT:
                self.stats.dropped_on_load += 1
                drop.append(record.world_id)
        await self.store.delete(drop)
        if self.stats.loaded:
            log.info("world directory: %d records loaded", self.stats.loaded)
        return self.stats.loaded

    async def check(self, data: bytes) -> WorldRecord:
        """Parse and verify a record (signature, freshness, ownership); raises RecordInvalid."""
        from fluxnode.chain.records import verify_record

        record = WorldRecord.from_wire(data)
        await verify_record(record, oracle=self.oracle, now=int(self._clock()))
        return record

    async def _keep(self, record: WorldRecord, verdict: Verdict) -> None:
        """Store an accepted record; on failure undo its acceptance and raise."""
        if self.store is None:
            return
        try:
            await self.store.save(record, evicted=verdict.evicted)
        except StateStoreError:
            self.stats.store_failures += 1
            self.book.withdraw(verdict, record)
            raise

    async def offer(self, data: bytes, *, forwarder: str) -> bool:
        """The gossip validator: True = store and relay, False = drop."""
        try:
            record = await self.check(data)
        except RecordInvalid as exc:
            self._reject(exc.reason, forwarder)
            return False
        verdict = self.book.offer(record, int(self._clock()), verified_owner=True)
        if verdict.accepted:
            try:
                await self._keep(record, verdict)
            except StateStoreError as exc:
                log.error("world %s not kept: %s", record.world_id, exc)
                return False
            self.stats.accepted += 1
            log.info("world %s -> %s (seq %d)", record.world_id, record.cid, record.seq)
            return True
        if verdict.outcome is Outcome.DUPLICATE and forwarder == self.own_peer_id:
            return True  # our own publication, already in the book: let it go out
        if verdict.outcome in (Outcome.STALE, Outcome.DUPLICATE):
            self.stats.stale += 1
            return False
        self._reject(_reason_word(verdict), forwarder)
        return False

    async def publish_local(self, data: bytes) -> WorldRecord:
        """A record handed to this node to publish: it must pass the same checks first, and is
        on disk before this returns. Refusals are counted like those of gossiped records."""
        try:
            record = await self.check(data)
        except RecordInvalid as exc:
            self._reject(exc.reason, "the admin endpoint")
            raise
        verdict = self.book.offer(record, int(self._clock()), verified_owner=True)
        if not verdict.accepted:
            if verdict.outcome in (Outcome.STALE, Outcome.DUPLICATE):
                self.stats.stale += 1
            else:
                self._reject(_reason_word(verdict), "the admin endpoint")
            raise RecordInvalid(verdict.outcome.value, f"record not accepted ({verdict.reason})")
        await self._keep(record, verdict)
        self.stats.accepted += 1
        return record

    def _reject(self, reason: str, forwarder: str) -> None:
        self.stats.rejected += 1
        self.rejections[reason] = self.rejections.get(reason, 0) + 1
        log.info("dropped a world record from %s: %s", forwarder, reason)

    def listing(self) -> list[dict[str, Any]]:
        return [
            {
                "world_id": r.world_id,
                "cid": str(r.cid),
                "seq": r.seq,
                "visibility": r.visibility.value,
                "owner": r.owner,
                "issued_at": r.issued_at,
            }
            for r in sorted(self.book.records(), key=lambda r: r.world_id)
        ]
