"""The directory page: search over `GET /api/worlds?q=`, world links, and a node without the
route (404) gets a note instead of a broken page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from fluxnode.gateway.viewer_routes import add_viewer_routes
from tests.browser.conftest import new_page, wait_state
from tests.unit.gateway_helpers import serve

pytestmark = [pytest.mark.slow, pytest.mark.interop]

WORLDS = [
    {"world_id": "0x" + "ab" * 20 + "/plaza", "name": "Plaza", "tags": ["social", "music"],
     "visitors": 3, "description": "A square <b>with</b> a fountain"},
    {"world_id": "land:7", "name": "Harbour", "tags": ["water"], "visitors": 0},
]  # fmt: skip


@pytest.fixture
async def directory_node() -> AsyncIterator[tuple[str, list[str]]]:
    queries: list[str] = []

    async def worlds(request: web.Request) -> web.Response:
        q = request.query.get("q", "")
        queries.append(q)
        found = [w for w in WORLDS if q.lower() in str(w["name"]).lower()]
        return web.json_response({"worlds": found, "next_cursor": None})

    app = web.Application()
    add_viewer_routes(app)
    app.router.add_get("/api/worlds", worlds)
    async with serve(app) as port:
        yield f"http://127.0.0.1:{port}", queries


async def test_directory_lists_and_searches_worlds(
    browser: Any, directory_node: tuple[str, list[str]]
) -> None:
    base, queries = directory_node
    page, log = await new_page(browser)
    await page.goto(base + "/")
    await wait_state(page, "directory", log=log)
    links = page.locator("#results li.world a")
    assert await links.all_inner_texts() == ["Plaza", "Harbour"]
    assert await links.first.get_attribute("href") == "/w/" + WORLDS[0]["world_id"]
    # Text from the node is shown as text, never as markup.
    assert (
        await page.locator("#results li.world .desc").first.inner_text() == WORLDS[0]["description"]
    )
    assert await page.locator("#results b").count() == 0
    await page.fill("#search", "harb")
    await page.press("#search", "Enter")
    await page.wait_for_function(
        "() => document.querySelectorAll('#results li.world').length === 1"
    )
    assert await links.all_inner_texts() == ["Harbour"]
    assert queries == ["", "harb"]


async def test_a_node_without_a_directory_gets_a_note(browser: Any, viewer_only: str) -> None:
    page, log = await new_page(browser)
    await page.goto(viewer_only + "/")
    await wait_state(page, "directory-error", log=log)
    note = await page.inner_text("#dir-note")
    assert note == "This node does not offer a world directory; open a world by its id below."
    await page.fill("#open-id", "land:42")
    await page.press("#open-id", "Enter")
    await page.wait_for_url(viewer_only + "/w/land:42")
