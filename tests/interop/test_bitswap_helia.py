"""Bitswap 1.2.0 against a real Helia 7 node, both directions, over yamux and mplex.

(a) Helia fetches multi-MiB UnixFS DAGs (CIDv0 with dag-pb leaves, CIDv1 with raw leaves) that
    our host serves from a BlockStore; the bytes Helia exports match.
(b) Our host fetches a multi-MiB DAG Helia imported into its own blockstore; every block is
    verified on arrival and again by the BlockStore, and the file reassembles to the same bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fluxnode.core.cid import Cid
from fluxnode.core.errors import FluxError
from fluxnode.node.answers import NodeAnswers
from fluxnode.p2p import HostClient, HostInfo, HostSettings, generate_private_key
from fluxnode.p2p.bitswap import BitswapLimits
from fluxnode.storage.blockstore import BlockStore
from fluxnode.storage.repo import Repo
from tests.interop import jsref

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SIZE = 6 * 1024 * 1024 + 12345


def _data(seed: int) -> bytes:
    return random.Random(seed).randbytes(SIZE)


async def _start(repo: Repo, answers: NodeAnswers | None = None, **limits: Any) -> Ours:
    """A host answered as node/daemon.py answers it: the repo's blocks, served if pinned."""
    settings = HostSettings(
        private_key=generate_private_key(),
        listen=("/ip4/127.0.0.1/tcp/0",),
        bitswap=True,
        bitswap_limits=BitswapLimits(**limits) if limits else None,
    )
    host = HostClient(settings, answers or NodeAnswers(repo), name="flux-trio-bitswap")
    info = await host.start()
    return Ours(host, info, repo.blocks)


class Ours:
    def __init__(self, host: HostClient, info: HostInfo, store: BlockStore) -> None:
        self.host, self.info, self.store = host, info, store

    @property
    def addr(self) -> str:
        tcp = next(a for a in self.info.addrs if "/tcp/" in a)
        return tcp if "/p2p/" in tcp else f"{tcp}/p2p/{self.info.peer_id}"


async def _helia_fetch(addr: str, cid: str, **kwargs: Any) -> dict[str, Any]:
    """Helia fetching from us, in a worker thread: our host asks the event loop for every
    block it serves, so the loop must stay free while Helia runs."""
    return await asyncio.to_thread(jsref.helia_bitswap_fetch, addr, cid, **kwargs)


@pytest.fixture
async def ours(tmp_path: Path) -> AsyncIterator[tuple[Ours, Repo]]:
    repo = Repo(tmp_path / "repo")
    node = await _start(repo)
    try:
        yield node, repo
    finally:
        await node.host.aclose()


@pytest.mark.parametrize("muxer", ["yamux", "mplex"])
@pytest.mark.parametrize("cid_version", [0, 1])
async def test_helia_fetches_from_us(
    ours: tuple[Ours, Repo], tmp_path: Path, muxer: str, cid_version: int
) -> None:
    node, repo = ours
    data = _data(cid_version * 10 + len(muxer))
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    added = repo.add(src, cid_version=cid_version)
    start = time.perf_counter()
    got = await _helia_fetch(node.addr, str(added.cid), muxer=muxer, timeout=60)
    elapsed = time.perf_counter() - start
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    assert got["size"] == len(data)
    print(
        f"\nHelia <- us ({muxer}, v{cid_version}): {len(data) / 2**20 / (got['ms'] / 1000):.1f} "
        f"MiB/s in-fetch, {elapsed:.2f} s incl. Node start"
    )


async def test_helia_gets_nothing_unpinned(ours: tuple[Ours, Repo], tmp_path: Path) -> None:
    node, repo = ours
    src = tmp_path / "small.bin"
    src.write_bytes(b"secret\n" * 1000)
    added = repo.add(src, pin=False)  # stored but not pinned: not served
    assert repo.blocks.has(added.cid)
    with pytest.raises(jsref.JSRefError):
        await _helia_fetch(node.addr, str(added.cid), timeout=10)


@pytest.mark.parametrize("muxer", ["yamux", "mplex"])
@pytest.mark.parametrize("cid_version", [0, 1])
async def test_we_fetch_from_helia(
    ours: tuple[Ours, Repo], tmp_path: Path, muxer: str, cid_version: int
) -> None:
    node, repo = ours
    data = _data(100 + cid_version)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    helia = jsref.helia_bitswap_serve(src, cid_version=cid_version, muxer=muxer)
    try:
        await node.host.connect(helia.multiaddr)  # time the transfer, not the dial
        start = time.perf_counter()
        count = await node.host.bitswap_fetch(Cid.parse(helia.cid), [helia.multiaddr])
        elapsed = time.perf_counter() - start
    finally:
        helia.stop()
    assert helia.proc.returncode is not None
    assert count == helia.info["blocks"]
    # Every block is in our store and verifies; the file reads back byte for byte.
    root = Cid.parse(helia.cid)
    assert hashlib.sha256(b"".join(repo.exporter.read(root, 0, None))).digest() == (
        hashlib.sha256(data).digest()
    )
    print(f"\nus <- Helia ({muxer}, v{cid_version}): {len(data) / 2**20 / elapsed:.1f} MiB/s")


