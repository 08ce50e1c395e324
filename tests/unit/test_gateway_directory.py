"""Share links and the world directory over the real gateway: `/w/{id}` (HTML and JSON),
`/api/worlds` search and cursors, `/api/worlds/{id}`; traversal and encoded ids fail cleanly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fluxnode.core.errors import BadRequest
from tests.unit.light_stack import Stack, light_stack
from tests.unit.record_samples import signed


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with light_stack(tmp_path) as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get_json(http: aiohttp.ClientSession, url: str, status: int = 200) -> Any:
    async with http.get(url) as resp:
        assert resp.status == status, await resp.text()
        assert resp.content_type == "application/json"
        return await resp.json()


def assert_error(body: Any, code: str) -> None:
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)


async def test_a_share_link_gives_programs_the_record_manifest_and_hosts(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    record = stack.records["public"]
    data = await get_json(http, f"{stack.url}/w/{record.world_id}")
    assert data["record"] == record.to_json()  # the wire fields, signature included
    assert data["manifest"]["name"] == "Hello World"
    assert data["manifest"]["tags"] == ["example", "tutorial"]
    assert data["hosts"] == [{"node": "node-a", "gateway_url": stack.url}]
    assert data["instances"] == {"count": 0, "visitors": 0, "capacity": 0, "list": []}
    assert data["links"]["manifest"] == f"/ipfs/{record.cid}/world.json"


async def test_a_share_link_whose_content_cannot_be_had_still_answers_and_says_why(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    record = stack.records["absent"]
    data = await get_json(http, f"{stack.url}/w/{record.world_id}")
    assert data["record"]["cid"] == str(record.cid)
    assert data["manifest"] is None
    assert "no peer has it" in data["manifest_error"]


async def test_a_browser_gets_a_page_with_the_world_id_escaped(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    world = stack.records["public"].world_id
    async with http.get(f"{stack.url}/w/{world}", headers={"Accept": "text/html,*/*"}) as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
    assert "<html" in page.lower()
    # A syntactically valid id the node does not know still gets the page (it says so itself).
    async with http.get(f"{stack.url}/w/land:42", headers={"Accept": "text/html"}) as resp:
        assert resp.status == 200


async def test_unknown_and_malformed_world_ids_are_json_errors(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    missing = await get_json(http, f"{stack.url}/w/land:42", 404)
    assert_error(missing, "not_found")
    for bad in ("nope", "0xABC/x", "land:-1", "%3Cscript%3E", "land:1%00"):
        assert_error(await get_json(http, f"{stack.url}/w/{bad}", 400), "bad_request")
        assert_error(await get_json(http, f"{stack.url}/api/worlds/{bad}", 400), "bad_request")


@pytest.mark.parametrize(
    "path",
    [
        "/w/../../etc/passwd",
        "/w/%2e%2e/%2e%2e/etc/passwd",
        "/w/..%2F..%2Fetc%2Fpasswd",
        "/w/%252e%252e%252f",
        "/api/worlds/..%2f..%2fhealthz",
        "/api/worlds/%2e%2e%2fmanifest",
        "/api/worlds/0x0000000000000000000000000000000000000000%2F..%2F..%2Fx",
        "/w/0x0000000000000000000000000000000000000000/..",
        "/api/worlds/land:1/..%5c..%5c",
    ],
)
async def test_path_traversal_and_encoded_variants_fail_cleanly(
    stack: Stack, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(stack.url + path) as resp:
        assert resp.status in (400, 404), (path, resp.status)
        assert resp.content_type == "application/json"
        assert "error" in await resp.json()


async def test_the_directory_fills_its_summaries_lazily_then_searches_them(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    first = await get_json(http, f"{stack.url}/api/worlds")
    assert {w["summary"] for w in first["worlds"]} == {"pending"}
    await stack.light.catalog.settle()
    data = await get_json(http, f"{stack.url}/api/worlds")
    by_id = {w["world_id"]: w for w in data["worlds"]}
    public = by_id[stack.records["public"].world_id]
    assert (public["name"], public["tags"], public["summary"]) == (
        "Hello World", ["example", "tutorial"], "ok",
    )  # fmt: skip
    cid = stack.records["public"].cid
    assert public["thumbnail_url"] == f"/ipfs/{cid}/thumbnail.png"
    assert by_id[stack.records["absent"].world_id]["summary"] == "unavailable"
    # Fetched once: a second listing does not ask the network again within the retry time.
    assert len(stack.host.fetches) == 1

    async def ids(query: str) -> list[str]:
        page = await get_json(http, f"{stack.url}/api/worlds?{query}")
        return [w["world_id"] for w in page["worlds"]]

    # Both held worlds share one manifest ("Hello World"); the id tells them apart.
    assert len(await ids("q=HELLO")) == 2
    assert await ids("q=SECRET") == [stack.records["private"].world_id]
    # The private world has the same manifest (same CID): both carry its tags.
    assert len(await ids("tag=Tutorial")) == 2
    assert len(await ids(f"creator={stack.owner.address}")) == 3
    assert await ids("creator=0x" + "00" * 20) == []
    newest = [stack.records[k].world_id for k in ("absent", "private", "public")]
    assert await ids("sort=new") == newest


async def test_cursors_walk_every_world_once_and_bad_ones_are_refused(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        query = "sort=new&limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = await get_json(http, f"{stack.url}/api/worlds?{query}")
        seen += [w["world_id"] for w in page["worlds"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(stack.by_id) and len(seen) == 3
    first = await get_json(http, f"{stack.url}/api/worlds?sort=new&limit=1")
    other_sort = first["next_cursor"]
    for query in (
        f"sort=popular&cursor={other_sort}",
        "cursor=notacursor!",
        "cursor=" + "A" * 400,
        "limit=0",
        "limit=101",
        "limit=ten",
        "sort=random",
        "creator=bob",
        "page=2",
        "q=" + "x" * 101,
    ):
        assert_error(await get_json(http, f"{stack.url}/api/worlds?{query}", 400), "bad_request")


async def test_world_detail_lists_versions_seen_hosts_and_instances(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    old = stack.records["public"]
    url = f"{stack.url}/api/worlds/{old.world_id}"
    detail = await get_json(http, url)
    assert [v["seq"] for v in detail["versions"]] == [1]
    newer = signed(stack.owner, world_id=old.world_id, cid=str(old.cid), seq=2,
                   issued_at=old.issued_at + 5)  # fmt: skip
    stack.by_id[old.world_id] = newer
    detail = await get_json(http, url)
    assert [v["seq"] for v in detail["versions"]] == [1, 2]
    assert detail["world"]["first_seen"] == old.issued_at  # the first version's issue time
    assert detail["record"]["seq"] == 2
    assert detail["hosts"] == [{"node": "node-a", "gateway_url": stack.url}]
    assert detail["instances"]["list"] == []


def test_search_query_bounds_are_checked_in_core() -> None:
    from fluxnode.core.world_search import WorldQuery

    assert WorldQuery.parse({}).sort == "popular"
    with pytest.raises(BadRequest, match="unknown query parameter"):
        WorldQuery.parse({"offset": "3"})
