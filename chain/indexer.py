"""Event indexer: follows the Flux contracts' events into a local SQLite cache.

Only blocks at least `confirmations` deep are indexed. Raw events are kept (block, log index)
and the derived tables (land owners and worlds, ERC-1155 balances, ticket types) are updated in
the same transaction as `last_block`, so a crash resumes exactly where it stopped.

Reorgs: the hash of every indexed block that carried events, and of the last block of each
batch, is stored. Before indexing further, the stored hash of `last_block` is compared with the
chain's; on a mismatch the indexer walks back over the stored hashes to the newest block the
chain still agrees with, deletes every event above it and rebuilds the derived tables from the
events that remain. The cache then equals a fresh index of the new chain.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from fluxnode.chain.rpc import RpcPool

log = logging.getLogger("fluxnode.chain.indexer")

ZERO = "0x" + "0" * 40
#: Blocks per eth_getLogs request (public Polygon RPCs cap ranges around 1,000-10,000).
BLOCK_RANGE = 2000


def _topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


TRANSFER = _topic("Transfer(address,address,uint256)")
TRANSFER_SINGLE = _topic("TransferSingle(address,address,address,uint256,uint256)")
TRANSFER_BATCH = _topic("TransferBatch(address,address,address,uint256[],uint256[])")
WORLD_SET = _topic("WorldSet(uint256,string,address)")
TICKET_TYPE = _topic("TicketTypeCreated(uint256,bytes32,address,uint64,uint256,uint32,bool)")
TOPICS = [TRANSFER, TRANSFER_SINGLE, TRANSFER_BATCH, WORLD_SET, TICKET_TYPE]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS block_hashes (number INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, contract TEXT NOT NULL,
    kind TEXT NOT NULL, args TEXT NOT NULL, PRIMARY KEY (block, log_index));
CREATE TABLE IF NOT EXISTS land (
    token TEXT PRIMARY KEY, owner TEXT NOT NULL, world_cid TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS balances (
    contract TEXT NOT NULL, holder TEXT NOT NULL, id TEXT NOT NULL, amount TEXT NOT NULL,
    PRIMARY KEY (contract, holder, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ticket_types (
    id TEXT PRIMARY KEY, world_key TEXT NOT NULL, owner TEXT NOT NULL,
    expires_at INTEGER NOT NULL, price TEXT NOT NULL, capacity INTEGER NOT NULL,
    transferable INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ticket_types_by_world ON ticket_types (world_key);
"""


@dataclass(frozen=True)
class Contracts:
    land: str
    items: str
    tickets: str

    def all(self) -> list[str]:
        return [self.land, self.items, self.tickets]


@dataclass(frozen=True)
class SyncResult:
    from_block: int
    to_block: int
    events: int
    reorged_to: int | None


def _addr(topic: str | bytes) -> str:
    raw = bytes.fromhex(topic[2:]) if isinstance(topic, str) else topic
    return to_checksum_address(raw[-20:]).lower()


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


def decode_log(entry: dict[str, Any], contracts: Contracts) -> tuple[str, dict[str, Any]] | None:
    """(kind, args) for a log we index, None for anything else."""
    topics = [_hex(t) for t in entry["topics"]]
    if not topics:
        return None
    contract = str(entry["address"]).lower()
    data = (
        bytes(entry["data"])
        if not isinstance(entry["data"], str)
        else bytes.fromhex(entry["data"][2:])
    )
    t0 = topics[0]
    if t0 == TRANSFER and contract == contracts.land.lower() and len(topics) == 4:
        return "transfer721", {
            "from": _addr(topics[1]),
            "to": _addr(topics[2]),
            "token": str(int(topics[3], 16)),
        }
    if t0 == TRANSFER_SINGLE and len(topics) == 4:
        token_id, value = abi_decode(["uint256", "uint256"], data)
        return "transfer1155", {
            "from": _addr(topics[2]),
            "to": _addr(topics[3]),
            "ids": [str(token_id)],
            "values": [str(value)],
        }
    if t0 == TRANSFER_BATCH and len(topics) == 4:
        ids, values = abi_decode(["uint256[]", "uint256[]"], data)
        return "transfer1155", {
            "from": _addr(topics[2]),
            "to": _addr(topics[3]),
            "ids": [str(i) for i in ids],
            "values": [str(v) for v in values],
        }
    if t0 == WORLD_SET and len(topics) == 3:
        (cid,) = abi_decode(["string"], data)
        return "world_set", {"token": str(int(topics[1], 16)), "cid": cid}
    if t0 == TICKET_TYPE and len(topics) == 4:
        expires, price, capacity, transferable = abi_decode(
            ["uint64", "uint256", "uint32", "bool"], data
        )
        return "ticket_type", {
            "id": str(int(topics[1], 16)),
            "world_key": topics[2],
            "owner": _addr(topics[3]),
            "expires_at": expires,
            "price": str(price),
            "capacity": capacity,
            "transferable": bool(transferable),
        }
    return None


