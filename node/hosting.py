"""Hosting: what this node pins for the network, and checking what others claim to pin.

Every `interval` seconds the node
1. gossips its hosting record on `/flux/1/hosting` (the world CIDs it pins, free bytes), signed by
   its libp2p key through gossipsub's strict signing; a record whose author is not the peer it
   names is rejected before relay;
2. asks the `core.replication.Planner` what to pin or release under its policy, fetches worlds
   to pin over Bitswap (from the claimed holders and the DHT's providers), pins them, provides
   them in the DHT, and unpins what it should release;
3. challenges one random claim of another node: a random root-to-leaf walk of that world, every
   block from that node only (`host.challenge`); a failed walk drops the claim from the counts.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from fluxnode.core.cid import Cid
from fluxnode.core.errors import FluxError, StateStoreError
from fluxnode.core.replication import (
    ActionKind,
    ClaimState,
    HostingPolicy,
    HostingRecord,
    HostingTable,
    Planner,
    Policy,
    Replicas,
    WorldInfo,
    replica_report,
)
from fluxnode.node.hosting_store import HostingStore
from fluxnode.node.hosting_wire import HostingRecordInvalid, decode_hosting, encode_hosting
from fluxnode.node.loops import Loops
from fluxnode.node.progress import FetchMeter
from fluxnode.node.worlds import WorldDirectory, dht_key
from fluxnode.p2p import ChallengeOutcome, HostClient
from fluxnode.storage.fsutil import WriteLock
from fluxnode.storage.pins import RECURSIVE
from fluxnode.storage.repo import Repo

log = logging.getLogger("fluxnode.node.hosting")

HOSTING_TOPIC = "/flux/1/hosting"
WORLD_PIN_PREFIX = "world:"
UNLIMITED_FREE = 1 << 40


@dataclass
class HostingStats:
    pinned: int = 0
    released: int = 0
    fetch_failures: int = 0
    challenges_passed: int = 0
    challenges_failed: int = 0
    #: Claim states read back from `hosting.db` at start; rounds whose state could not be
    #: stored (retried the next round).
    claims_loaded: int = 0
    store_failures: int = 0
    challenges_inconclusive: int = 0


class Hosting:
    def __init__(
        self,
        *,
        me: str,
        host: HostClient,
        repo: Repo,
        worlds: WorldDirectory,
        policy: HostingPolicy,
        interval_s: float,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        store: HostingStore | None = None,
    ) -> None:
        self.me = me
        self.host = host
        self.repo = repo
        self.worlds = worlds
        self.policy = policy
        self.interval_s = interval_s
        self.table = HostingTable(ttl_s=max(30.0, 6 * interval_s))
        self.planner = Planner(me, policy)
        self.stats = HostingStats()
        self._clock = clock
        self._rng = rng or random.Random()
        self.store = store
        #: Changes taken from the table but not yet stored (a failed write is retried).
        self._unsaved: dict[str, ClaimState] = {}
        self._unsaved_removed: set[str] = set()
        #: Counts fetched blocks; draws a progress line when the node runs on a terminal.
        self.fetch_meter = FetchMeter()

    # -- state kept across restarts ------------------------------------------------------------
    async def load_state(self) -> int:
        """Restore the claims and challenge marks stored by the previous run."""
        if self.store is None:
            return 0
        self.stats.claims_loaded = self.table.restore(await self.store.load())
        return self.stats.claims_loaded

    async def save_state(self) -> None:
        """Store what changed in the table since the last call (once per round)."""
        if self.store is None:
            return
        changed, removed = self.table.take_changes()
        for state in changed:
            self._unsaved[state.record.peer_id] = state
            self._unsaved_removed.discard(state.record.peer_id)
        for peer in removed:
            self._unsaved.pop(peer, None)
            self._unsaved_removed.add(peer)
        try:
            await self.store.save(list(self._unsaved.values()), sorted(self._unsaved_removed))
        except StateStoreError as exc:
            self.stats.store_failures += 1
            log.error("hosting claims not stored (retrying next round): %s", exc)
            return
        self._unsaved.clear()
        self._unsaved_removed.clear()

    # -- gossip ------------------------------------------------------------------------------
    def validate(self, data: bytes, author: str) -> bool:
        try:
            record = decode_hosting(data)
        except HostingRecordInvalid as exc:
            log.debug("dropped hosting record from %s: %s", author, exc)
            return False
        if record.peer_id != author:
            return False  # a node speaks only for itself
        if author == self.me:
            return True  # our own record on its way out (py-libp2p validates those too)
        if record.issued_at > self._clock() + 300:
            return False
        return self.table.offer(record)

    # -- state -------------------------------------------------------------------------------
    def _pinned_worlds(self) -> dict[str, str]:
        """cid -> world id for every world this node pins."""
        out = {}
        for pin in self.repo.pins.list("recursive"):
            if pin.name and pin.name.startswith(WORLD_PIN_PREFIX):
                out[pin.cid] = pin.name[len(WORLD_PIN_PREFIX) :]
        return out

    def _free(self) -> int:
        quota = self.repo.blocks.quota_bytes
        return UNLIMITED_FREE if quota is None else max(0, quota - self.repo.blocks.total_size())

    async def replicas(self) -> list[Replicas]:
        """Every known world's verified holders, as the planner counts them (for status)."""
        pinned = await asyncio.to_thread(self._pinned_worlds)
        return replica_report(
            me=self.me,
            now=self._clock(),
            directory=self._directory(),
            table=self.table,
            pinned=pinned,
            target=self.policy.replication,
        )

    def _directory(self) -> list[WorldInfo]:
        return [
            WorldInfo(r.world_id, str(r.cid), r.owner.lower()) for r in self.worlds.book.records()
        ]

    # -- the loop ----------------------------------------------------------------------------
    async def run(self, loops: Loops) -> None:
        """Hosting rounds forever; a failed round is counted in `loops` ("hosting")."""
        await loops.run_once("hosting_provide", self.provide_all)
        await loops.run_forever("hosting", self.tick, self.interval_s)

    async def tick(self) -> None:
        now = self._clock()
        pinned = await asyncio.to_thread(self._pinned_worlds)
        free = await asyncio.to_thread(self._free)  # the first call scans the store
        await self.host.publish(
            HOSTING_TOPIC,
            encode_hosting(
                HostingRecord(
                    self.me,
                    frozenset(pinned),
                    free,
                    now,
                    auto=self.policy.mode is Policy.AUTO,
                    doubts=self.table.my_doubts(),
                )
            ),
        )
        await self._look_up_wanted_worlds()
        actions = self.planner.plan(
            now=now, directory=self._directory(), table=self.table, pinned=pinned, free_bytes=free
        )
        for action in actions:
            if action.kind is ActionKind.PIN:
                await self._pin(action.cid, action.world_id, now)
            else:
                await self._release(action.cid, action.world_id, action.reason)
        await self._challenge_one(now)
        await self.save_state()

    async def _look_up_wanted_worlds(self) -> None:
        """Worlds our policy names but no record of which reached us by gossip (we joined
        after it was published): ask the DHT, then verify like any gossiped record."""
        for world_id in sorted(self.policy.worlds):
            if self.worlds.book.get(world_id) is not None:
                continue
            try:
                value = await self.host.dht_get(dht_key(world_id))
            except FluxError as exc:
                log.debug("DHT lookup of %s failed: %s", world_id, exc)
                continue
            if value:
                await self.worlds.offer(bytes(value), forwarder="dht")

    async def _pin(self, cid_text: str, world_id: str, now: float) -> None:
        holders = sorted(self.table.holders(cid_text, now))
        # The store's shared write lock from the first fetched block until the pin commits: a
        # GC in between (`flux-node gc` in another process) would delete the fetched blocks,
        # which nothing pins yet.
        lock = self.repo.blocks.write_lock()
        await _acquire(lock)
        try:
            cid = Cid.parse(cid_text)
            with self.fetch_meter.fetching(world_id):
                await self.host.fetch_world(cid, holders)
            await asyncio.to_thread(self._commit_pin, cid, world_id)
        except FluxError as exc:
            self.stats.fetch_failures += 1
            log.warning("could not host %s (%s): %s", world_id, cid_text, exc)
            return
        finally:
            lock.release()
        self.stats.pinned += 1
        log.info("hosting %s (%s)", world_id, cid_text)
        try:
            await self.host.provide(cid)
        except FluxError as exc:
            log.info("DHT provide of %s failed: %s", cid_text, exc)

    def _commit_pin(self, cid: Cid, world_id: str) -> None:
        existing = self.repo.pins.get(cid, RECURSIVE)
        if existing is not None and not (existing.name or "").startswith(WORLD_PIN_PREFIX):
            # The operator pins it already: naming it a world pin would let a later release
            # remove the operator's pin.
            return
        # The walk verifies every fetched block; the pin flushes them (force: the p2p side
        # wrote them) before it commits.
        self.repo.pins.add(cid, recursive=True, name=f"{WORLD_PIN_PREFIX}{world_id}")

    async def _release(self, cid_text: str, world_id: str, reason: str) -> None:
        # Only the recursive world pin: a direct pin of the same root is the operator's.
        await asyncio.to_thread(self.repo.pins.remove, Cid.parse(cid_text), RECURSIVE)
        self.stats.released += 1
        log.info("released %s (%s): %s", world_id, cid_text, reason)

    async def provide_all(self) -> None:
        for cid in await asyncio.to_thread(self._pinned_worlds):
            try:
                await self.host.provide(Cid.parse(cid))
            except FluxError as exc:
                log.info("DHT provide of %s failed: %s", cid, exc)

    async def _challenge_one(self, now: float) -> None:
        pick = self.table.pick_challenge(now, self._rng, self.me)
        if pick is None:
            return
        peer, cid = pick
        result = await self.host.challenge(Cid.parse(cid), peer, self._rng.getrandbits(32))
        if result.outcome is ChallengeOutcome.PASSED:
            self.table.challenge_passed(peer, cid)
            self.stats.challenges_passed += 1
        elif result.outcome is ChallengeOutcome.FAILED:
            self.table.challenge_failed(peer, cid, now)
            self.stats.challenges_failed += 1
            log.warning("peer %s failed the retrieval challenge for %s: claim dropped", peer, cid)
        else:  # we could not reach it, or our side failed: no doubt about the peer
            self.stats.challenges_inconclusive += 1
            log.info("challenge of %s for %s inconclusive: %s", peer, cid, result.reason)


async def _acquire(lock: WriteLock) -> None:
    """Take a store lock from a worker thread (flock blocks); if we are cancelled meanwhile,
    the thread still gets it: release it then, or it would block GC for good."""
    fut = asyncio.get_running_loop().run_in_executor(None, lock.acquire)
    try:
        await asyncio.shield(fut)
    except asyncio.CancelledError:
        fut.add_done_callback(lambda f: _release_if_taken(f, lock))
        raise


def _release_if_taken(fut: asyncio.Future[None], lock: WriteLock) -> None:
    if not fut.cancelled() and fut.exception() is None:
        lock.release()
