"""The gateway application.

`GET /ipfs/...` serves pinned content (see gateway/content.py); `GET /api/v0/node` gives the
node's public identity (peer ID, addresses, version) so a browser or thin app can find its libp2p
addresses; `GET /healthz` is for load balancers: it answers from the app alone (no call into
the node, no thread, no disk), so it stays cheap when polled hard. `GET /session` is the session
protocol's WebSocket (gateway/session_ws.py, docs/session-protocol.md), `GET /ws` the same for
browsers (it also takes a session token). With a `LightApi`: share links `/w/{world_id}` and
the directory (gateway/light.py), sign-in, join and reports (gateway/auth.py). `GET /metrics`
(gateway/metrics.py) and `GET /api/openapi.json` (gateway/openapi.py, which describes every
route) are always there. `GET /` and `GET /viewer/*` serve the browser viewer
(gateway/viewer_routes.py).

One middleware (gateway/edge.py): request metrics, the guard (CORS, rate limits:
gateway/guard.py), the JSON error layer (gateway/errors.py), outermost first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from aiohttp import web

from fluxnode.core.content import ContentApi
from fluxnode.core.errors import FluxError
from fluxnode.core.light_api import LightApi
from fluxnode.core.node_metrics import MetricsSource
from fluxnode.core.session.gate import SessionGate
from fluxnode.core.status import NodeApi
from fluxnode.gateway.auth import add_auth_routes
from fluxnode.gateway.content import add_content_routes
from fluxnode.gateway.edge import make_edge_middleware
from fluxnode.gateway.errors import MAX_FIELD_BYTES, MAX_LINE_BYTES
from fluxnode.gateway.guard import RateSettings, make_guard
from fluxnode.gateway.light import add_light_routes
from fluxnode.gateway.metrics import RequestMetrics, add_metrics_route
from fluxnode.gateway.openapi import add_openapi_route
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
    light: LightApi | None = None,
    metrics: MetricsSource | None = None,
) -> web.Application:
    """Serve it with `GatewayRunner` (gateway/server.py), so that requests aiohttp cannot
    parse are answered in JSON too."""
    limits = limits or GatewayLimits()
    counters = RequestMetrics()
    rates = RateSettings(limits.ip_rate, limits.ip_burst, limits.address_rate, limits.address_burst)
    guard = make_guard(rates, limits.cors_origins, _token_owner(light))
    app = web.Application(
        middlewares=[make_edge_middleware(counters, guard)],
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
    if limits.cors_origins:
        app.on_response_prepare.append(guard.on_prepare)
    app.router.add_get("/api/v0/node", _node_info)
    app.router.add_get("/healthz", _healthz)
    add_metrics_route(app, counters, metrics)
    add_openapi_route(app)
    if content is not None:
        add_content_routes(app, content)
    if sessions is not None:
        add_session_route(app, sessions, light)
    if light is not None:
        add_auth_routes(app)  # before the light routes' `/api/worlds/{world_id}` catch-all
        add_light_routes(app, light)
    add_viewer_routes(app)
    return app


def _token_owner(light: LightApi | None) -> Callable[[str], str | None] | None:
    if light is None:
        return None

    def owner(token: str) -> str | None:
        try:
            return light.token_holder(token).address
        except FluxError:
            return None

    return owner
