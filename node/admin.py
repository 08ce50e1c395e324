"""The local admin endpoint: HTTP over a unix socket in the data dir, never on the network.

File permissions on the socket (0600, in a 0700 data dir) are the access control, as with
Docker's socket. The CLI's `status` and `ping` talk to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from fluxnode.core.errors import (
    BadRequest,
    ConfigError,
    FluxError,
    NodeNotRunning,
    OperationTimedOut,
    error_from_json,
)
from fluxnode.gateway import json_error_middleware
from fluxnode.node.datadir import ADMIN_SOCKET

#: Linux's sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
MAX_ADMIN_BODY = 16 * 1024


class AdminBackend(Protocol):
    """What the admin endpoint needs from the running node (implemented in node.daemon)."""

    async def status_json(self) -> dict[str, Any]: ...

    async def ping(self, peer: str, count: int) -> dict[str, Any]: ...

    async def connect(self, addr: str) -> str: ...

    async def publish(self, record_wire: bytes) -> dict[str, Any]: ...

    async def world_list(self) -> list[dict[str, Any]]: ...

    # -- moderation (node.moderation) ----------------------------------------------------------
    async def reports(self, world_id: str | None, limit: int) -> list[dict[str, Any]]: ...

    async def publish_bans(self, ban_list_wire: bytes) -> dict[str, Any]: ...

    async def ban_list(self, world_id: str) -> dict[str, Any] | None: ...

    async def session_silence(self, visitor: str, on: bool) -> dict[str, Any]: ...


BACKEND_KEY = web.AppKey("backend", AdminBackend)


def socket_path(data_dir: Path) -> Path:
    path = data_dir.resolve() / ADMIN_SOCKET
    if len(str(path).encode()) > MAX_SOCKET_PATH:
        raise ConfigError("data_dir", f"path too long for the admin socket ({path})")
    return path


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


async def _status(request: web.Request) -> web.Response:
    return web.json_response(await request.app[BACKEND_KEY].status_json())


async def _ping(request: web.Request) -> web.Response:
    body = await _json_body(request)
    peer, count = body.get("peer"), body.get("count", 3)
    if not isinstance(peer, str) or not isinstance(count, int) or isinstance(count, bool):
        raise BadRequest('expected {"peer": "<peer id>", "count": <int>}')
    return web.json_response(await request.app[BACKEND_KEY].ping(peer, count))


async def _connect(request: web.Request) -> web.Response:
    addr = (await _json_body(request)).get("addr")
    if not isinstance(addr, str):
        raise BadRequest('expected {"addr": "<multiaddr>/p2p/<peer id>"}')
    return web.json_response({"peer_id": await request.app[BACKEND_KEY].connect(addr)})


async def _publish(request: web.Request) -> web.Response:
    record = (await _json_body(request)).get("record")
    if not isinstance(record, str):
        raise BadRequest('expected {"record": "<world record wire JSON>"}')
    return web.json_response(await request.app[BACKEND_KEY].publish(record.encode()))


async def _worlds(request: web.Request) -> web.Response:
    return web.json_response({"worlds": await request.app[BACKEND_KEY].world_list()})


def _int_query(request: web.Request, name: str, default: int, hi: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 9) or not 1 <= int(text) <= hi:
        raise BadRequest(f"{name} must be an integer in 1..{hi}")
    return int(text)


async def _reports(request: web.Request) -> web.Response:
    from fluxnode.node.reports_store import MAX_LIST

    limit = _int_query(request, "limit", 100, MAX_LIST)
    world = request.query.get("world")
    reports = await request.app[BACKEND_KEY].reports(world, limit)
    return web.json_response({"reports": reports})


async def _bans_get(request: web.Request) -> web.Response:
    world = request.query.get("world")
    if not world:
        raise BadRequest("expected ?world=<world id>")
    return web.json_response({"ban_list": await request.app[BACKEND_KEY].ban_list(world)})


async def _bans_post(request: web.Request) -> web.Response:
    wire = (await _json_body(request)).get("ban_list")
    if not isinstance(wire, str):
        raise BadRequest('expected {"ban_list": "<ban list wire JSON>"}')
    return web.json_response(await request.app[BACKEND_KEY].publish_bans(wire.encode()))


async def _silence(request: web.Request) -> web.Response:
    body = await _json_body(request)
    visitor, on = body.get("visitor"), body.get("on", True)
    if not isinstance(visitor, str) or not isinstance(on, bool):
        raise BadRequest('expected {"visitor": "<visitor id>", "on": true|false}')
    return web.json_response(await request.app[BACKEND_KEY].session_silence(visitor, on))


def make_admin_app(backend: AdminBackend) -> web.Application:
    app = web.Application(middlewares=[json_error_middleware], client_max_size=MAX_ADMIN_BODY)
    app[BACKEND_KEY] = backend
    app.router.add_get("/v0/status", _status)
    app.router.add_post("/v0/ping", _ping)
    app.router.add_post("/v0/connect", _connect)
    app.router.add_post("/v0/publish", _publish)
    app.router.add_get("/v0/worlds", _worlds)
    app.router.add_get("/v0/reports", _reports)
    app.router.add_get("/v0/bans", _bans_get)
    app.router.add_post("/v0/bans", _bans_post)
    app.router.add_post("/v0/session/silence", _silence)
    return app


async def admin_request(
    data_dir: Path,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    timeout_s: float = 30.0,
) -> dict[str, Any]:
    """Call the running node's admin endpoint; NodeNotRunning if nothing listens."""
    sock = socket_path(data_dir)
    if not sock.exists():
        raise NodeNotRunning(f"no node is running on {data_dir} (no {sock.name})")
    connector = aiohttp.UnixConnector(path=str(sock))
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.request(method, f"http://flux-node{path}", json=body) as resp,
        ):
            text = await resp.text()
    except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionRefusedError) as exc:
        raise NodeNotRunning(f"no node is running on {data_dir} ({exc})") from exc
    except TimeoutError as exc:
        raise OperationTimedOut(
            f"the node on {data_dir} did not answer within {timeout_s:g} s"
        ) from exc
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {"message": text}
    if resp.status >= 400:
        raise _error_from_body(data, resp.status, text)
    return data if isinstance(data, dict) else {"result": data}


def _error_from_body(data: object, status: int, text: str) -> FluxError:
    """The node's error rebuilt as its own class (by its code), so the CLI reports a missing
    world as not found and a dead chain as unavailable, not everything as one local error."""
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        data = data["error"]  # the {"error": {code, message}} envelope
    if not isinstance(data, dict):
        data = {"message": text}
    return error_from_json(data, status=status)
