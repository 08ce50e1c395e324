"""The gateway's one middleware: request metrics, then the guard (CORS preflights, rate
limits), then JSON errors for whatever the handler raised, in that order.

One middleware rather than three because aiohttp wraps each middleware of an app in a
coroutine and a context manager of its own for every request; on a small file served from
memory those wrappers cost as much as the rest of our work. The three parts stay where they
were written (gateway/metrics.py, gateway/guard.py, gateway/errors.py) and are composed here.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from fluxnode.gateway.errors import error_answer
from fluxnode.gateway.guard import Guard
from fluxnode.gateway.metrics import Handler, RequestMetrics, response_size, route_of


def make_edge_middleware(
    metrics: RequestMetrics, guard: Guard, *, expose_local: bool = False
) -> Middleware:
    early = guard.early
    observe = metrics.observe

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_of(request)
        response: web.StreamResponse | None = early(request)
        if response is None:
            response = await _answer(request, handler, route)
        observe(route, request.method, response.status, response_size(response))
        return response

    async def _answer(request: web.Request, handler: Handler, route: str) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:  # a redirect: aiohttp answers it
                observe(route, request.method, exc.status, 0)
                raise
            return error_answer(request, exc, expose_local=expose_local)
        except Exception as exc:
            return error_answer(request, exc, expose_local=expose_local)

    return edge
