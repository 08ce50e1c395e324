"""World records against a real anvil: land records are checked on chain at a confirmed block."""

from __future__ import annotations

import socket
import time

import pytest
from eth_account.signers.local import LocalAccount

from fluxnode.chain.indexer import Contracts
from fluxnode.chain.oracle import Oracle
from fluxnode.chain.records import sign_record, verify_record
from fluxnode.chain.rpc import RpcSettings
from fluxnode.core.record_book import RecordBook
from fluxnode.core.world_record import RecordInvalid, WorldRecord
from tests.chain.conftest import CHAIN_ID, Chain, open_pool

pytestmark = pytest.mark.slow

CID = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
TOKEN = 7


def oracle_for(c: Chain, *urls: str, confirmations: int = 0) -> Oracle:
    pool = open_pool(
        RpcSettings(
            urls=urls or (c.deployment.rpc_url,),
            chain_id=CHAIN_ID,
            timeout_s=2.0,
            retry_after_s=30.0,
        )
    )
    d = c.deployment.addresses
    contracts = Contracts(d["FluxLand"], d["FluxItems"], d["FluxTickets"])
    # head_max_age_s=0: every check reads the current head, so a transfer is seen at once.
    return Oracle(pool, contracts, confirmations=confirmations, head_max_age_s=0.0)


def land_record(acct: LocalAccount, seq: int = 1, token: int = TOKEN) -> WorldRecord:
    return sign_record(
        world_id=f"land:{token}",
        cid=CID,
        seq=seq,
        visibility="public",
        issued_at=int(time.time()),
        account=acct,
    )


async def reason(record: WorldRecord, oracle: Oracle | None) -> str:
    with pytest.raises(RecordInvalid) as info:
        await verify_record(record, oracle=oracle, now=int(time.time()))
    return info.value.reason


async def test_land_owner_record_accepted_others_rejected(chain: Chain) -> None:
    chain.transact(chain.land.functions.mint(chain.alice.address, TOKEN), chain.deployer)
    oracle = oracle_for(chain)
    book = RecordBook()
    record = land_record(chain.alice)
    await verify_record(record, oracle=oracle, now=int(time.time()))
    assert book.offer(record, int(time.time()), verified_owner=True).accepted
    assert oracle.stats.round_trips >= 1

    assert await reason(land_record(chain.mallory, seq=2), oracle) == "not_world_owner"
    # a land that was never minted has no owner
    assert await reason(land_record(chain.alice, token=999), oracle) == "not_world_owner"


async def test_approved_and_operator_may_sign(chain: Chain) -> None:
    chain.transact(chain.land.functions.mint(chain.alice.address, TOKEN), chain.deployer)
    oracle = oracle_for(chain)
    assert await reason(land_record(chain.bob), oracle) == "not_world_owner"
    assert await reason(land_record(chain.carol), oracle) == "not_world_owner"

    chain.transact(chain.land.functions.approve(chain.bob.address, TOKEN), chain.alice)
    await verify_record(land_record(chain.bob), oracle=oracle, now=int(time.time()))
    assert await oracle.land_owner_and_operator(TOKEN, chain.bob.address) == (
        chain.alice.address.lower(),
        True,
    )

    chain.transact(chain.land.functions.setApprovalForAll(chain.carol.address, True), chain.alice)
    await verify_record(land_record(chain.carol), oracle=oracle, now=int(time.time()))
    chain.transact(chain.land.functions.setApprovalForAll(chain.carol.address, False), chain.alice)
    assert await reason(land_record(chain.carol), oracle) == "not_world_owner"
    assert await reason(land_record(chain.mallory), oracle) == "not_world_owner"


async def test_after_transfer_old_owner_is_rejected(chain: Chain) -> None:
    chain.transact(chain.land.functions.mint(chain.alice.address, TOKEN), chain.deployer)
    oracle = oracle_for(chain)
    book = RecordBook()
    now = int(time.time())
    first = land_record(chain.alice, seq=1)
    await verify_record(first, oracle=oracle, now=now)
    assert book.offer(first, now, verified_owner=True).accepted

    chain.transact(
        chain.land.functions.transferFrom(chain.alice.address, chain.bob.address, TOKEN),
        chain.alice,
    )
    assert await reason(land_record(chain.alice, seq=2), oracle) == "not_world_owner"
    by_bob = land_record(chain.bob, seq=2)
    await verify_record(by_bob, oracle=oracle, now=now)
    assert book.offer(by_bob, now, verified_owner=True).accepted
    assert book.get(f"land:{TOKEN}") == by_bob


async def test_ownership_is_read_at_a_confirmed_block(chain: Chain) -> None:
    for _ in range(5):  # the contracts exist 5 blocks deep
        chain.mine_at(chain.now() + 1)
    chain.transact(chain.land.functions.mint(chain.alice.address, TOKEN), chain.deployer)
    # the mint is in the head block: 5 confirmations deep, the land does not exist yet
    oracle = oracle_for(chain, confirmations=5)
    assert await reason(land_record(chain.alice), oracle) == "not_world_owner"
    for _ in range(5):
        chain.mine_at(chain.now() + 1)
    await verify_record(land_record(chain.alice), oracle=oracle, now=int(time.time()))


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_chain_down_fails_closed(chain: Chain) -> None:
    chain.transact(chain.land.functions.mint(chain.alice.address, TOKEN), chain.deployer)
    down = oracle_for(chain, _closed_port_url())
    record = land_record(chain.alice)
    assert await reason(record, down) == "chain_unavailable"
    assert await reason(record, None) == "chain_unavailable"
    # personal worlds need no chain at all
    personal = sign_record(
        world_id=f"{chain.alice.address.lower()}/home",
        cid=CID,
        seq=1,
        visibility="public",
        issued_at=int(time.time()),
        account=chain.alice,
    )
    await verify_record(personal, oracle=down, now=int(time.time()))
