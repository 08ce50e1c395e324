"""The gateway application.

`GET /ipfs/...` serves pinned content (see gateway/content.py); `GET /api/v0/node` gives the
node's public identity (peer ID, addresses, version) so a browser or thin app can find its libp2p
addresses; `GET /healthz` is for load balancers.
"""

from __future__ import annotations

from aiohttp import web

from fluxnode.core.content import ContentApi
from fluxnode.core.status import NodeApi
from fluxnode.gateway.content import add_content_routes
from fluxnode.gateway.errors import json_error_middleware

NODE_API_KEY = web.AppKey("node_api", NodeApi)
MAX_REQUEST_BYTES = 64 * 1024


async def _node_info(request: web.Request) -> web.Response:
    status = await request.app[NODE_API_KEY].status()
    return web.json_response(
        {"peer_id": status.peer_id, "addrs": list(status.addrs), "version": status.version}
    )


async def _healthz(request: web.Request) -> web.Response:
    status = await request.app[NODE_API_KEY].status()
    return web.json_response({"ok": True, "uptime_s": round(status.uptime_s, 3)})


def make_gateway_app(api: NodeApi, content: ContentApi | None = None) -> web.Application:
    app = web.Application(middlewares=[json_error_middleware], client_max_size=MAX_REQUEST_BYTES)
    app[NODE_API_KEY] = api
    app.router.add_get("/api/v0/node", _node_info)
    app.router.add_get("/healthz", _healthz)
    if content is not None:
        add_content_routes(app, content)
    return app
