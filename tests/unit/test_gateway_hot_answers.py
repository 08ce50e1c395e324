"""Whole answers kept for hot small files (gateway/hot_answers.py): the same bytes and headers
as the full way, never used for another format, a conditional or ranged request answered as
the full way would, and dropped by anything that may change the answer (an unpin by this
handle or another, another denylist, a changed block file)."""

from __future__ import annotations

import io
import os
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from fluxnode.core.cid import Cid
from fluxnode.core.content import ContentEntry, Kind
from fluxnode.core.denylist import Denylist
from fluxnode.gateway import make_gateway_app
from fluxnode.gateway.content import HOT_KEY
from fluxnode.gateway.hot_answers import HotAnswers
from fluxnode.storage.blockcache import BlockCache
from fluxnode.storage.content import RepoContent
from fluxnode.storage.repo import Repo
from tests.unit.gateway_helpers import FakeNode, get, raw_request, serve

SMALL = random.Random(7).randbytes(16 * 1024)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "data")


@pytest.fixture
def app(repo: Repo) -> web.Application:
    content = RepoContent(repo, BlockCache(repo.blocks, now=lambda: time.time() + 60))
    return make_gateway_app(FakeNode(), content)


@pytest.fixture
async def port(app: web.Application) -> AsyncIterator[int]:
    async with serve(app) as p:
        yield p


def add(repo: Repo, data: bytes, name: str | None = None) -> Cid:
    cid = repo.add(io.BytesIO(data), cid_version=1).cid  # type: ignore[arg-type]
    for path in repo.blocks.root.rglob("*.data"):
        os.utime(path, (1_000_000, 1_000_000))
    return cid


def without_date(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != "date"}


async def warm(port: int, app: web.Application, target: str) -> dict[str, str]:
    """Ask twice; the second answer must come from the kept answers."""
    first = await raw_request(port, get(target))
    hits = app[HOT_KEY].hits
    second = await raw_request(port, get(target))
    assert app[HOT_KEY].hits == hits + 1
    assert (second.status, second.body) == (first.status, first.body) == (200, SMALL)
    assert without_date(second.headers) == without_date(first.headers)
    return second.headers


async def test_a_kept_answer_has_the_full_ways_bytes_and_headers(
    port: int, app: web.Application, repo: Repo
) -> None:
    cid = add(repo, SMALL)
    headers = await warm(port, app, f"/ipfs/{cid}")
    assert headers["etag"] == f'"{cid}"'
    assert headers["content-length"] == str(len(SMALL))


async def test_other_formats_conditionals_ranges_and_head_are_answered_as_the_full_way(
    port: int, app: web.Application, repo: Repo
) -> None:
    cid = add(repo, SMALL)
    await warm(port, app, f"/ipfs/{cid}")
    raw = await raw_request(port, get(f"/ipfs/{cid}", "Accept: application/vnd.ipld.raw"))
    assert (raw.status, raw.headers["content-type"]) == (200, "application/vnd.ipld.raw")
    car = await raw_request(port, get(f"/ipfs/{cid}?format=car"))
    assert car.headers["content-type"].startswith("application/vnd.ipld.car")
    assert SMALL in car.body and car.body != SMALL
    same = await raw_request(port, get(f"/ipfs/{cid}", f'If-None-Match: "{cid}"'))
    assert (same.status, same.body) == (304, b"")
    assert "content-type" not in same.headers
    part = await raw_request(port, get(f"/ipfs/{cid}", "Range: bytes=100-199"))
    assert (part.status, part.body) == (206, SMALL[100:200])
    assert part.headers["content-range"] == f"bytes 100-199/{len(SMALL)}"
    bad = await raw_request(port, get(f"/ipfs/{cid}", "Range: bytes=99999-"))
    assert bad.status == 416
    head = b"HEAD /ipfs/%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % str(cid).encode()
    answer = await raw_request(port, head)
    assert (answer.status, answer.body) == (200, b"")
    assert answer.headers["content-length"] == str(len(SMALL))


async def test_an_unpin_through_the_same_handle_is_seen_by_the_next_request(
    port: int, app: web.Application, repo: Repo
) -> None:
    cid = add(repo, SMALL)
    await warm(port, app, f"/ipfs/{cid}")
    assert repo.pins.remove(cid) == 1
    assert (await raw_request(port, get(f"/ipfs/{cid}"))).status == 404
    assert len(app[HOT_KEY]) == 0


async def test_another_denylist_is_another_answer(
    port: int, app: web.Application, repo: Repo
) -> None:
    cid = add(repo, SMALL)
    await warm(port, app, f"/ipfs/{cid}")
    repo.denylist = Denylist.parse(f"/ipfs/{cid}\n", "test.deny")
    assert (await raw_request(port, get(f"/ipfs/{cid}"))).status == 451


async def test_a_block_file_replaced_on_disk_is_read_again_the_full_way(
    port: int, app: web.Application, repo: Repo
) -> None:
    cid = add(repo, SMALL)
    await warm(port, app, f"/ipfs/{cid}")
    path = repo.blocks.path_for(cid)
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)  # same bytes, another inode: verified again, then kept again
    again = await raw_request(port, get(f"/ipfs/{cid}"))
    assert (again.status, again.body) == (200, SMALL)
    assert app[HOT_KEY].hits == 1


def entry(size: int) -> ContentEntry:
    cid = Cid.parse("bafkreidnt3ohudwv42nesoix6h3t6hpb4esxmouykeg64q2dj7gjwwxyru")
    return ContentEntry(cid=cid, kind=Kind.FILE, size=size)


def always(cid: Cid) -> bool:
    return True


def test_kept_answers_are_bounded_in_number_bytes_and_file_size() -> None:
    hot = HotAnswers(max_entries=3, max_bytes=250, max_file=100)
    for i in range(5):
        hot.put(f"/ipfs/{i}", 1, entry(10), b"x" * 10, "n", "/ipfs/x", {})
    assert len(hot) == 3
    assert hot.get("/ipfs/0", 1, always) is None and hot.get("/ipfs/4", 1, always) is not None
    hot.put("/ipfs/big", 1, entry(101), b"x" * 101, "n", "/ipfs/x", {})
    assert hot.get("/ipfs/big", 1, always) is None
    for i in range(3):
        hot.put(f"/ipfs/h{i}", 1, entry(100), b"x" * 100, "n", "/ipfs/x", {})
    assert len(hot) == 2 and hot.kept_bytes == 200
    hot.put("/ipfs/short", 1, entry(50), b"x" * 10, "n", "/ipfs/x", {})
    assert (
        hot.get("/ipfs/short", 1, always) is None
    )  # a body that is not the whole file is never kept


def test_an_answer_kept_under_another_version_is_dropped() -> None:
    hot = HotAnswers()
    hot.put("/ipfs/a", ("v", 1), entry(3), b"abc", "n", "/ipfs/x", {"ETag": '"a"'})
    assert hot.get("/ipfs/a", ("v", 2), always) is None
    assert len(hot) == 0 and hot.kept_bytes == 0
    hot.put("/ipfs/a", ("v", 2), entry(3), b"abc", "n", "/ipfs/x", {"ETag": '"a"'})
    assert hot.get("/ipfs/a", ("v", 2), lambda cid: False) is None
    assert len(hot) == 0 and hot.hits == 0
