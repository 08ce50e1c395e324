"""Kademlia DHT: provide the root CIDs of pinned worlds, find who provides a CID.

Wraps py-libp2p's `KadDHT` in server mode. Keys are multihashes (as IPFS does), so a CIDv0 and
a CIDv1 of the same DAG find the same providers. Peers we connect to are added to the routing
table (py-libp2p does not do it on its own for inbound connections), provider records are
republished by KadDHT's maintenance loop, and `find_providers` answers are de-duplicated (it
returns the same peer more than once). The routing table is persisted under the data dir when
a `persist_dir` is given.

Values under the node's own namespaces are checked by the asyncio side: py-libp2p's validator
hooks are synchronous, so `_AskingValidator` asks with `ServiceIO.ask_blocking` (a short, bounded
wait of the trio thread; records are small and rare). An unanswered ask rejects the value.
"""

from __future__ import annotations

import logging

from libp2p.abc import IHost
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.records.validator import Validator
from libp2p.tools.anyio_service import background_trio_service

from fluxnode.core.cid import Cid
from fluxnode.core.errors import BadRequest, PeerError
from fluxnode.p2p.bridge import ServiceIO
from fluxnode.p2p.messages import Provider, SelectDhtRecord, ValidateDhtRecord

log = logging.getLogger("fluxnode.p2p.dht")

#: Seconds between routing-table top-ups from the connected peers.
SYNC_PEERS_S = 2.0


#: Longest the trio thread waits for the asyncio side to judge one DHT record.
RECORD_ASK_S = 2.0


class RecordRejected(ValueError):
    """py-libp2p's record validators signal a bad value by raising; it catches ValueError."""


class _AskingValidator(Validator):
    def __init__(self, io: ServiceIO) -> None:
        self._io = io

    def validate(self, key: str, value: bytes) -> None:
        try:
            ok = self._io.ask_blocking(ValidateDhtRecord(key, bytes(value)), RECORD_ASK_S)
        except Exception as exc:  # unanswered: fail closed
            raise RecordRejected(f"record under {key} not checked: {exc}") from exc
        if not ok:
            raise RecordRejected(f"record under {key} rejected")

    def select(self, key: str, values: list[bytes]) -> int:
        question = SelectDhtRecord(key, tuple(bytes(v) for v in values))
        index = self._io.ask_blocking(question, RECORD_ASK_S)
        if not 0 <= index < len(values):
            raise RecordRejected(f"selection {index} out of range for {len(values)} values")
        return index


class Dht:
    def __init__(
        self,
        host: IHost,
        io: ServiceIO,
        persist_dir: str | None = None,
        namespaces: tuple[str, ...] = (),
    ) -> None:
        self.host = host
        self.io = io
        self.kad = KadDHT(host, DHTMode.SERVER, persist_dir=persist_dir)
        for namespace in namespaces:
            self.kad.register_validator(namespace, _AskingValidator(io))
        self.provided: set[str] = set()

    async def put_value(self, key: str, value: bytes) -> None:
        await self._sync_peers()
        try:
            await self.kad.put_value(key, value)
        except ValueError as exc:  # a rejected record, an unknown namespace, an older value
            raise BadRequest(f"DHT refused the value under {key}: {exc}") from exc

    async def get_value(self, key: str) -> bytes | None:
        await self._sync_peers()
        try:
            value = await self.kad.get_value(key)
        except (ValueError, TimeoutError) as exc:  # our selection of the answers failed
            raise PeerError(f"DHT lookup of {key} failed: {exc}") from exc
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

    async def find_providers(self, cid: Cid, count: int = 20) -> tuple[Provider, ...]:
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
        return tuple(sorted(out.values(), key=lambda p: p.peer_id))
