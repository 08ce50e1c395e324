"""The gateway with warm caches: blocks remembered as verified (served from memory on the event
loop, or with sendfile) are still never served once their file changed, and an unpin made
through another handle (the CLI) is seen by the next request."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from fluxnode.core.cid import Cid
from fluxnode.core.dagpb import decode_node
from fluxnode.gateway import make_gateway_app
from fluxnode.storage.blockcache import BlockCache
from fluxnode.storage.content import RepoContent
from fluxnode.storage.repo import Repo
from tests.unit.gateway_helpers import FakeNode, get, raw_request, serve, wait_for_record

CHUNK = 256 * 1024
BIG = random.Random(5).randbytes(40 * CHUNK + 1000)
SMALL = random.Random(6).randbytes(16 * 1024)


def later() -> float:
    return time.time() + 60


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "data")


@pytest.fixture
def content(repo: Repo) -> RepoContent:
    return RepoContent(repo, BlockCache(repo.blocks, now=later))


@pytest.fixture
async def port(content: RepoContent) -> AsyncIterator[int]:
    async with serve(make_gateway_app(FakeNode(), content)) as p:
        yield p


def add(repo: Repo, data: bytes) -> Cid:
    cid = repo.add(io.BytesIO(data), cid_version=1).cid  # type: ignore[arg-type]
    # Old file times, as for any block written more than a clock tick before it is changed.
    for path in repo.blocks.root.rglob("*.data"):
        os.utime(path, (1_000_000, 1_000_000))
    return cid


def flip_in_place(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    with path.open("r+b") as fh:
        fh.write(bytes(raw))


async def test_a_hot_small_file_is_served_from_memory_then_refused_once_corrupted(
    port: int, repo: Repo, content: RepoContent
) -> None:
    cid = add(repo, SMALL)
    for _ in range(2):
        resp = await raw_request(port, get(f"/ipfs/{cid}"))
        assert (resp.status, resp.body) == (200, SMALL)
    assert content.cached_file(cid, []) == (content.resolve(cid, [])[0], SMALL)
    ranged = await raw_request(port, get(f"/ipfs/{cid}", "Range: bytes=10-19"))
    assert (ranged.status, ranged.body) == (206, SMALL[10:20])
    flip_in_place(repo.blocks.path_for(cid))
    assert content.cached_file(cid, []) is None
    resp = await raw_request(port, get(f"/ipfs/{cid}"))
    assert resp.status == 500
    assert b"block_corrupted" in resp.body
    assert SMALL[:100] not in resp.body


async def test_a_large_file_sent_from_verified_files_is_cut_once_a_leaf_is_corrupted(
    port: int, repo: Repo, content: RepoContent
) -> None:
    root = add(repo, BIG)
    resp = await raw_request(port, get(f"/ipfs/{root}"))
    assert resp.body == BIG  # read and hashed: now remembered
    assert content.cache.statistics().entries >= 41
    resp = await raw_request(port, get(f"/ipfs/{root}"))
    assert resp.body == BIG  # sent from the block files
    first = 3 * CHUNK - 7
    ranged = await raw_request(port, get(f"/ipfs/{root}", f"Range: bytes={first}-{9 * CHUNK}"))
    assert ranged.status == 206
    assert ranged.body == BIG[first : 9 * CHUNK + 1]
    leaves = decode_node(repo.blocks.get(root)).links
    flip_in_place(repo.blocks.path_for(leaves[30].cid))
    resp = await raw_request(port, get(f"/ipfs/{root}"))
    assert resp.status == 200
    assert len(resp.body) < len(BIG)
    assert resp.body == BIG[: len(resp.body)]
    assert len(resp.body) <= 30 * CHUNK
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/ipfs/{root}") as r,
    ):
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()
    # Found before the status line (in the first parts read): a JSON error instead.
    flip_in_place(repo.blocks.path_for(leaves[2].cid))
    resp = await raw_request(port, get(f"/ipfs/{root}"))
    assert resp.status == 500
    assert b"block_corrupted" in resp.body


async def test_an_unpin_through_another_handle_is_seen_by_the_next_request(
    port: int, repo: Repo, tmp_path: Path
) -> None:
    cid = add(repo, SMALL)
    for _ in range(2):
        assert (await raw_request(port, get(f"/ipfs/{cid}"))).status == 200
    cli = Repo(tmp_path / "data")
    assert cli.pins.remove(cid) == 1
    resp = await raw_request(port, get(f"/ipfs/{cid}"))
    assert resp.status == 404
    cli.pins.add(cid)
    assert (await raw_request(port, get(f"/ipfs/{cid}"))).status == 200


async def test_healthz_answers_without_the_node(port: int) -> None:
    resp = await raw_request(port, get("/healthz"))
    assert resp.status == 200
    assert b'"ok": true' in resp.body


@pytest.mark.parametrize("gone", [BrokenPipeError, ConnectionResetError])
async def test_a_client_leaving_during_sendfile_is_a_departure_not_a_warning(
    port: int,
    repo: Repo,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    gone: type[OSError],
) -> None:
    caplog.set_level(logging.DEBUG, logger="fluxnode.gateway")
    root = add(repo, BIG)
    assert (await raw_request(port, get(f"/ipfs/{root}"))).body == BIG  # now remembered
    real = asyncio.get_running_loop().sendfile
    calls = 0

    async def leaves_midway(*args: object, **kwargs: object) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            # What the socket reports when the client is gone while the transport, which does
            # not read during a sendfile, has not noticed yet.
            raise gone(32, "the client went away")
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio.get_running_loop(), "sendfile", leaves_midway)
    resp = await raw_request(port, get(f"/ipfs/{root}"))
    assert len(resp.body) < len(BIG)
    assert resp.body == BIG[: len(resp.body)]
    await wait_for_record(lambda: caplog.records, lambda r: "client left" in r.getMessage())
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
