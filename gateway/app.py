"""The gateway application. Content routes (trustless gateway) are added by the storage work.

Today it answers `GET /api/v0/node` (public identity: peer ID, addresses, version) so a browser
or a thin app can find the node's libp2p addresses, and `GET /healthz` for load balancers.
"""

from __future__ import annotations

from aiohttp import web

from fluxnode.core.status import NodeApi
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


def make_gateway_app(api: NodeApi) -> web.Application:
    app = web.Application(middlewares=[json_error_middleware], client_max_size=MAX_REQUEST_BYTES)
    app[NODE_API_KEY] = api
    app.router.add_get("/api/v0/node", _node_info)
    app.router.add_get("/healthz", _healthz)
    return app
