"""Share links and the world directory: `GET /w/{world_id}`, `GET /api/worlds[/{world_id}]`.

`/w/{world_id}` answers a browser (`Accept` naming `text/html`) with the viewer page — the
static `gateway/viewer/index.html` when it is installed, else a small page that links to the
JSON — and any other client with JSON: the world's current signed record, its manifest (parsed
`world.json`, read by the record's CID, so signed transitively; null with `manifest_error`
when it cannot be had now), where it is hosted (node ids and their gateway URLs when known)
and its live instances. `/api/worlds` is the directory search (`fluxnode.core.world_search`);
`/api/worlds/{world_id}` one world's versions seen, hosting nodes and instances. What the
record and manifest say is the owner's; counts, hosts and first-seen times are this node's view.
"""

from __future__ import annotations

import asyncio
import html
import logging
from pathlib import Path
from typing import Final

from aiohttp import web

from fluxnode.core.errors import FluxError
from fluxnode.core.light_api import LightApi
from fluxnode.core.world_search import WorldQuery, search
from fluxnode.gateway.api_input import world_id_of
from fluxnode.gateway.viewer_routes import VIEWER_FILES_KEY, viewer_page

log = logging.getLogger("fluxnode.gateway.light")

LIGHT_API_KEY = web.AppKey("light_api", LightApi)
VIEWER_DIR: Final = Path(__file__).resolve().parent / "viewer"
#: Longest a share link waits for a manifest this node does not hold yet.
MANIFEST_WAIT_S: Final = 10.0

_FALLBACK_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Flux</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>{title}</h1>
<p>This node serves no viewer. The world's record, manifest and hosts:
<a href="{json}">{json}</a> (JSON).</p></body></html>
"""


def wants_html(request: web.Request) -> bool:
    """True when the client names text/html in `Accept` (what browsers send for a page)."""
    accept = request.headers.get("Accept", "")
    return any(part.split(";", 1)[0].strip().lower() == "text/html" for part in accept.split(","))


async def _viewer_page(world_id: str) -> web.Response:
    index = VIEWER_DIR / "index.html"
    try:
        body = await asyncio.to_thread(index.read_bytes)
    except OSError:
        title = html.escape(world_id)
        link = html.escape(f"/api/worlds/{world_id}", quote=True)
        body = _FALLBACK_PAGE.format(title=title, json=link).encode()
    return web.Response(
        body=body,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


async def share_link(request: web.Request) -> web.Response:
    world_id = world_id_of(request)
    if wants_html(request):
        if VIEWER_FILES_KEY in request.app:  # the viewer's own page, with its security headers
            return await viewer_page(request)
        return await _viewer_page(world_id)
    api = request.app[LIGHT_API_KEY]
    detail = await api.world_detail(world_id)
    data = detail.to_json()
    data["manifest"] = None
    try:
        async with asyncio.timeout(MANIFEST_WAIT_S):
            data["manifest"] = await api.world_manifest_json(world_id)
    except (FluxError, TimeoutError) as exc:
        # The record and hosts are still worth answering with; say why the manifest is not.
        message = "timed out fetching it" if isinstance(exc, TimeoutError) else str(exc)
        data["manifest_error"] = message[:300]
    cid = data["record"]["cid"]
    data["links"] = {
        "viewer": f"/w/{world_id}",
        "api": f"/api/worlds/{world_id}",
        "content": f"/ipfs/{cid}/",
        "manifest": f"/ipfs/{cid}/world.json",
    }
    return web.json_response(data, headers={"Cache-Control": "no-cache"})


async def list_worlds(request: web.Request) -> web.Response:
    query = WorldQuery.parse(request.query)
    cards = await request.app[LIGHT_API_KEY].world_cards()
    page, cursor = search(cards, query)
    return web.json_response(
        {"worlds": [c.to_json() for c in page], "next_cursor": cursor},
        headers={"Cache-Control": "no-cache"},
    )


async def world_detail(request: web.Request) -> web.Response:
    detail = await request.app[LIGHT_API_KEY].world_detail(world_id_of(request))
    return web.json_response(detail.to_json(), headers={"Cache-Control": "no-cache"})


def add_light_routes(app: web.Application, api: LightApi) -> None:
    """Register after every `/api/worlds/{world_id}/...` route: world ids hold a "/", so this
    catch-all must come last to leave `/manifest` and `/join` to their own handlers."""
    app[LIGHT_API_KEY] = api
    app.router.add_get("/w/{world_id:.+}", share_link)
    app.router.add_get("/api/worlds", list_worlds)
    app.router.add_get("/api/worlds/{world_id:.+}", world_detail)
