"""How the node answers the p2p host's asks (`fluxnode.p2p.HostAnswers`).

Gossip validation goes to the world directory and the hosting table; DHT world records are
judged by `dht_validate`/`dht_select`; Bitswap reads and writes the node's ONE `Repo`. Blocking
work (files, SQLite, signature recovery) runs in a worker thread, never on the event loop, one
small function per ask so the store calls are easy to swap.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TypeVar

from fluxnode.core.cid import Cid
from fluxnode.core.errors import FluxError, NodeStarting
from fluxnode.node.bans import BANS_TOPIC, BanDirectory
from fluxnode.node.hosting import HOSTING_TOPIC, Hosting
from fluxnode.node.sessions import INSTANCES_TOPIC, SessionService
from fluxnode.node.worlds import DHT_NAMESPACE, WORLDS_TOPIC, WorldDirectory, dht_select
from fluxnode.node.worlds import dht_validate as _dht_validate
from fluxnode.p2p.messages import (
    GetBlock,
    PutBlock,
    SelectDhtRecord,
    ServeBlock,
    ValidateDhtRecord,
    ValidateGossip,
)
from fluxnode.storage.repo import Repo

T = TypeVar("T")


async def off_loop(fn: Callable[..., T], *args: object) -> T:
    """Run `fn(*args)` in a worker thread. If the caller is cancelled (an ask past its deadline),
    wait for the thread to finish before passing the cancellation on: a thread cannot be
    stopped, and the ask's slot must stay taken while its work still runs."""
    work = asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        raise


class NodeAnswers:
    """Answers for one node. Gossip is refused (NodeStarting) until `worlds` is set."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.worlds: WorldDirectory | None = None
        self.hosting: Hosting | None = None
        self.bans: BanDirectory | None = None
        self.sessions: SessionService | None = None
        #: Told the size of each block Bitswap fetched and we stored (progress, counters).
        self.on_fetched: Callable[[int], None] | None = None

    # -- validation ----------------------------------------------------------------------------
    async def validate_gossip(self, ask: ValidateGossip) -> bool:
        if self.worlds is None:  # asked before we are up: fail closed
            raise NodeStarting("node is starting")
        if ask.topic == WORLDS_TOPIC:
            return await self.worlds.offer(ask.data, forwarder=ask.forwarder)
        if ask.topic == HOSTING_TOPIC and self.hosting is not None:
            return self.hosting.validate(ask.data, ask.author)
        if ask.topic == BANS_TOPIC and self.bans is not None:
            return await self.bans.offer(ask.data, forwarder=ask.forwarder)
        if ask.topic == INSTANCES_TOPIC and self.sessions is not None:
            return self.sessions.validate_directory(ask.data, ask.author)
        return False

    async def validate_dht_record(self, ask: ValidateDhtRecord) -> bool:
        return await off_loop(dht_record_is_valid, ask.key, ask.value)

    async def select_dht_record(self, ask: SelectDhtRecord) -> int:
        return await off_loop(dht_select, ask.key, list(ask.values))

    # -- blocks, for Bitswap -------------------------------------------------------------------
    async def get_block(self, ask: GetBlock) -> bytes | None:
        return await off_loop(self._local_block, ask.cid)

    async def put_block(self, ask: PutBlock) -> None:
        await off_loop(self._put_fetched, ask.cid, ask.data)
        if self.on_fetched is not None:
            self.on_fetched(len(ask.data))

    async def serve_block(self, ask: ServeBlock) -> bytes | None:
        return await off_loop(self._block_for_peer, ask.cid)

    def _local_block(self, cid: Cid) -> bytes | None:
        # Bitswap's own fetches: what is stored already, pinned or not (a fetch in progress).
        return self.repo.local_block(cid)

    def _block_for_peer(self, cid: Cid) -> bytes | None:
        return self.repo.block_for_peer(cid)  # servable (pinned, not denied) and intact

    def _put_fetched(self, cid: Cid, data: bytes) -> None:
        # Refuses denied content and going over quota. The engine accepted these bytes only
        # after hashing them against `cid` (see PutBlock), so they are not hashed again.
        self.repo.put_fetched(cid, data, verified=True)


def dht_record_is_valid(key: str, value: bytes) -> bool:
    if not key.startswith(f"/{DHT_NAMESPACE}/"):
        return False  # only our own namespace is ours to judge
    try:
        _dht_validate(key, value)
    except FluxError:
        return False
    return True
