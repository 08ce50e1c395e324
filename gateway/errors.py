"""Every HTTP error is a JSON body `{"code", "message"}`; never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from fluxnode.core.errors import FluxError

log = logging.getLogger("fluxnode.gateway")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, code: str, message: str, reason: str | None = None) -> web.Response:
    body = {"code": code, "message": message}
    if reason is not None:
        body["reason"] = reason
    return web.json_response(body, status=status)


@web.middleware
async def json_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except FluxError as exc:
        if exc.http_status >= 500:
            log.warning("%s %s: %s", request.method, request.path, exc)
        return error_response(exc.http_status, exc.code, str(exc), exc.reason)
    except Exception:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error")
