"""Every HTTP error is a JSON body `{"error": {"code", "message"}}` (plus `"reason"` inside
`error` for errors that name a failed rule); never a traceback, never a local path.

Two layers produce errors. The middleware turns what a handler raises into JSON; on the public
gateway (`expose_local=False`) a `LocalError` (our side: a corrupted block, a full disk) keeps
its code but not its message, which may name files of the operator's machine — the message goes
to the log instead. Below the app, aiohttp itself answers requests it cannot parse (bad request
line, header lines past the limits) from `RequestHandler.handle_error`, in text/plain and with
a traceback in the log; aiohttp has no public hook for that (aio-libs/aiohttp#3287), so
gateway/server.py installs a handler subclass that answers through `protocol_error_response`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.typedefs import Middleware

from fluxnode.core.errors import FluxError, LocalError

log = logging.getLogger("fluxnode.gateway")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: What a client of the public gateway reads for an error on our side (details are logged).
LOCAL_ERROR_MESSAGE = "this node could not serve the request; its operator's log has the details"
#: aiohttp's limit on the request line; header lines use MAX_FIELD_BYTES. They differ by one
#: byte so that a LineTooLong (which carries only the limit it broke) tells 414 from 431.
MAX_LINE_BYTES = 8191
MAX_FIELD_BYTES = 8190


def error_body(code: str, message: str, reason: str | None = None) -> dict[str, dict[str, str]]:
    """The one error shape of every route: `{"error": {"code", "message", "reason"?}}`."""
    inner = {"code": code, "message": message}
    if reason is not None:
        inner["reason"] = reason
    return {"error": inner}


def error_response(
    status: int,
    code: str,
    message: str,
    reason: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.json_response(error_body(code, message, reason), status=status, headers=headers)


_KEPT_HEADERS = frozenset(("Allow", "Retry-After"))


def client_gone(request: web.BaseRequest) -> bool:
    """True once the client's connection is closed (a write to it can only fail)."""
    transport = request.transport
    return transport is None or transport.is_closing()


def _where(request: web.Request) -> str:
    """The path without its query: queries carry credentials (`/session?token=...`)."""
    return request.rel_url.raw_path


def error_answer(request: web.Request, exc: Exception, *, expose_local: bool) -> web.Response:
    """The JSON answer to what a handler raised. Re-raises an `HTTPException` below 400 (a
    redirect: aiohttp answers it). `expose_local=False` for anything reachable from outside."""
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        # aiohttp's own answers (404, 405, 413) keep the headers that go with them.
        kept = {k: v for k, v in exc.headers.items() if k in _KEPT_HEADERS}
        code = exc.reason.lower().replace(" ", "_")
        return error_response(exc.status, code, exc.reason, headers=kept)
    if isinstance(exc, FluxError):
        if exc.http_status >= 500:
            log.warning("%s %s: %s (%s)", request.method, _where(request), exc, exc.code)
        else:
            log.debug("%s %s: %s (%s)", request.method, _where(request), exc, exc.code)
        message = str(exc)
        if isinstance(exc, LocalError) and not expose_local:
            message = LOCAL_ERROR_MESSAGE
        return error_response(exc.http_status, exc.code, message, exc.reason)
    if isinstance(exc, ConnectionError) and client_gone(request):
        # The client went away mid-response: nothing to answer, nothing wrong with us.
        # aiohttp's write of this response fails quietly on the closed transport.
        log.debug("%s %s: client disconnected (%s)", request.method, _where(request), exc)
        return web.Response(status=499)
    log.error("unhandled error serving %s %s", request.method, _where(request), exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def make_error_middleware(*, expose_local: bool) -> Middleware:
    """The JSON error middleware. `expose_local=False` for anything reachable from outside."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as exc:
            return error_answer(request, exc, expose_local=expose_local)

    return middleware


#: For the operator's admin endpoint: local errors keep their full message.
json_error_middleware = make_error_middleware(expose_local=True)
#: For the public gateway.
public_error_middleware = make_error_middleware(expose_local=False)


def protocol_error_response(status: int, exc: BaseException | None) -> web.Response:
    """The answer to a request aiohttp could not parse (or a handler failure it caught itself).

    Only the first line of aiohttp's reason goes back, cut to 100 characters.
    """
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else None
        if limit == MAX_LINE_BYTES:
            return error_response(414, "uri_too_long", f"request line longer than {limit} bytes")
        return error_response(
            431, "request_header_too_large", f"a header line is longer than {limit} bytes"
        )
    if isinstance(exc, BadHttpMessage):
        reason = exc.message.splitlines()[0] if exc.message else "malformed request"
        if reason.startswith("Too many headers"):
            return error_response(431, "request_header_too_large", "too many header lines")
        return error_response(400, "bad_request", f"malformed HTTP request: {reason[:100]}")
    if status < 500:
        return error_response(status, "bad_request", "malformed HTTP request")
    return error_response(500, "internal_error", "internal error")
