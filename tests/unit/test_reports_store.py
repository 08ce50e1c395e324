"""Visitor reports on disk: every field checked, bounded in rows and per reporter, kept across
a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxnode.core.errors import BadRequest, RateLimited
from fluxnode.node.reports_store import MAX_REASON_CHARS, REPORTS_DB, ReportsStore

ALICE = "0x" + "ab" * 20
BOB = "0x" + "cd" * 20
CAROL = "0x" + "ef" * 20
WORLD = f"{ALICE}/plaza"
LAND = "land:42"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def store(tmp_path: Path, clock: Clock | None = None, **kw: int) -> ReportsStore:
    return ReportsStore(tmp_path / REPORTS_DB, clock=clock or Clock(), **kw)


async def test_add_and_list(tmp_path: Path) -> None:
    s = store(tmp_path)
    try:
        r1 = await s.add(reporter=ALICE.upper().replace("0X", "0x"), world_id=WORLD, reason="x")
        r2 = await s.add(
            reporter=BOB,
            world_id=LAND,
            reason="  spam in chat  ",
            subject=CAROL.upper().replace("0X", "0x"),
            instance_id="0123456789abcdef",
        )
        assert r1.reporter == ALICE  # lower-cased
        assert (r2.subject, r2.reason, r2.instance_id) == (
            CAROL,
            "spam in chat",
            "0123456789abcdef",
        )
        assert await s.list() == [r2, r1]  # newest first
        assert await s.list(world_id=LAND) == [r2]
        assert await s.list(limit=1) == [r2]
        assert await s.list(since=r2.received_at + 1) == []
        assert r2.to_json()["subject"] == CAROL
    finally:
        await s.aclose()


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("reporter", "0x1234", "reporter must be a 0x address"),
        ("reporter", None, "reporter must be a 0x address"),
        ("world_id", "plaza", "bad world id"),
        ("world_id", f"{ALICE.upper().replace('0X', '0x')}/plaza", "canonical"),
        ("world_id", 42, "world_id must be a string"),
        ("subject", "bob", "subject must be a 0x address"),
        ("reason", "", "reason must not be empty"),
        ("reason", "   ", "reason must not be empty"),
        ("reason", "x" * (MAX_REASON_CHARS + 1), "over 1000"),
        ("reason", "line one\nline two", "control character"),
        ("reason", "bell\x07", "control character"),
        ("reason", "abc\u202edcba", "control character"),  # right-to-left override
        ("reason", "para\u2029graph", "control character"),
        ("reason", b"bytes", "reason must be a string"),
        ("instance_id", "", "instance must be"),
        ("instance_id", "a b", "instance must be"),
        ("instance_id", "x" * 129, "instance must be"),
    ],
)
async def test_bad_fields_are_refused_and_nothing_is_stored(
    tmp_path: Path, field: str, value: object, match: str
) -> None:
    s = store(tmp_path)
    try:
        fields: dict[str, object] = {"reporter": ALICE, "world_id": WORLD, "reason": "ok"}
        fields[field] = value
        with pytest.raises(BadRequest, match=match):
            await s.add(**fields)  # type: ignore[arg-type]
        assert await s.count() == 0
    finally:
        await s.aclose()


async def test_reason_of_exactly_the_limit_and_unicode_is_kept(tmp_path: Path) -> None:
    s = store(tmp_path)
    try:
        text = "é" * (MAX_REASON_CHARS - 2) + "👍🏽"
        assert (await s.add(reporter=ALICE, world_id=WORLD, reason=text)).reason == text
    finally:
        await s.aclose()


async def test_list_arguments_are_checked(tmp_path: Path) -> None:
    s = store(tmp_path)
    try:
        for limit in (0, 1001, True):
            with pytest.raises(BadRequest, match="limit"):
                await s.list(limit=limit)
        with pytest.raises(BadRequest, match="bad world id"):
            await s.list(world_id="nope")
    finally:
        await s.aclose()


async def test_oldest_reports_are_dropped_beyond_max_rows(tmp_path: Path) -> None:
    s = store(tmp_path, max_rows=3, per_reporter=100)
    try:
        added = [await s.add(reporter=ALICE, world_id=WORLD, reason=f"r{i}") for i in range(5)]
        assert await s.count() == 3
        assert [r.reason for r in await s.list()] == ["r4", "r3", "r2"]
        assert added[-1].id == 5
    finally:
        await s.aclose()


async def test_per_reporter_rate_per_hour(tmp_path: Path) -> None:
    clock = Clock()
    s = store(tmp_path, clock, per_reporter=3)
    try:
        for i in range(3):
            await s.add(reporter=ALICE, world_id=WORLD, reason=f"r{i}")
            clock.now += 60
        with pytest.raises(RateLimited, match="3 reports in the last 1 h") as info:
            await s.add(reporter=ALICE, world_id=WORLD, reason="one too many")
        assert info.value.http_status == 429
        assert await s.count() == 3
        await s.add(reporter=BOB, world_id=WORLD, reason="another reporter is not limited")
        clock.now += 3600 - 180 + 1  # the first report is now over an hour old
        await s.add(reporter=ALICE, world_id=WORLD, reason="allowed again")
        assert s.rate_limited == 1
    finally:
        await s.aclose()


async def test_reports_and_rate_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    s = store(tmp_path, clock, per_reporter=2)
    first = await s.add(reporter=ALICE, world_id=WORLD, reason="one", subject=BOB)
    second = await s.add(reporter=ALICE, world_id=LAND, reason="two")
    await s.aclose()

    again = store(tmp_path, clock, per_reporter=2)
    try:
        assert await again.list() == [second, first]
        with pytest.raises(RateLimited):  # the count is read from disk
            await again.add(reporter=ALICE, world_id=WORLD, reason="three")
        third = await again.add(reporter=BOB, world_id=WORLD, reason="three")
        assert third.id == second.id + 1
    finally:
        await again.aclose()


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_rows"):
        ReportsStore(tmp_path / REPORTS_DB, max_rows=0)
