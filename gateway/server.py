"""Serving the gateway: connection limits and a runner whose protocol answers in JSON.

aiohttp has no header read timeout, but its keep-alive timer closes a connection that is still
waiting for a complete request once `keepalive_timeout` has passed since the connection opened
or its last response ended; bytes of an unfinished request head do not reset it. Setting that
timeout (through the app's public `handler_args`) therefore bounds the time a client may take
to send its headers, which is what a slowloris client stretches. Idle keep-alive connections
are closed after the same time.

Requests aiohttp cannot parse never reach the app or its middleware: `RequestHandler.
handle_error` answers them in text/plain and logs a traceback. `GatewayRunner` (an `AppRunner`)
makes its connections with a handler whose `handle_error` answers in our JSON and logs a
client's malformed request at debug level, without a traceback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from fluxnode.gateway.errors import protocol_error_response

log = logging.getLogger("fluxnode.gateway")


@dataclass(frozen=True)
class GatewayLimits:
    #: Time a client has to send a complete request head (from connecting, or from the end of
    #: its previous response on a kept-alive connection). Also the idle keep-alive time.
    header_timeout_s: float = 15.0
    #: Longest wait for a client to take more response bytes before the connection is dropped.
    write_stall_s: float = 60.0
    #: Origins whose browsers may call the API across origins (`gateway.cors_origins`);
    #: empty: no CORS headers at all; `"*"`: any origin.
    cors_origins: tuple[str, ...] = ()
    #: Token buckets of the light-client routes (gateway/guard.py): per client IP, and per
    #: signed-in address for requests with a session token. `ip_rate` 0: no per-IP limit.
    ip_rate: float = 20.0
    ip_burst: float = 60.0
    address_rate: float = 5.0
    address_burst: float = 30.0


LIMITS_KEY = web.AppKey("gateway_limits", GatewayLimits)


class _JsonErrorRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            # Part of a response is out: the only honest signal left is a dropped connection.
            log.debug("dropping connection after a partial response: %r", exc)
            raise ConnectionError("response already started")
        if status >= 500:
            log.error("error serving %s %s", request.method, request.path, exc_info=exc)
        else:
            log.debug("malformed request from %s: %s", request.remote, exc)
        resp = protocol_error_response(status, exc)
        resp.force_close()
        return resp


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """`web.AppRunner` for the gateway app: same use (`setup`, a site, `cleanup`)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return _JsonErrorServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )
