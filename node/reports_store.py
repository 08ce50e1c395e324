"""Visitors' reports ("this visitor in this world did that"), kept for the node's operator.

SQLite (WAL, `reports.db` in the data dir), one connection used on its own worker thread
(`SqliteFile`), so the event loop never waits on the file. A report is stored once every field
passed its check (`check_report`: BadRequest naming the field otherwise, nothing stored), and
the store stays bounded two ways, both decided in the same transaction as the insert so two
reports arriving together cannot both slip past a bound:

- at most `max_rows` reports: adding one past it deletes the oldest;
- at most `per_reporter` reports per reporter address in any `window_s` (default 20 an hour):
  one more raises RateLimited (429) and stores nothing. The count is read from the stored rows,
  so a restart does not reset it.

Reports are what visitors typed: the text is bounded (MAX_REASON_CHARS) and may hold no control
characters, line or paragraph separators, or bidirectional overrides, so it prints as one
honest line in `flux-node reports`.
"""

from __future__ import annotations

import builtins
import re
import sqlite3
import time
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from fluxnode.core.access import canonical_world_id
from fluxnode.core.errors import BadRequest, RateLimited
from fluxnode.core.session.instances import MAX_ID_CHARS
from fluxnode.node.statefile import SqliteFile

__all__ = [
    "DEFAULT_PER_REPORTER",
    "MAX_LIST",
    "MAX_REASON_CHARS",
    "REPORTS_DB",
    "Report",
    "ReportsStore",
    "check_report",
]

