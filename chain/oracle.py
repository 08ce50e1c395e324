"""The ownership oracle: chain facts for access decisions, from the local index when it is
fresh (no RPC), otherwise from one batched JSON-RPC round trip at a confirmed block.

Answers come only from blocks at least `confirmations` below the head. The head is kept by
`refresh_head()` (the node runs it in the background with the indexer), so a cold check costs
exactly one round trip: `eth_call`s for the land owner and the visitor's valid tickets, batched.
If no endpoint answers, the facts are unknown and `core.access.decide` denies (fail closed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from fluxnode.chain.indexer import ChainIndex, Contracts
from fluxnode.chain.rpc import ChainCallFailed, ChainUnavailable, RpcPool
from fluxnode.core.access import AccessRule, ChainFacts, Decision, WorldRef, decide, needs_chain

log = logging.getLogger("fluxnode.chain.oracle")


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


OWNER_OF = _selector("ownerOf(uint256)")
WORLD_OF = _selector("worldOf(uint256)")
VALID_TICKETS_OF = _selector("validTicketsOf(address,bytes32)")
GET_APPROVED = _selector("getApproved(uint256)")
IS_APPROVED_FOR_ALL = _selector("isApprovedForAll(address,address)")


def world_key(world_id: str) -> str:
    """How FluxTickets names a world: keccak256 of the canonical world id's UTF-8 bytes
    (`land:<id>`, or `<lower-case 0x address>/<slug>`; see FluxTickets.landWorldKey)."""
    return "0x" + keccak(text=world_id).hex()


NOBODY = "0x" + "0" * 40


def _decode(abi_type: str, raw: bytes, block: int) -> Any:
    """Decode one return value; an empty or malformed answer (e.g. the contract has no code at
    that block yet) is a failed call, which the access decision treats as unknown."""
    try:
        return abi_decode([abi_type], raw)[0]
    except Exception as exc:
        raise ChainCallFailed(
            f"unexpected answer at block {block} ({len(raw)} bytes): {type(exc).__name__}"
        ) from None


@dataclass
class OracleStats:
    warm: int = 0
    cold: int = 0
    round_trips: int = 0
    unavailable: int = 0


class Oracle:
    def __init__(
        self,
        pool: RpcPool,
        contracts: Contracts,
        *,
        confirmations: int,
        index: ChainIndex | None = None,
        max_index_lag: int = 2,
        quorum: int = 1,
        head_max_age_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.pool = pool
        self.contracts = contracts
        self.confirmations = confirmations
        self.index = index
        self.max_index_lag = max_index_lag
        #: Endpoints that must return identical answers for a cold check (1 = first answer).
        self.quorum = quorum
        self.head_max_age_s = head_max_age_s
        self._clock = clock
        self._wall = wall_clock
        self._head: int | None = None
        self._head_at = 0.0
        self.stats = OracleStats()

    async def refresh_head(self) -> int:
        head = int(await self.pool.call(lambda w3: w3.eth.block_number))
        self.stats.round_trips += 1
        self._head, self._head_at = head, self._clock()
        return head

    def _fresh_head(self) -> int | None:
        if self._head is None or self._clock() - self._head_at > self.head_max_age_s:
            return None
        return self._head

    async def confirmed_block(self) -> int:
        head = self._fresh_head()
        if head is None:
            head = await self.refresh_head()
        return max(0, head - self.confirmations)

    # -- facts -------------------------------------------------------------------------------
    async def facts(
        self, world: WorldRef, rule: AccessRule, visitor: str | None
    ) -> ChainFacts | None:
        need_owner, need_ticket = needs_chain(world, rule)
        need_ticket = need_ticket and visitor is not None
        if not (need_owner or need_ticket):
            return ChainFacts()
        warm = self._from_index(world, visitor, need_owner, need_ticket)
        if warm is not None:
            self.stats.warm += 1
            return warm
        try:
            facts = await self._from_chain(world, visitor, need_owner, need_ticket)
        except (ChainUnavailable, ChainCallFailed) as exc:
            self.stats.unavailable += 1
            log.warning("access check for %s: %s", world.world_id, exc)
            return None
        self.stats.cold += 1
        return facts

    def _index_fresh(self) -> bool:
        head = self._fresh_head()
        if self.index is None or head is None:
            return False
        return self.index.last_block >= head - self.confirmations - self.max_index_lag

    def _from_index(
        self, world: WorldRef, visitor: str | None, need_owner: bool, need_ticket: bool
    ) -> ChainFacts | None:
        if not self._index_fresh():
            return None
        assert self.index is not None
        owner = None
        if need_owner and world.land_token is not None:
            land = self.index.land(world.land_token)
            if land is None:
                return None  # not in the index (yet): ask the chain
            owner = land[0]
        has_ticket = None
        if need_ticket and visitor is not None:
            # A ticket is valid while block.timestamp < expiresAt: the chain's clock, which may
            # run ahead of ours (a time jump), decides; our wall clock only makes it stricter.
            now = max(int(self._wall()), self.index.last_block_time)
            has_ticket = bool(self.index.valid_tickets(visitor, world_key(world.canonical_id), now))
        return ChainFacts(land_owner=owner, has_valid_ticket=has_ticket)

    async def _from_chain(
        self, world: WorldRef, visitor: str | None, need_owner: bool, need_ticket: bool
    ) -> ChainFacts:
        block = await self.confirmed_block()
        calls: list[tuple[str, bytes]] = []
        if need_owner and world.land_token is not None:
            calls.append(
                (self.contracts.land, OWNER_OF + abi_encode(["uint256"], [world.land_token]))
            )
        if need_ticket and visitor is not None:
            key = bytes.fromhex(world_key(world.canonical_id)[2:])
            calls.append(
                (
                    self.contracts.tickets,
                    VALID_TICKETS_OF + abi_encode(["address", "bytes32"], [visitor, key]),
                )
            )
        results = await self._batch_call(calls, block)
        owner, has_ticket, i = None, None, 0
        if need_owner and world.land_token is not None:
            raw = results[i]
            i += 1
            # ownerOf reverts for a token that does not exist: nobody owns it.
            owner = NOBODY if raw is None else _decode("address", raw, block).lower()
        if need_ticket and visitor is not None:
            raw = results[i]
            has_ticket = raw is not None and bool(_decode("uint256[]", raw, block))
        return ChainFacts(land_owner=owner, has_valid_ticket=has_ticket)

    async def _batch_call(self, calls: list[tuple[str, bytes]], block: int) -> list[bytes | None]:
        """All `calls` in one JSON-RPC batch; a reverted call gives None."""

        async def run(w3: Any) -> list[bytes | None]:
            async with w3.batch_requests() as batch:
                for to, data in calls:
                    batch.add(
                        w3.eth.call(
                            {"to": w3.to_checksum_address(to), "data": data}, block_identifier=block
                        )
                    )
                responses = await batch.async_execute()
            out: list[bytes | None] = []
            for response in responses:
                out.append(None if isinstance(response, BaseException) else bytes(response))
            return out

        try:
            results = await self.pool.call_quorum(run, self.quorum)
        except ChainCallFailed:
            # A batch that fails as a whole (some providers do on one revert): one call each.
            results = [await self._single(to, data, block) for to, data in calls]
        self.stats.round_trips += 1
        return results

    async def _single(self, to: str, data: bytes, block: int) -> bytes | None:
        try:
            raw = await self.pool.call(
                lambda w3: w3.eth.call(
                    {"to": w3.to_checksum_address(to), "data": data}, block_identifier=block
                )
            )
        except ChainCallFailed:
            return None
        return bytes(raw)

    async def check(self, world: WorldRef, rule: AccessRule, visitor: str | None) -> Decision:
        return decide(world, rule, visitor, await self.facts(world, rule, visitor))

    async def land_owner_and_operator(self, token: int, signer: str) -> tuple[str, bool]:
        """(owner of land `token`, lower-case or NOBODY; may `signer` act for it) at a confirmed
        block, as FluxLand.setWorld decides: the owner, the token's approved address or an
        operator approved for all the owner's tokens. One batched round trip (ownerOf +
        getApproved); a second (isApprovedForAll) only when the signer is neither. Raises
        ChainUnavailable / ChainCallFailed: callers fail closed."""
        block = await self.confirmed_block()
        land, tok, who = self.contracts.land, abi_encode(["uint256"], [token]), signer.lower()
        raw_owner, raw_approved = await self._batch_call(
            [(land, OWNER_OF + tok), (land, GET_APPROVED + tok)], block
        )
        if raw_owner is None:
            return NOBODY, False  # ownerOf reverts: no such token
        owner = str(_decode("address", raw_owner, block)).lower()
        if who == owner:
            return owner, True
        if raw_approved is not None and str(_decode("address", raw_approved, block)).lower() == who:
            return owner, True
        raw = await self._single(
            land, IS_APPROVED_FOR_ALL + abi_encode(["address", "address"], [owner, who]), block
        )
        self.stats.round_trips += 1
        return owner, raw is not None and bool(_decode("bool", raw, block))

    async def world_of(self, token: int) -> str:
        block = await self.confirmed_block()
        raw = await self._single(
            self.contracts.land, WORLD_OF + abi_encode(["uint256"], [token]), block
        )
        return "" if raw is None else str(abi_decode(["string"], raw)[0])
