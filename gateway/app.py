"""The gateway application.

`GET /ipfs/...` serves pinned content (see gateway/content.py); `GET /api/v0/node` gives the
node's public identity (peer ID, addresses, version) so a browser or thin app can find its libp2p
addresses; `GET /healthz` is for load balancers: it answers from the app alone (no call into
the node, no thread, no disk), so it stays cheap when polled hard. `GET /session` is the session
protocol's WebSocket (gateway/session_ws.py, docs/session-protocol.md). `GET /` and
`GET /viewer/*` serve the browser viewer (gateway/viewer_routes.py).
"""

from __future__ import annotations

import json
import time

from aiohttp import web

from fluxnode.core.content import ContentApi
from fluxnode.core.session.gate import SessionGate
from fluxnode.core.status import NodeApi
from fluxnode.gateway.content import add_content_routes
from fluxnode.gateway.errors import MAX_FIELD_BYTES, MAX_LINE_BYTES, public_error_middleware
from fluxnode.gateway.server import LIMITS_KEY, GatewayLimits
from fluxnode.gateway.session_ws import add_session_route
from fluxnode.gateway.viewer_routes import add_viewer_routes

NODE_API_KEY = web.AppKey("node_api", NodeApi)
STARTED_KEY = web.AppKey("started", float)
MAX_REQUEST_BYTES = 64 * 1024


async def _node_info(request: web.Request) -> web.Response:
    status = await request.app[NODE_API_KEY].status()
    return web.json_response(
        {"peer_id": status.peer_id, "addrs": list(status.addrs), "version": status.version}
    )


async def _healthz(request: web.Request) -> web.Response:
    uptime = round(time.monotonic() - request.app[STARTED_KEY], 3)
    return web.Response(
        text=json.dumps({"ok": True, "uptime_s": uptime}), content_type="application/json"
    )


def make_gateway_app(
    api: NodeApi,
    content: ContentApi | None = None,
    limits: GatewayLimits | None = None,
    sessions: SessionGate | None = None,
) -> web.Application:
    """Serve it with `GatewayRunner` (gateway/server.py), so that requests aiohttp cannot
    parse are answered in JSON too."""
    limits = limits or GatewayLimits()
    app = web.Application(
        middlewares=[public_error_middleware],
        client_max_size=MAX_REQUEST_BYTES,
        handler_args={
            # aiohttp's keep-alive timer is also its only header deadline: gateway/server.py.
            "keepalive_timeout": limits.header_timeout_s,
            "max_line_size": MAX_LINE_BYTES,
            "max_field_size": MAX_FIELD_BYTES,
        },
    )
    app[NODE_API_KEY] = api
    app[STARTED_KEY] = time.monotonic()
    app[LIMITS_KEY] = limits
    app.router.add_get("/api/v0/node", _node_info)
    app.router.add_get("/healthz", _healthz)
    if content is not None:
        add_content_routes(app, content)
    if sessions is not None:
        add_session_route(app, sessions)
    add_viewer_routes(app)
    return app
