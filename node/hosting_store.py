"""Hosting claims and challenge marks on disk (SQLite WAL, `hosting.db` in the data dir).

What a restart must not forget: which peers failed our retrieval challenges (else a node that
lost its data counts as a holder again, and our own doubts vanish from our hosting record) and
which passed. One row per peer, bounded like `HostingTable` (MAX_PEERS); a row that no longer
decodes is dropped on load. Writes are batched: `Hosting` stores what changed once per round.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from fluxnode.core.replication import ClaimState
from fluxnode.node.hosting_wire import HostingRecordInvalid, decode_claim_state, encode_claim_state
from fluxnode.node.statefile import SqliteFile

log = logging.getLogger("fluxnode.node.hosting")

HOSTING_DB = "hosting.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    peer  TEXT PRIMARY KEY,
    state BLOB NOT NULL
);
"""


def _load(db: sqlite3.Connection) -> list[tuple[str, bytes]]:
    return [(str(p), bytes(s)) for p, s in db.execute("SELECT peer, state FROM claims")]


def _save(db: sqlite3.Connection, rows: list[tuple[str, bytes]], removed: list[str]) -> None:
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT OR REPLACE INTO claims (peer, state) VALUES (?, ?)", rows)
        db.executemany("DELETE FROM claims WHERE peer = ?", [(p,) for p in removed])


class HostingStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = SqliteFile(path, _SCHEMA)

    async def load(self) -> list[ClaimState]:
        """Every stored claim state that still decodes; the others are deleted."""
        states, bad = [], []
        for peer, data in await self._file.run(_load, "read"):
            try:
                state = decode_claim_state(data)
            except HostingRecordInvalid as exc:
                log.warning("dropping a stored hosting claim of %s: %s", peer, exc)
                bad.append(peer)
                continue
            if state.record.peer_id != peer:
                bad.append(peer)
                continue
            states.append(state)
        if bad:
            await self.save([], bad)
        return states

    async def save(self, changed: list[ClaimState], removed: list[str]) -> None:
        if changed or removed:
            rows = [(s.record.peer_id, encode_claim_state(s)) for s in changed]
            await self._file.run(lambda db: _save(db, rows, removed), "write")

    async def aclose(self) -> None:
        await self._file.aclose()
