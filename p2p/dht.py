"""Kademlia DHT: provide the root CIDs of pinned worlds, find who provides a CID.

Wraps py-libp2p's `KadDHT` in server mode. Keys are multihashes (as IPFS does), so a CIDv0 and
a CIDv1 of the same DAG find the same providers. Peers we connect to are added to the routing
table (py-libp2p does not do it on its own for inbound connections), provider records are
republished by KadDHT's maintenance loop, and `find_providers` answers are de-duplicated (it
returns the same peer more than once). The routing table is persisted under the data dir when
a `persist_dir` is given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from libp2p.abc import IHost
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.records.validator import Validator
from libp2p.tools.anyio_service import background_trio_service

from fluxnode.core.cid import Cid
from fluxnode.p2p.bridge import ServiceIO

log = logging.getLogger("fluxnode.p2p.dht")

#: Seconds between routing-table top-ups from the connected peers.
SYNC_PEERS_S = 2.0


#: How the node validates values under a DHT namespace: `validate(key, value)` raises on a bad
#: value; `select(key, values)` returns the index of the best one.
RecordRules = tuple[Callable[[str, bytes], None], Callable[[str, list[bytes]], int]]


class _CallbackValidator(Validator):
    def __init__(self, rules: RecordRules) -> None:
        self._validate, self._select = rules

    def validate(self, key: str, value: bytes) -> None:
        self._validate(key, value)

    def select(self, key: str, values: list[bytes]) -> int:
        return self._select(key, values)


@dataclass(frozen=True)
class Provider:
    peer_id: str
    addrs: tuple[str, ...]


class Dht:
    def __init__(
        self,
        host: IHost,
        io: ServiceIO,
        persist_dir: str | None = None,
        validators: Mapping[str, RecordRules] | None = None,
    ) -> None:
        self.host = host
        self.io = io
        self.kad = KadDHT(host, DHTMode.SERVER, persist_dir=persist_dir)
        for namespace, rules in (validators or {}).items():
            self.kad.register_validator(namespace, _CallbackValidator(rules))
        self.provided: set[str] = set()

    async def put_value(self, key: str, value: bytes) -> None:
        await self._sync_peers()
        await self.kad.put_value(key, value)

    async def get_value(self, key: str) -> bytes | None:
        await self._sync_peers()
        value = await self.kad.get_value(key)
        return None if value is None else bytes(value)

    async def run(self) -> None:
        async with background_trio_service(self.kad):
            while True:
                await self._sync_peers()
                await self.io.sleep(SYNC_PEERS_S)

    async def _sync_peers(self) -> None:
        for peer in self.host.get_connected_peers():
            try:
                await self.kad.routing_table.add_peer(peer)
            except Exception as exc:  # a peer without the DHT protocol is simply skipped
                log.debug("routing table refused %s: %s", peer, exc)

    async def provide(self, cid: Cid) -> bool:
        await self._sync_peers()
        ok = bool(await self.kad.provide(cid.multihash.hex()))
        self.provided.add(str(cid))
        return ok

    async def find_providers(self, cid: Cid, count: int = 20) -> list[Provider]:
        await self._sync_peers()
        found = await self.kad.find_providers(cid.multihash.hex(), count)
        own = self.host.get_id()
        out: dict[str, Provider] = {}
        for info in found:
            if info.peer_id == own:
                continue
            pid = str(info.peer_id)
            addrs = tuple(str(a) for a in info.addrs)
            if pid not in out or len(addrs) > len(out[pid].addrs):
                out[pid] = Provider(pid, addrs)
        return sorted(out.values(), key=lambda p: p.peer_id)
