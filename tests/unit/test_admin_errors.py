"""The admin client rebuilds the node's errors as their own classes, whatever the status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from fluxnode.core.errors import (
    BadRequest,
    ChainUnavailable,
    FluxError,
    NotFound,
    PeerError,
    RecordInvalid,
)
from fluxnode.node.admin import admin_request, make_admin_app, socket_path


class Backend:
    def __init__(self, exc: FluxError) -> None:
        self.exc = exc

    async def status_json(self) -> dict[str, Any]:
        raise self.exc

    async def ping(self, peer: str, count: int) -> dict[str, Any]:
        raise self.exc

    async def connect(self, addr: str) -> str:
        raise self.exc

    async def publish(self, record_wire: bytes) -> dict[str, Any]:
        raise self.exc

    async def world_list(self) -> list[dict[str, Any]]:
        raise self.exc


@pytest.mark.parametrize(
    "exc",
    [
        NotFound("no such world"),
        ChainUnavailable("every endpoint is down"),
        BadRequest("bad peer id"),
        PeerError("peer unreachable"),
        RecordInvalid("expired", "issued long ago"),
    ],
)
async def test_admin_errors_keep_their_class(tmp_path: Path, exc: FluxError) -> None:
    runner = web.AppRunner(make_admin_app(Backend(exc)))
    await runner.setup()
    site = web.UnixSite(runner, str(socket_path(tmp_path)))
    await site.start()
    try:
        with pytest.raises(type(exc)) as info:
            await admin_request(tmp_path, "GET", "/v0/status")
    finally:
        await runner.cleanup()
    assert type(info.value) is type(exc)
    assert str(info.value) == str(exc)
    assert info.value.reason == exc.reason
