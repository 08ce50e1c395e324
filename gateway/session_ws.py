"""`GET /session` and `GET /ws`: the session protocol's WebSocket (binary messages, one frame each).

`/ws` is the same protocol for browsers, with one addition: a client that signed in over HTTP
(`POST /api/auth/verify`) passes its token as `?token=<token>` (a browser's WebSocket cannot
set headers) or `Authorization: Bearer <token>`, and the node skips `Challenge`/`Hello` and
sends `SignedIn` first. A bad or expired token is refused before the upgrade (401, JSON).
Without a token `/ws` is exactly `/session`.

A slow client must never stall the node: frames for a client go into a bounded queue that one
writer task drains; when the queue is full the client is dropped (close code 1008, "too slow")
instead of buffering without bound or making the session logic wait. Text messages, messages
over the frame limit and pings the client never answers close the connection (aiohttp enforces
`max_msg_size` and `heartbeat`). What a frame means is the node's business (`SessionGate`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import WSCloseCode, WSMsgType, web

from fluxnode.core.errors import TokenInvalid
from fluxnode.core.light_api import LightApi
from fluxnode.core.session.gate import SessionGate, SessionPeer, SessionSink
from fluxnode.core.session.wire import MAX_FRAME
from fluxnode.gateway.api_input import bearer_token, check_token_text

log = logging.getLogger("fluxnode.gateway.session")

SESSION_GATE_KEY = web.AppKey("session_gate", SessionGate)
#: Frames queued for one client before it counts as too slow (about 10 s of ticks at 10 Hz,
#: plus bursts of state operations and chat).
SEND_QUEUE = 256
#: Seconds between WebSocket pings; a client that misses one pong is dropped.
HEARTBEAT_S = 15.0
#: Connections one gateway holds at once (each is a visitor; a node hosts a few hundred).
MAX_CONNECTIONS = 2000


class _Sink:
    """The gateway's half of one connection: a bounded queue and the close it asks for."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(SEND_QUEUE)
        self.close_code: int | None = None
        self.close_reason = ""

    def send(self, data: bytes) -> bool:
        if self.close_code is not None:
            return False
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            self.close(WSCloseCode.POLICY_VIOLATION, "too slow: frames not read")
            return False
        return True

    def close(self, code: int, reason: str) -> None:
        if self.close_code is not None:
            return
        self.close_code, self.close_reason = code, reason
        if self._queue.full():  # a client too slow for its frames gets none of them
            while not self._queue.empty():
                self._queue.get_nowait()
        self._queue.put_nowait(None)  # after the frames already queued: they still go out

    async def write_loop(self) -> None:
        ws = self._ws
        with contextlib.suppress(ConnectionError):
            while (data := await self._queue.get()) is not None:
                await ws.send_bytes(data)
        await ws.close(
            code=self.close_code or WSCloseCode.OK, message=self.close_reason.encode()[:120]
        )


Opener = Callable[[SessionSink], Awaitable[SessionPeer]]


async def session_socket(request: web.Request) -> web.StreamResponse:
    gate = request.app[SESSION_GATE_KEY]
    remote = request.remote or ""
    return await _serve(request, lambda sink: gate.open_session(sink, remote))


async def browser_socket(request: web.Request) -> web.StreamResponse:
    """`/ws`: `/session`, or already signed in by a token (see the module docstring)."""
    token = request.query.get("token")
    if token is None and "Authorization" in request.headers:
        token = bearer_token(request)
    if token is None:
        return await session_socket(request)
    light = request.app.get(LIGHT_WS_KEY)
    if light is None:
        raise TokenInvalid("this gateway takes no tokens: send Hello after Challenge")
    light.token_holder(check_token_text(token))  # TokenInvalid (401) before the upgrade
    remote = request.remote or ""
    return await _serve(request, lambda sink: light.open_token_session(sink, remote, token))


async def _serve(request: web.Request, open_peer: Opener) -> web.StreamResponse:
    counter = request.app[_OPEN_KEY]
    if counter[0] >= MAX_CONNECTIONS:
        raise web.HTTPServiceUnavailable(reason="too many sessions")
    ws = web.WebSocketResponse(
        max_msg_size=MAX_FRAME, heartbeat=HEARTBEAT_S, compress=False, autoping=True
    )
    await ws.prepare(request)
    counter[0] += 1
    sink = _Sink(ws)
    writer = asyncio.create_task(sink.write_loop())
    peer: SessionPeer | None = None
    try:
        peer = await open_peer(sink)
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                await peer.receive(msg.data)
                # Buffered messages are read without a task switch: yield so the writer drains
                # the answers, else a burst fills the queue and drops a client that reads fine.
                await asyncio.sleep(0)
            elif msg.type is WSMsgType.TEXT:
                sink.close(WSCloseCode.UNSUPPORTED_DATA, "session frames are binary")
            if sink.close_code is not None:
                break
    finally:
        counter[0] -= 1
        if peer is not None:
            try:
                await peer.closed()
            except Exception:  # the node's cleanup failing must not hide why we are here
                log.exception("session cleanup failed")
        sink.close(WSCloseCode.GOING_AWAY, "")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer, 2.0)
        writer.cancel()
    return ws


_OPEN_KEY = web.AppKey("session_open", list)
LIGHT_WS_KEY = web.AppKey("light_ws", LightApi)


async def world_manifest(request: web.Request) -> web.Response:
    world_id = request.match_info["world_id"]
    data = await request.app[SESSION_GATE_KEY].world_manifest(world_id)
    return web.Response(
        body=data, content_type="application/json", headers={"Cache-Control": "no-cache"}
    )


def add_session_route(
    app: web.Application, gate: SessionGate, light: LightApi | None = None
) -> None:
    app[SESSION_GATE_KEY] = gate
    app[_OPEN_KEY] = [0]
    app.router.add_get("/session", session_socket)
    app.router.add_get("/ws", browser_socket)
    if light is not None:
        app[LIGHT_WS_KEY] = light
    # World ids may hold a "/" (``0x…/slug``): the id is everything before "/manifest".
    app.router.add_get("/api/worlds/{world_id:.+}/manifest", world_manifest)
