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
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from fluxnode.core.cid import Cid
from fluxnode.core.errors import FluxError, RemoteError
from fluxnode.core.replication import (
    ActionKind,
    HostingPolicy,
    HostingRecord,
    HostingTable,
    Planner,
    Policy,
    WorldInfo,
)
from fluxnode.node.worlds import WorldDirectory, dht_key
from fluxnode.p2p import ChallengeOutcome, HostClient
from fluxnode.storage.repo import Repo

log = logging.getLogger("fluxnode.node.hosting")

HOSTING_TOPIC = "/flux/1/hosting"
MAX_HOSTING_BYTES = 48 * 1024
WORLD_PIN_PREFIX = "world:"
UNLIMITED_FREE = 1 << 40


class HostingRecordInvalid(RemoteError):
    code = "hosting_record_invalid"


def encode_hosting(record: HostingRecord) -> bytes:
    body = {
        "v": 1,
        "peer": record.peer_id,
        "cids": sorted(record.cids),
        "free": record.free_bytes,
        "at": round(record.issued_at, 3),
        "auto": record.auto,
        "doubts": sorted([p, c] for p, c in record.doubts),
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def decode_hosting(data: bytes) -> HostingRecord:
    if len(data) > MAX_HOSTING_BYTES:
        raise HostingRecordInvalid("hosting record too large")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HostingRecordInvalid(f"not JSON: {exc}") from None
    keys = {"v", "peer", "cids", "free", "at", "auto", "doubts"}
    if not isinstance(body, dict) or set(body) != keys:
        raise HostingRecordInvalid("unexpected fields")
    if body["v"] != 1 or not isinstance(body["peer"], str) or not isinstance(body["cids"], list):
        raise HostingRecordInvalid("bad version, peer or cids")
    free, at = body["free"], body["at"]
    if not isinstance(free, int) or isinstance(free, bool) or not isinstance(at, int | float):
        raise HostingRecordInvalid("bad free or at")
    if not isinstance(body["auto"], bool):
        raise HostingRecordInvalid("bad auto")
    doubts = body["doubts"]
    if not isinstance(doubts, list) or not all(
        isinstance(d, list) and len(d) == 2 and all(isinstance(x, str) for x in d) for d in doubts
    ):
        raise HostingRecordInvalid("bad doubts")
    cids = []
    for text in body["cids"]:
        if not isinstance(text, str):
            raise HostingRecordInvalid("cids must be strings")
        try:
            cids.append(str(Cid.parse(text)))
        except RemoteError as exc:
            raise HostingRecordInvalid(str(exc)) from None
    try:
        return HostingRecord(
            body["peer"],
            frozenset(cids),
            free,
            float(at),
            body["auto"],
            frozenset((p, c) for p, c in doubts),
        )
    except FluxError as exc:
        raise HostingRecordInvalid(str(exc)) from None


@dataclass
class HostingStats:
    pinned: int = 0
    released: int = 0
    fetch_failures: int = 0
    challenges_passed: int = 0
    challenges_failed: int = 0
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
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
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

    # -- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        await self.provide_all()
        while True:
            try:
                await self.tick()
            except FluxError as exc:
                log.warning("hosting round failed: %s", exc)
            except Exception:  # a bug or a disk error must not take the whole node down
                log.exception("hosting round crashed; retrying next round")
            await asyncio.sleep(self.interval_s)

    async def tick(self) -> None:
        now = self._clock()
        pinned = await asyncio.to_thread(self._pinned_worlds)
        await self.host.publish(
            HOSTING_TOPIC,
            encode_hosting(
                HostingRecord(
                    self.me,
                    frozenset(pinned),
                    self._free(),
                    now,
                    auto=self.policy.mode is Policy.AUTO,
                    doubts=self.table.my_doubts(),
                )
            ),
        )
        await self._look_up_wanted_worlds()
        directory = [
            WorldInfo(r.world_id, str(r.cid), r.owner.lower()) for r in self.worlds.book.records()
        ]
        actions = self.planner.plan(
            now=now, directory=directory, table=self.table, pinned=pinned, free_bytes=self._free()
        )
        for action in actions:
            if action.kind is ActionKind.PIN:
                await self._pin(action.cid, action.world_id, now)
            else:
                self.repo.pins.remove(Cid.parse(action.cid))
                self.stats.released += 1
                log.info("released %s (%s): %s", action.world_id, action.cid, action.reason)
        await self._challenge_one(now)

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
        try:
            cid = Cid.parse(cid_text)
            await self.host.fetch_world(cid, holders)
            await asyncio.to_thread(self._commit_pin, cid, world_id)
        except FluxError as exc:
            self.stats.fetch_failures += 1
            log.warning("could not host %s (%s): %s", world_id, cid_text, exc)
            return
        self.stats.pinned += 1
        log.info("hosting %s (%s)", world_id, cid_text)
        try:
            await self.host.provide(cid)
        except FluxError as exc:
            log.info("DHT provide of %s failed: %s", cid_text, exc)

    def _commit_pin(self, cid: Cid, world_id: str) -> None:
        # Blocks came in through the p2p side's own store handle: make them all durable first.
        self.repo.blocks.flush(force=True)
        self.repo.pins.add(cid, recursive=True, name=f"{WORLD_PIN_PREFIX}{world_id}")

    async def provide_all(self) -> None:
        for cid in self._pinned_worlds():
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