REPORTS_DB: Final = "reports.db"
MAX_REASON_CHARS: Final = 1000
MAX_LIST: Final = 1000
DEFAULT_PER_REPORTER: Final = 20
DEFAULT_WINDOW_S: Final = 3600.0

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
#: Instance ids are printable ASCII (derived ones are 16 hex digits).
_INSTANCE = re.compile(rf"[!-~]{{1,{MAX_ID_CHARS}}}")
#: Bidirectional embeddings, overrides and isolates: they reorder how the rest of a line shows.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    reporter    TEXT NOT NULL,
    world_id    TEXT NOT NULL,
    subject     TEXT,
    reason      TEXT NOT NULL,
    instance_id TEXT
);
CREATE INDEX IF NOT EXISTS reports_by_reporter ON reports (reporter, received_at);
CREATE INDEX IF NOT EXISTS reports_by_world ON reports (world_id, id);
"""


@dataclass(frozen=True)
class Report:
    id: int
    #: Unix seconds at which this node stored it.
    received_at: float
    #: Lower-case 0x address of the visitor who filed it.
    reporter: str
    world_id: str
    #: Lower-case 0x address of the visitor reported, or None (the world itself, say).
    subject: str | None
    reason: str
    instance_id: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _address(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise BadRequest(f"{what} must be a 0x address (0x + 40 hex digits)")
    return value.lower()


def _reason(value: object) -> str:
    if not isinstance(value, str):
        raise BadRequest("reason must be a string")
    text = value.strip()
    if not text:
        raise BadRequest("reason must not be empty")
    if len(text) > MAX_REASON_CHARS:
        raise BadRequest(f"reason has {len(text)} characters, over {MAX_REASON_CHARS}")
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI:
            raise BadRequest(f"reason holds a control character (U+{ord(ch):04X})")
    return text


def check_report(
    *,
    reporter: object,
    world_id: object,
    reason: object,
    subject: object = None,
    instance_id: object = None,
) -> tuple[str, str, str | None, str, str | None]:
    """The fields of a report, checked and canonical: (reporter, world_id, subject, reason,
    instance_id). Raises BadRequest naming the first bad field."""
    who = _address(reporter, "reporter")
    try:
        world = canonical_world_id(world_id)
    except BadRequest as exc:
        raise BadRequest(f"world: {exc}") from None
    about = None if subject is None else _address(subject, "subject")
    text = _reason(reason)
    if instance_id is not None and not (
        isinstance(instance_id, str) and _INSTANCE.fullmatch(instance_id)
    ):
        raise BadRequest(f"instance must be 1..{MAX_ID_CHARS} printable ASCII characters")
    return who, world, about, text, instance_id


def _row(row: tuple[Any, ...]) -> Report:
    return Report(int(row[0]), float(row[1]), row[2], row[3], row[4], row[5], row[6])


_COLUMNS = "id, received_at, reporter, world_id, subject, reason, instance_id"


class ReportsStore:
    """See the module docstring. `clock` (unix seconds) is injectable for tests."""

    def __init__(
        self,
        path: Path,
        *,
        max_rows: int = 10_000,
        per_reporter: int = DEFAULT_PER_REPORTER,
        window_s: float = DEFAULT_WINDOW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_rows < 1 or per_reporter < 1 or not window_s > 0:
            raise ValueError("max_rows and per_reporter must be >= 1, window_s > 0")
        self.path = path
        self.max_rows = max_rows
        self.per_reporter = per_reporter
        self.window_s = window_s
        self._clock = clock
        self._file = SqliteFile(path, _SCHEMA)
        self.added = 0
        self.rate_limited = 0

    async def add(
        self,
        *,
        reporter: str,
        world_id: str,
        reason: str,
        subject: str | None = None,
        instance_id: str | None = None,
    ) -> Report:
        """Store one report; BadRequest for a bad field, RateLimited past the reporter's rate.
        Either way nothing is stored."""
        who, world, about, text, instance = check_report(
            reporter=reporter,
            world_id=world_id,
            reason=reason,
            subject=subject,
            instance_id=instance_id,
        )
        now = self._clock()
        row = (now, who, world, about, text, instance)

        def insert(db: sqlite3.Connection) -> int | None:
            with db:
                db.execute("BEGIN IMMEDIATE")
                (recent,) = db.execute(
                    "SELECT COUNT(*) FROM reports WHERE reporter = ? AND received_at > ?",
                    (who, now - self.window_s),
                ).fetchone()
                if recent >= self.per_reporter:
                    return None
                cur = db.execute(
                    "INSERT INTO reports (received_at, reporter, world_id, subject, reason, "
                    "instance_id) VALUES (?, ?, ?, ?, ?, ?)",
                    row,
                )
                new_id = int(cur.lastrowid or 0)
                # Exact whatever the ids: everything older than the newest `max_rows`.
                db.execute(
                    "DELETE FROM reports WHERE id <= "
                    "(SELECT id FROM reports ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (self.max_rows,),
                )
                return new_id

        new_id = await self._file.run(insert, "store a report in")
        if new_id is None:
            self.rate_limited += 1
            hours = self.window_s / 3600
            raise RateLimited(
                f"{who} filed {self.per_reporter} reports in the last {hours:g} h; try later"
            )
        self.added += 1
        return Report(new_id, *row)

    async def list(
        self, world_id: str | None = None, since: float | None = None, limit: int = 100
    ) -> builtins.list[Report]:
        """Stored reports, newest first: of one world, received at or after `since`, at most
        `limit` (1..MAX_LIST). BadRequest for a bad world id or limit."""
        if type(limit) is not int or not 1 <= limit <= MAX_LIST:
            raise BadRequest(f"limit must be an integer in 1..{MAX_LIST}")
        where: builtins.list[str] = []
        args: builtins.list[object] = []
        if world_id is not None:
            try:
                where.append("world_id = ?")
                args.append(canonical_world_id(world_id))
            except BadRequest as exc:
                raise BadRequest(f"world: {exc}") from None
        if since is not None:
            where.append("received_at >= ?")
            args.append(float(since))
        sql = f"SELECT {_COLUMNS} FROM reports"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)

        def select(db: sqlite3.Connection) -> builtins.list[Report]:
            return [_row(r) for r in db.execute(sql, args)]

        return await self._file.run(select, "read reports from")

    async def count(self) -> int:
        def n(db: sqlite3.Connection) -> int:
            return int(db.execute("SELECT COUNT(*) FROM reports").fetchone()[0])

        return await self._file.run(n, "count reports in")

    async def aclose(self) -> None:
        await self._file.aclose()
