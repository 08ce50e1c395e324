"""`GET /session` and `GET /ws`: the session protocol's WebSocket (binary messages, one frame each).

`/ws` is the same protocol for browsers, with one addition: a client that signed in over HTTP
(`POST /api/auth/verify`) passes its token as `?token=<token>` (a browser's WebSocket cannot
set headers) or `Authorization: Bearer <token>`, and the node skips `Challenge`/`Hello` and
sends `SignedIn` first. A bad or expired token is refused before the upgrade (401, JSON).
Without a token `/ws` is exactly `/session`.

A slow client must never stall the node: frames for a client go into a bounded queue that one
writer task drains; a viewer frame still queued unsent is replaced by the next one
(`send_latest`: each is a delta against what the client acknowledged, so only the newest
matters), so a client that falls behind gets the newest view, not a backlog. When the queue is
full, or the writer has waited `SEND_STALL_S` on one frame, the client is dropped (close code
1008, "too slow") instead of buffering without bound or making the session logic wait. Each
drop is logged and counted (`flux_session_clients_dropped_total{reason="slow"}` in
`/metrics`). A client that does not read its socket at all would never take a close frame
either: when it is dropped while the socket still holds unsent bytes, the connection is
aborted at once (the writer is blocked on the kernel buffer, not the queue); any other close
not completed within `CLOSE_GRACE_S` is aborted too, so a stuck socket's file descriptor and
buffers are freed. Text messages, messages over the frame limit and pings the client never
answers close the connection (aiohttp enforces `max_msg_size` and `heartbeat`). What a frame
means is the node's business (`SessionGate`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable

from aiohttp import WSCloseCode, WSMsgType, web

from fluxnode.core.errors import TokenInvalid
from fluxnode.core.light_api import LightApi
from fluxnode.core.session.gate import SessionGate, SessionPeer, SessionSink
from fluxnode.core.session.wire import MAX_FRAME
from fluxnode.gateway.api_input import bearer_token, check_token_text
from fluxnode.gateway.metrics import METRICS_KEY, RequestMetrics

log = logging.getLogger("fluxnode.gateway.session")

SESSION_GATE_KEY = web.AppKey("session_gate", SessionGate)
#: Frames queued for one client before it counts as too slow (about 10 s of ticks at 10 Hz,
#: plus bursts of state operations and chat).
SEND_QUEUE = 256
#: Seconds the writer may wait on one frame (the client's socket taking no bytes at all) before
#: the client counts as too slow. Views replace each other in the queue (`send_latest`), so a
#: client that stopped reading would otherwise never overflow it.
SEND_STALL_S = 8.0
#: Seconds between WebSocket pings; a client that misses one pong is dropped.
HEARTBEAT_S = 15.0
#: Seconds a closing connection has to take its close frame before it is aborted.
CLOSE_GRACE_S = 5.0
#: Connections one gateway holds at once (each is a visitor; a node hosts a few hundred).
MAX_CONNECTIONS = 2000


class _Latest:
    """A queued frame `send_latest` may still replace."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class _Sink:
    """The gateway's half of one connection: a bounded queue and the close it asks for."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None,
        on_slow: Callable[[str, bool], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ws = ws
        self._transport = transport
        self._on_slow = on_slow
        self._queue: asyncio.Queue[bytes | _Latest | None] = asyncio.Queue(SEND_QUEUE)
        self._latest: _Latest | None = None  # queued, not yet taken by the writer
        self._clock = clock
        self._writing_since: float | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self.close_code: int | None = None
        self.close_reason = ""

    def _open(self) -> bool:
        """Still sending? False once closing, or once the writer stalled past the limit."""
        if self.close_code is not None:
            return False
        since = self._writing_since
        if since is not None and self._clock() - since > SEND_STALL_S:
            self._slow(f"its socket took no frame for {SEND_STALL_S:g} s")
            return False
        return True

    def send(self, data: bytes | _Latest) -> bool:
        if not self._open():
            return False
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            self._slow(f"{SEND_QUEUE} frames unsent")
            return False
        return True

    def _slow(self, why: str) -> None:
        # Unsent bytes in the transport: the writer waits on the client's socket, which a
        # close frame would wait on too.
        t = self._transport
        stuck = isinstance(t, asyncio.WriteTransport) and t.get_write_buffer_size() > 0
        self.close(WSCloseCode.POLICY_VIOLATION, "too slow: frames not read")
        self._on_slow(why, stuck)
        if stuck:
            self.abort()

    def send_latest(self, data: bytes) -> bool:
        if not self._open():
            return False
        if self._latest is not None:
            self._latest.data = data
            return True
        latest = _Latest(data)
        if not self.send(latest):
            return False
        self._latest = latest
        return True

    def close(self, code: int, reason: str) -> None:
        if self.close_code is not None:
            return
        self.close_code, self.close_reason = code, reason
        if self._queue.full():  # a client too slow for its frames gets none of them
            while not self._queue.empty():
                self._queue.get_nowait()
        self._queue.put_nowait(None)  # after the frames already queued: they still go out
        self._abort_timer = asyncio.get_running_loop().call_later(CLOSE_GRACE_S, self.abort)

    def abort(self) -> None:
        """Drop the connection now, unsent bytes and all (ends the read loop too).

        A plain close would leave the kernel holding the unsent bytes and the socket, probing
        a window that never opens: linger 0 makes it a reset, which frees both at once."""
        t = self._transport
        if not isinstance(t, asyncio.WriteTransport) or t.is_closing():
            return
        sock = t.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t.abort()

    async def write_loop(self) -> None:
        ws = self._ws
        try:
            with contextlib.suppress(ConnectionError):
                while (item := await self._queue.get()) is not None:
                    if isinstance(item, _Latest):
                        if item is self._latest:
                            self._latest = None  # the next one queues anew
                        item_bytes = item.data
                    else:
                        item_bytes = item
                    self._writing_since = self._clock()
                    await ws.send_bytes(item_bytes)
                    self._writing_since = None
            await ws.close(
                code=self.close_code or WSCloseCode.OK, message=self.close_reason.encode()[:120]
            )
        finally:
            if self._abort_timer is not None:
                self._abort_timer.cancel()


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
    remote = request.remote or ""
    metrics = request.app.get(METRICS_KEY)

    def on_slow(why: str, stuck: bool) -> None:
        if isinstance(metrics, RequestMetrics):
            metrics.sessions_dropped.labels("slow").inc()
        detail = "; its socket is not draining, aborted" if stuck else ""
        log.info("session client %s dropped: too slow (%s%s)", remote, why, detail)

    sink = _Sink(ws, request.transport, on_slow)
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
        try:
            await asyncio.wait_for(writer, CLOSE_GRACE_S)
        except TimeoutError:
            sink.abort()  # a close the client never took: do not keep its socket
        except Exception:  # the writer's own failure is the connection's end, nothing more
            log.debug("session writer ended with an error", exc_info=True)
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