async def test_big_two_level_dag_both_ways(ours: tuple[Ours, Repo], tmp_path: Path) -> None:
    """48 MiB: 192 leaves under two levels of dag-pb nodes (balanced, 174 links each)."""
    node, repo = ours
    data = random.Random(7).randbytes(48 * 1024 * 1024)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    added = repo.add(src)
    start = time.perf_counter()
    got = await _helia_fetch(node.addr, str(added.cid), timeout=120)
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    print(
        f"\nHelia <- us 48 MiB: {48 / (got['ms'] / 1000):.1f} MiB/s in-fetch "
        f"({time.perf_counter() - start:.2f} s total)"
    )

    other = Repo(tmp_path / "other")
    helia = jsref.helia_bitswap_serve(src, cid_version=1)
    fetcher = await _start(other)
    try:
        await fetcher.host.connect(helia.multiaddr)
        start = time.perf_counter()
        count = await fetcher.host.bitswap_fetch(Cid.parse(helia.cid), [helia.multiaddr])
        elapsed = time.perf_counter() - start
    finally:
        helia.stop()
        await fetcher.host.aclose()
    assert count == helia.info["blocks"] == 192 + 2 + 1  # leaves, 2 inner nodes, root
    root = Cid.parse(helia.cid)
    assert b"".join(other.exporter.read(root, 0, None)) == data
    print(f"us <- Helia 48 MiB: {48 / elapsed:.1f} MiB/s")


async def test_our_client_rejects_tampered_blocks(tmp_path: Path) -> None:
    """Between two of our own hosts: a server whose blocks do not match their CIDs gets its
    data dropped and its score lowered; nothing unverified is stored; the fetch fails."""
    good = Repo(tmp_path / "good")
    src = tmp_path / "f.bin"
    src.write_bytes(random.Random(3).randbytes(2 * 1024 * 1024))
    added = good.add(src)

    class Tampering(NodeAnswers):  # serves every block it has, one of them altered
        def _block_for_peer(self, cid: Cid) -> bytes | None:
            if not good.blocks.has(cid):
                return None
            data = good.blocks.get(cid)
            return data if cid == added.cid else data[:-1] + bytes([data[-1] ^ 1])

    server = await _start(good, Tampering(good))
    other = Repo(tmp_path / "other")
    client = await _start(other, want_timeout_s=2.0)
    try:
        with pytest.raises(FluxError, match="could not be fetched"):
            await client.host.bitswap_fetch(added.cid, [server.addr])
        assert other.blocks.has(added.cid)  # the honest root was stored, verified
        stored = list(other.blocks.iter_cids())
        assert [c.multihash for c in stored] == [
            added.cid.multihash
        ]  # and no leaf: every tampered leaf was dropped
    finally:
        await client.host.aclose()
        await server.host.aclose()


async def test_two_of_our_hosts(tmp_path: Path) -> None:
    a, b = Repo(tmp_path / "a"), Repo(tmp_path / "b")
    src = tmp_path / "f.bin"
    data = random.Random(5).randbytes(5 * 1024 * 1024 + 1)
    src.write_bytes(data)
    added = a.add(src, cid_version=1)
    server, client = await _start(a), await _start(b)
    try:
        count = await client.host.bitswap_fetch(added.cid, [server.addr])
        assert count == added.blocks
        assert b"".join(b.exporter.read(added.cid, 0, None)) == data
        # Fetching again finds everything locally: no network needed, same count.
        assert await client.host.bitswap_fetch(added.cid, [server.addr]) == count
    finally:
        await client.host.aclose()
        await server.host.aclose()


async def test_concurrent_clients_share_a_throttled_server(tmp_path: Path) -> None:
    """One send slot, 256 KiB per message: two peers fetching at once are served round-robin
    and both complete."""

    a = Repo(tmp_path / "a")
    src = tmp_path / "f.bin"
    data = random.Random(9).randbytes(4 * 1024 * 1024)
    src.write_bytes(data)
    added = a.add(src)
    server = await _start(a, max_active_peers=1, send_budget=256 * 1024)
    clients = [await _start(Repo(tmp_path / f"c{i}")) for i in range(2)]
    try:
        counts = await asyncio.gather(
            *(c.host.bitswap_fetch(added.cid, [server.addr]) for c in clients)
        )
        assert counts == [added.blocks, added.blocks]
    finally:
        for node in (*clients, server):
            await node.host.aclose()
