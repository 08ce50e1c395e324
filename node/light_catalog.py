"""The world directory as light clients see it: records, manifest summaries, live counts.

Search data (name, description, tags, thumbnail) comes from each world's manifest, read by
the CID of its signed record (see `fluxnode.core.light_api` on why that is signed too). It is
gathered lazily and bounded: a listing uses what is known and starts fetching what is not —
from the store at once when the world is held here, else over the network through
`Admission.manifest` (which caches manifests by CID), at most `FETCHES` at a time and
`QUEUE` waiting; a world whose manifest could not be had is tried again after `RETRY_S`.
Summaries are kept per CID, at most `MAX_SUMMARIES`, the oldest forgotten first.

Versions seen and first-seen times are noticed when the catalog looks at the record book
(each listing or detail), so they are this node's observations since it started, plus the
signed `issued_at` of the first version it saw.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from fluxnode.core.errors import FluxError, NotFound
from fluxnode.core.light_api import (
    HostingNode,
    InstanceInfo,
    SummaryState,
    VersionSeen,
    WorldCard,
    WorldDetail,
)
from fluxnode.core.session.hub import SessionHub
from fluxnode.core.world import WorldManifest
from fluxnode.core.world_record import WorldRecord
from fluxnode.node.session_entry import Admission

log = logging.getLogger("fluxnode.node.light")

FETCHES: Final = 2
QUEUE: Final = 64
RETRY_S: Final = 300.0
MAX_SUMMARIES: Final = 20_000
MAX_VERSIONS: Final = 16
MAX_DESCRIPTION: Final = 500


@dataclass(frozen=True)
class _Summary:
    name: str
    description: str
    tags: tuple[str, ...]
    thumbnail: str | None

    @classmethod
    def of(cls, manifest: WorldManifest) -> _Summary:
        return cls(
            manifest.name,
            manifest.description[:MAX_DESCRIPTION],
            manifest.tags,
            manifest.thumbnail,
        )


class WorldCatalog:
    def __init__(
        self,
        *,
        records: Callable[[], Iterable[WorldRecord]],
        record_of: Callable[[str], WorldRecord | None],
        admission: Admission,
        hub: SessionHub,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records = records
        self._record_of = record_of
        self._admission = admission
        self._hub = hub
        self._clock = clock
        self._summaries: OrderedDict[str, _Summary] = OrderedDict()
        self._failed: dict[str, float] = {}  # cid -> retry after
        self._queued: OrderedDict[str, WorldRecord] = OrderedDict()
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._versions: dict[str, list[VersionSeen]] = {}
        self._last_visit: dict[str, float] = {}
        self.fetched = 0
        self.fetch_failures = 0

    # --- what the listing shows -----------------------------------------------------------------

    def _notice(self, record: WorldRecord, now: float) -> list[VersionSeen]:
        seen = self._versions.setdefault(record.world_id, [])
        if not seen or seen[-1].seq != record.seq:
            seen.append(VersionSeen(record.seq, str(record.cid), record.issued_at, now))
            del seen[:-MAX_VERSIONS]
        return seen

    def _card(
        self, record: WorldRecord, counts: dict[str, tuple[int, int]], now: float
    ) -> WorldCard:
        seen = self._notice(record, now)
        instances, visitors = counts.get(record.world_id, (0, 0))
        if visitors:
            self._last_visit[record.world_id] = now
        cid = str(record.cid)
        summary = self._summaries.get(cid)
        state: SummaryState = "ok"
        if summary is None:
            state = "unavailable" if self._failed.get(cid, 0.0) > now else "pending"
            if state == "pending":
                self._want(record)
        return WorldCard(
            record,
            name=None if summary is None else summary.name,
            description=None if summary is None else summary.description,
            tags=() if summary is None else summary.tags,
            thumbnail=None if summary is None else summary.thumbnail,
            summary=state,
            first_seen=float(min(v.issued_at for v in seen)),
            visitors=visitors,
            instances=instances,
            last_visit=self._last_visit.get(record.world_id),
        )

    async def cards(self) -> list[WorldCard]:
        now = self._clock()
        counts = self._hub.directory.world_counts(now)
        return [self._card(r, counts, now) for r in self._records()]

    def _record(self, world_id: str) -> WorldRecord:
        record = self._record_of(world_id)
        if record is None:
            raise NotFound(f"this node does not know the world {world_id[:200]}")
        return record

    async def detail(self, world_id: str) -> WorldDetail:
        record = self._record(world_id)
        now = self._clock()
        card = self._card(record, self._hub.directory.world_counts(now), now)
        hub = self._hub
        hosts = []
        for node in self._admission.hosts(record):
            load = hub.directory.load(node, now)
            url = hub.gateway_url if node == hub.node else (load.gateway if load else None)
            hosts.append(HostingNode(node, url))
        instances = tuple(
            InstanceInfo(v.instance_id, v.count, v.capacity, tuple(sorted(v.members)))
            for v in hub.directory.instances(world_id, now)
        )
        return WorldDetail(card, tuple(self._versions[world_id]), tuple(hosts), instances)

    async def manifest_json(self, world_id: str) -> Any:
        record = self._record(world_id)
        self._remember(record, await self._admission.manifest(record))
        return json.loads(await self._admission.manifest_bytes(world_id))

    # --- fetching summaries, bounded ------------------------------------------------------------

    def _remember(self, record: WorldRecord, manifest: WorldManifest) -> None:
        cid = str(record.cid)
        self._summaries[cid] = _Summary.of(manifest)
        self._summaries.move_to_end(cid)
        while len(self._summaries) > MAX_SUMMARIES:
            self._summaries.popitem(last=False)
        self._failed.pop(cid, None)

    def _want(self, record: WorldRecord) -> None:
        cid = str(record.cid)
        if cid in self._queued or len(self._queued) >= QUEUE:
            return
        self._queued[cid] = record
        self._pump()

    def _pump(self) -> None:
        while self._running < FETCHES and self._queued:
            _, record = self._queued.popitem(last=False)
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._fetch(record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fetch(self, record: WorldRecord) -> None:
        cid = str(record.cid)
        try:
            if cid in self._summaries:
                return
            manifest = await self._admission.manifest_if_held(record)
            if manifest is None:
                manifest = await self._admission.manifest(record)
            self._remember(record, manifest)
            self.fetched += 1
        except FluxError as exc:
            self.fetch_failures += 1
            self._failed[cid] = self._clock() + RETRY_S
            log.debug("manifest of %s for the directory: %s", record.world_id, exc)
        finally:
            self._running -= 1
            self._pump()

    async def settle(self) -> None:
        """Wait until no summary fetch is running or queued (for tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        self._queued.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