class ChainIndex:
    """The SQLite cache. Queries are synchronous and fast (the warm path of access checks)."""

    def __init__(self, path: Path, contracts: Contracts, *, start_block: int = 0) -> None:
        self.path = path
        self.contracts = contracts
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        fingerprint = ",".join(c.lower() for c in contracts.all())
        stored = self._meta("contracts")
        if stored is None:
            self._set_meta("contracts", fingerprint)
            self._set_meta("last_block", str(start_block - 1))
        elif stored != fingerprint:
            raise ValueError(f"{path} indexes other contracts ({stored}); use a new file")

    def close(self) -> None:
        self._db.close()

    # -- meta ------------------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @property
    def last_block(self) -> int:
        return int(self._meta("last_block") or -1)

    @property
    def last_block_time(self) -> int:
        """Timestamp of the newest block `apply` indexed (0 before any): the chain's clock as
        the index knows it. Kept across a rewind: the larger time only expires tickets sooner."""
        return int(self._meta("last_block_time") or 0)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # -- writing ---------------------------------------------------------------------------------
    def apply(
        self,
        to_block: int,
        events: Sequence[tuple[int, int, str, str, dict[str, Any]]],
        hashes: dict[int, str],
        block_time: int | None = None,
    ) -> None:
        """Record events (block, log_index, contract, kind, args) up to `to_block` (whose
        timestamp is `block_time`) atomically."""
        with self._tx() as db:
            for block, index, contract, kind, args in events:
                db.execute(
                    "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?)",
                    (block, index, contract, kind, json.dumps(args)),
                )
                self._derive(db, contract, kind, args)
            db.executemany("INSERT OR REPLACE INTO block_hashes VALUES (?, ?)", hashes.items())
            self._set_meta("last_block", str(to_block))
            if block_time is not None and block_time > self.last_block_time:
                self._set_meta("last_block_time", str(block_time))

    def _derive(
        self, db: sqlite3.Connection, contract: str, kind: str, args: dict[str, Any]
    ) -> None:
        if kind == "transfer721":
            db.execute(
                "INSERT INTO land (token, owner) VALUES (?, ?) "
                "ON CONFLICT (token) DO UPDATE SET owner = excluded.owner",
                (args["token"], args["to"]),
            )
        elif kind == "world_set":
            db.execute(
                "UPDATE land SET world_cid = ? WHERE token = ?", (args["cid"], args["token"])
            )
        elif kind == "transfer1155":
            for token_id, value in zip(args["ids"], args["values"], strict=True):
                if args["from"] != ZERO:
                    self._add(db, contract, args["from"], token_id, -int(value))
                if args["to"] != ZERO:
                    self._add(db, contract, args["to"], token_id, int(value))
        elif kind == "ticket_type":
            db.execute(
                "INSERT OR REPLACE INTO ticket_types VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    args["id"],
                    args["world_key"],
                    args["owner"],
                    args["expires_at"],
                    args["price"],
                    args["capacity"],
                    int(args["transferable"]),
                ),
            )

    @staticmethod
    def _add(db: sqlite3.Connection, contract: str, holder: str, token_id: str, delta: int) -> None:
        row = db.execute(
            "SELECT amount FROM balances WHERE contract = ? AND holder = ? AND id = ?",
            (contract, holder, token_id),
        ).fetchone()
        amount = (int(row[0]) if row else 0) + delta
        db.execute(
            "INSERT OR REPLACE INTO balances VALUES (?, ?, ?, ?)",
            (contract, holder, token_id, str(amount)),
        )

    def rewind(self, to_block: int) -> None:
        """Forget everything above `to_block` and rebuild the derived tables from events."""
        with self._tx() as db:
            db.execute("DELETE FROM events WHERE block > ?", (to_block,))
            db.execute("DELETE FROM block_hashes WHERE number > ?", (to_block,))
            for table in ("land", "balances", "ticket_types"):
                db.execute(f"DELETE FROM {table}")
            rows = db.execute("SELECT contract, kind, args FROM events ORDER BY block, log_index")
            for contract, kind, args in rows.fetchall():
                self._derive(db, contract, kind, json.loads(args))
            self._set_meta("last_block", str(to_block))

    # -- reading ---------------------------------------------------------------------------------
    def stored_hashes(self, below_or_at: int) -> list[tuple[int, str]]:
        return [
            (int(n), str(h))
            for n, h in self._db.execute(
                "SELECT number, hash FROM block_hashes WHERE number <= ? ORDER BY number DESC",
                (below_or_at,),
            ).fetchall()
        ]

    def land(self, token: int) -> tuple[str, str] | None:
        row = self._db.execute(
            "SELECT owner, world_cid FROM land WHERE token = ?", (str(token),)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def balance(self, contract: str, holder: str, token_id: int) -> int:
        row = self._db.execute(
            "SELECT amount FROM balances WHERE contract = ? AND holder = ? AND id = ?",
            (contract.lower(), holder.lower(), str(token_id)),
        ).fetchone()
        return int(row[0]) if row else 0

    def valid_tickets(self, holder: str, world_key: str, at_time: int) -> list[int]:
        rows = self._db.execute(
            "SELECT t.id FROM ticket_types t JOIN balances b ON b.id = t.id "
            "AND b.contract = ? AND b.holder = ? "
            "WHERE t.world_key = ? AND t.expires_at > ? AND CAST(b.amount AS INTEGER) > 0",
            (self.contracts.tickets.lower(), holder.lower(), world_key.lower(), at_time),
        ).fetchall()
        return sorted(int(r[0]) for r in rows)

    def snapshot(self) -> dict[str, Any]:
        """Every derived row, for comparing two indexes (tests, `chain status`)."""
        return {
            table: sorted(tuple(r) for r in self._db.execute(f"SELECT * FROM {table}"))
            for table in ("land", "balances", "ticket_types")
        }


class Indexer:
    """Drives a `ChainIndex` from the chain through an `RpcPool`."""

    def __init__(self, pool: RpcPool, index: ChainIndex, *, confirmations: int) -> None:
        self.pool = pool
        self.index = index
        self.confirmations = confirmations

    async def _hash_at(self, number: int) -> str:
        return (await self._block_at(number))[0]

    async def _block_at(self, number: int) -> tuple[str, int]:
        block = await self.pool.call(lambda w3: w3.eth.get_block(number))
        return _hex(block["hash"]), int(block["timestamp"])

    async def _check_reorg(self) -> int | None:
        last = self.index.last_block
        stored = self.index.stored_hashes(last)
        if not stored:
            return None
        newest_number, newest_hash = stored[0]
        if await self._hash_at(newest_number) == newest_hash:
            return None
        for number, known in stored[1:]:
            if await self._hash_at(number) == known:
                log.warning(
                    "reorg: chain no longer has block %d; rewinding to %d", newest_number, number
                )
                self.index.rewind(number)
                return number
        floor = (stored[-1][0] - 1) if stored else -1
        log.warning("reorg below every stored hash; re-indexing from block %d", floor + 1)
        self.index.rewind(floor)
        return floor

    async def sync_once(self, *, max_blocks: int = 50_000) -> SyncResult:
        """Index confirmed blocks after `last_block` (at most `max_blocks` of them)."""
        reorged = await self._check_reorg()
        head = int(await self.pool.call(lambda w3: w3.eth.block_number))
        target = min(head - self.confirmations, self.index.last_block + max_blocks)
        start = self.index.last_block + 1
        total = 0
        frm = start
        while frm <= target:
            to = min(target, frm + BLOCK_RANGE - 1)
            flt = {
                "fromBlock": frm,
                "toBlock": to,
                "address": self.index.contracts.all(),
                "topics": [TOPICS],
            }
            logs = await self.pool.call(_get_logs(flt))
            events = []
            hashes: dict[int, str] = {}
            for entry in logs:
                decoded = decode_log(entry, self.index.contracts)
                if decoded is None:
                    continue
                kind, args = decoded
                number = int(entry["blockNumber"])
                events.append(
                    (number, int(entry["logIndex"]), str(entry["address"]).lower(), kind, args)
                )
                hashes[number] = _hex(entry["blockHash"])
            hashes[to], block_time = await self._block_at(to)
            self.index.apply(to, events, hashes, block_time)
            total += len(events)
            frm = to + 1
        return SyncResult(start, max(start - 1, target), total, reorged)


def _get_logs(flt: dict[str, Any]) -> Callable[[Any], Awaitable[Any]]:
    async def run(w3: Any) -> Any:
        return await w3.eth.get_logs(flt)

    return run
