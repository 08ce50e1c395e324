"""The admin socket's moderation endpoints (`/v0/reports`, `/v0/bans`) and the table
`flux-node reports` prints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from fluxnode.core.errors import BadRequest, BanListInvalid
from fluxnode.node.admin import admin_request, make_admin_app, socket_path
from fluxnode.node.cli_moderation import format_reports

REPORT = {
    "id": 7,
    "received_at": 1_800_000_000.5,
    "reporter": "0x" + "ab" * 20,
    "world_id": "land:42",
    "subject": None,
    "reason": "griefing at spawn",
    "instance_id": "0123456789abcdef",
}


class Backend:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def reports(self, world_id: str | None, limit: int) -> list[dict[str, Any]]:
        self.calls.append(("reports", (world_id, limit)))
        return [REPORT]

    async def publish_bans(self, ban_list_wire: bytes) -> dict[str, Any]:
        self.calls.append(("publish_bans", ban_list_wire))
        if ban_list_wire == b"old":
            raise BanListInvalid("stale", "seq 1 is not newer than the held seq 2")
        return {"world_id": "land:42", "seq": 3, "banned": 1}

    async def ban_list(self, world_id: str) -> dict[str, Any] | None:
        self.calls.append(("ban_list", world_id))
        return None


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Backend]:
    backend = Backend()
    runner = web.AppRunner(make_admin_app(backend))  # type: ignore[arg-type]
    await runner.setup()
    await web.UnixSite(runner, str(socket_path(tmp_path))).start()
    try:
        yield backend
    finally:
        await runner.cleanup()


async def test_reports_endpoint(tmp_path: Path, served: Backend) -> None:
    got = await admin_request(tmp_path, "GET", "/v0/reports")
    assert got == {"reports": [REPORT]}
    await admin_request(tmp_path, "GET", "/v0/reports?world=land%3A42&limit=5")
    assert served.calls == [("reports", (None, 100)), ("reports", ("land:42", 5))]


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten", "1" * 40, "\u0661"])
async def test_reports_limit_is_checked(tmp_path: Path, served: Backend, limit: str) -> None:
    with pytest.raises(BadRequest, match=r"limit must be an integer in 1\.\.1000"):
        await admin_request(tmp_path, "GET", f"/v0/reports?limit={limit}")
    assert served.calls == []


async def test_bans_endpoints(tmp_path: Path, served: Backend) -> None:
    assert await admin_request(tmp_path, "GET", "/v0/bans?world=land%3A42") == {"ban_list": None}
    answer = await admin_request(tmp_path, "POST", "/v0/bans", {"ban_list": "{}"})
    assert answer == {"world_id": "land:42", "seq": 3, "banned": 1}
    with pytest.raises(BanListInvalid) as info:  # the node's refusal keeps its class and reason
        await admin_request(tmp_path, "POST", "/v0/bans", {"ban_list": "old"})
    assert info.value.reason == "stale"
    with pytest.raises(BadRequest, match="ban_list"):
        await admin_request(tmp_path, "POST", "/v0/bans", {"ban_list": 5})
    with pytest.raises(BadRequest, match="world"):
        await admin_request(tmp_path, "GET", "/v0/bans")
    assert [c[0] for c in served.calls] == ["ban_list", "publish_bans", "publish_bans"]


def test_reports_table() -> None:
    other = {**REPORT, "id": 6, "subject": "0x" + "cd" * 20, "instance_id": None, "reason": "x"}
    lines = format_reports([REPORT, other]).splitlines()
    assert lines[0].split() == [
        "ID", "RECEIVED", "(UTC)", "WORLD", "REPORTER", "SUBJECT", "INSTANCE", "REASON"
    ]  # fmt: skip
    assert lines[1].startswith("7   2027-01-15 08:00:00  land:42")
    assert lines[1].endswith("0123456789abcdef  griefing at spawn")
    assert " - " in lines[1]  # no subject
    assert lines[2].split()[-2:] == ["-", "x"]
    assert format_reports([]) == "no reports\n"
