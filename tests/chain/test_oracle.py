"""The indexer and the ownership oracle against real anvil processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from fluxnode.chain.anvil import ANVIL_DEV_KEY_0, AnvilProcess, start_anvil
from fluxnode.chain.deploy import Deployment, deploy_all
from fluxnode.chain.indexer import ChainIndex, Contracts, Indexer
from fluxnode.chain.oracle import Oracle
from fluxnode.chain.rpc import EndpointState, RpcPool, RpcSettings
from fluxnode.contracts import load_artifact
from fluxnode.core.access import CHAIN_UNAVAILABLE, AccessRule, WorldRef
from fluxnode.core.world import Visibility
from tests.chain.conftest import CHAIN_ID, ETH, Chain, open_pool, rpc

pytestmark = pytest.mark.slow

TICKETED = AccessRule(Visibility.TICKETED)
PRIVATE = AccessRule(Visibility.PRIVATE)
PUBLIC = AccessRule(Visibility.PUBLIC)


def contracts_of(d: Deployment) -> Contracts:
    return Contracts(d.addresses["FluxLand"], d.addresses["FluxItems"], d.addresses["FluxTickets"])


def pool_for(*urls: str, timeout: float = 2.0) -> RpcPool:
    return open_pool(
        RpcSettings(urls=tuple(urls), chain_id=CHAIN_ID, timeout_s=timeout, retry_after_s=30.0)
    )


def populate(c: Chain) -> dict[str, Any]:
    """Land 7 to alice (bound to a world), items and a ticket for bob."""
    c.transact(c.land.functions.mint(c.alice.address, 7), c.deployer)
    c.transact(c.land.functions.setWorld(7, "bafyworldcid"), c.alice)
    c.transact(c.items.functions.registerItem("ipfs://item", 500, 0), c.carol)
    c.transact(c.items.functions.mint(1, c.bob.address, 3), c.carol)
    expires = c.now() + 3600
    c.transact(c.tickets.functions.createLandTicketType(7, expires, ETH // 100, 10, True), c.alice)
    c.transact(c.tickets.functions.buy(1), c.bob, value=ETH // 100)
    return {"expires": expires}


def fresh_index(tmp_path: Path, name: str, d: Deployment) -> ChainIndex:
    return ChainIndex(tmp_path / f"{name}.db", contracts_of(d), start_block=d.deploy_block)


async def test_indexer_follows_transfers_worlds_items_and_tickets(
    chain: Chain, tmp_path: Path
) -> None:
    populate(chain)
    index = fresh_index(tmp_path, "a", chain.deployment)
    indexer = Indexer(pool_for(chain.deployment.rpc_url), index, confirmations=0)
    result = await indexer.sync_once()
    assert result.events == 5  # Transfer, WorldSet, 2x TransferSingle, TicketTypeCreated
    assert index.land(7) == (chain.alice.address.lower(), "bafyworldcid")
    assert index.balance(chain.deployment.addresses["FluxItems"], chain.bob.address, 1) == 3
    key = "0x" + chain.tickets.functions.landWorldKey(7).call().hex()
    assert index.valid_tickets(chain.bob.address, key, chain.now()) == [1]
    assert index.valid_tickets(chain.carol.address, key, chain.now()) == []

    # a ticket transfer moves validity; a land transfer moves ownership
    chain.transact(
        chain.tickets.functions.safeTransferFrom(chain.bob.address, chain.carol.address, 1, 1, b""),
        chain.bob,
    )
    chain.transact(
        chain.land.functions.transferFrom(chain.alice.address, chain.bob.address, 7), chain.alice
    )
    await indexer.sync_once()
    assert index.valid_tickets(chain.bob.address, key, chain.now()) == []
    assert index.valid_tickets(chain.carol.address, key, chain.now()) == [1]
    assert index.land(7) == (chain.bob.address.lower(), "bafyworldcid")

    # resumes after a restart with nothing new to do
    index.close()
    again = fresh_index(tmp_path, "a", chain.deployment)
    assert (
        await Indexer(pool_for(chain.deployment.rpc_url), again, confirmations=0).sync_once()
    ).events == 0
    assert again.land(7) == (chain.bob.address.lower(), "bafyworldcid")


async def test_confirmations_hold_back_recent_blocks(chain: Chain, tmp_path: Path) -> None:
    index = fresh_index(tmp_path, "c", chain.deployment)
    indexer = Indexer(pool_for(chain.deployment.rpc_url), index, confirmations=3)
    await indexer.sync_once()
    chain.transact(chain.land.functions.mint(chain.alice.address, 8), chain.deployer)
    await indexer.sync_once()
    assert index.land(8) is None  # only 0 blocks deep
    for _ in range(3):
        rpc(chain.w3, "evm_mine")
    await indexer.sync_once()
    assert index.land(8) == (chain.alice.address.lower(), "")


async def test_reorg_rewinds_to_equal_a_fresh_index(chain: Chain, tmp_path: Path) -> None:
    chain.transact(chain.land.functions.mint(chain.alice.address, 1), chain.deployer)
    fork = rpc(chain.w3, "evm_snapshot")
    chain.transact(chain.land.functions.mint(chain.bob.address, 2), chain.deployer)
    chain.transact(chain.land.functions.setWorld(2, "bafyold"), chain.bob)
    index = fresh_index(tmp_path, "r", chain.deployment)
    indexer = Indexer(pool_for(chain.deployment.rpc_url), index, confirmations=0)
    await indexer.sync_once()
    assert index.land(2) == (chain.bob.address.lower(), "bafyold")

    # Replace the last blocks with a different history that is longer than the old one.
    assert rpc(chain.w3, "evm_revert", fork)
    chain.transact(chain.land.functions.mint(chain.carol.address, 3), chain.deployer)
    for _ in range(4):
        rpc(chain.w3, "evm_mine")
    result = await indexer.sync_once()
    assert result.reorged_to is not None
    assert index.land(2) is None
    assert index.land(3) == (chain.carol.address.lower(), "")

    fresh = fresh_index(tmp_path, "fresh", chain.deployment)
    await Indexer(pool_for(chain.deployment.rpc_url), fresh, confirmations=0).sync_once()
    assert index.snapshot() == fresh.snapshot()


async def test_cold_check_is_one_round_trip_and_warm_checks_need_none(
    chain: Chain, tmp_path: Path
) -> None:
    populate(chain)
    pool = pool_for(chain.deployment.rpc_url)
    oracle = Oracle(
        pool, contracts_of(chain.deployment), confirmations=0, wall_clock=lambda: float(chain.now())
    )
    await oracle.refresh_head()
    land = WorldRef.parse("land:7")
    before = oracle.stats.round_trips
    decision = await oracle.check(land, TICKETED, chain.bob.address)
    assert decision.allowed, decision
    assert oracle.stats.round_trips - before == 1
    assert (await oracle.check(land, TICKETED, chain.carol.address)).reason == (
        "no valid ticket for this world"
    )
    assert (await oracle.check(land, PRIVATE, chain.alice.address)).reason == "world owner"
    assert not (
        await oracle.check(WorldRef.parse("land:999"), PRIVATE, chain.alice.address)
    ).allowed

    index = fresh_index(tmp_path, "w", chain.deployment)
    await Indexer(pool, index, confirmations=0).sync_once()
    warm = Oracle(
        pool,
        contracts_of(chain.deployment),
        confirmations=0,
        index=index,
        wall_clock=lambda: float(chain.now()),
    )
    await warm.refresh_head()
    calls_before = sum(ep.calls for ep in pool.endpoints)
    for _ in range(50):
        assert (await warm.check(land, TICKETED, chain.bob.address)).allowed
    assert sum(ep.calls for ep in pool.endpoints) == calls_before
    assert warm.stats.warm == 50


async def test_ticket_expiry_across_a_time_jump(chain: Chain) -> None:
    info = populate(chain)
    oracle = Oracle(
        pool_for(chain.deployment.rpc_url), contracts_of(chain.deployment), confirmations=0
    )
    land = WorldRef.parse("land:7")
    await oracle.refresh_head()
    assert (await oracle.check(land, TICKETED, chain.bob.address)).allowed
    chain.mine_at(info["expires"] + 1)
    await oracle.refresh_head()
    assert not (await oracle.check(land, TICKETED, chain.bob.address)).allowed


async def test_warm_ticket_check_follows_the_chain_clock_across_a_time_jump(
    chain: Chain, tmp_path: Path
) -> None:
    # The index answers from its tables, so its "now" must be the chain's: after a jump past a
    # ticket's expiry, the wall clock alone would still call it valid.
    info = populate(chain)
    pool = pool_for(chain.deployment.rpc_url)
    index = fresh_index(tmp_path, "jump", chain.deployment)
    indexer = Indexer(pool, index, confirmations=0)
    oracle = Oracle(pool, contracts_of(chain.deployment), confirmations=0, index=index)
    land = WorldRef.parse("land:7")
    await indexer.sync_once()
    await oracle.refresh_head()
    assert (await oracle.check(land, TICKETED, chain.bob.address)).allowed
    chain.mine_at(info["expires"] + 1)
    await indexer.sync_once()
    await oracle.refresh_head()
    warm_before = oracle.stats.warm
    assert (await oracle.check(land, TICKETED, chain.bob.address)).reason == (
        "no valid ticket for this world"
    )
    assert oracle.stats.warm == warm_before + 1
    assert index.last_block_time == info["expires"] + 1


@pytest.fixture
def twin_anvils() -> Iterator[list[AnvilProcess]]:
    """Two chains with identical state (same deployer, same transactions), plus a wrong one."""
    procs = [
        start_anvil(chain_id=CHAIN_ID),
        start_anvil(chain_id=CHAIN_ID),
        start_anvil(chain_id=1),
    ]
    try:
        yield procs
    finally:
        for p in procs:
            p.stop()


def _same_history(url: str) -> Deployment:
    w3 = Web3(Web3.HTTPProvider(url))
    deployer = cast(LocalAccount, Account.from_key(ANVIL_DEV_KEY_0))
    d = deploy_all(w3, deployer, rpc_url=url)
    land = w3.eth.contract(
        address=cast(Any, d.addresses["FluxLand"]), abi=load_artifact("FluxLand").abi
    )
    tx = land.functions.mint(deployer.address, 5).build_transaction(
        {"from": deployer.address, "nonce": w3.eth.get_transaction_count(deployer.address)}
    )
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction)
    )
    return d


async def test_failover_wrong_chain_and_fail_closed(twin_anvils: list[AnvilProcess]) -> None:
    a, b, wrong = twin_anvils
    da, db = _same_history(a.rpc_url), _same_history(b.rpc_url)
    assert da.addresses == db.addresses
    owner = Account.from_key(ANVIL_DEV_KEY_0).address
    pool = pool_for(wrong.rpc_url, a.rpc_url, b.rpc_url)
    healthy = await pool.check_all()
    assert [ep.url for ep in healthy] == [a.rpc_url, b.rpc_url]
    assert pool.endpoints[0].state is EndpointState.WRONG_CHAIN
    oracle = Oracle(pool, contracts_of(da), confirmations=0)
    land = WorldRef.parse("land:5")
    assert (await oracle.check(land, PRIVATE, owner)).allowed

    a.stop()  # mid-test: the next checks go to b
    for _ in range(3):
        assert (await oracle.check(land, PRIVATE, owner)).allowed
    assert pool.endpoints[1].state is EndpointState.DOWN

    b.stop()
    denied = await oracle.check(land, PRIVATE, owner)
    assert (denied.allowed, denied.reason) == (False, CHAIN_UNAVAILABLE)
    denied = await oracle.check(land, TICKETED, owner)
    assert (denied.allowed, denied.reason) == (False, CHAIN_UNAVAILABLE)
    assert (await oracle.check(land, PUBLIC, None)).allowed


async def test_quorum_needs_k_endpoints_to_agree(twin_anvils: list[AnvilProcess]) -> None:
    a, b, _wrong = twin_anvils
    da, _db = _same_history(a.rpc_url), _same_history(b.rpc_url)
    owner = Account.from_key(ANVIL_DEV_KEY_0).address
    pool = pool_for(a.rpc_url, b.rpc_url)
    await pool.check_all()
    oracle = Oracle(pool, contracts_of(da), confirmations=0, quorum=2)
    land = WorldRef.parse("land:5")
    assert (await oracle.check(land, PRIVATE, owner)).allowed

    # b's history diverges: land 5 moves to someone else there only. No 2 endpoints agree.
    w3b = Web3(Web3.HTTPProvider(b.rpc_url))
    deployer = cast(LocalAccount, Account.from_key(ANVIL_DEV_KEY_0))
    contract = w3b.eth.contract(
        address=cast(Any, da.addresses["FluxLand"]), abi=load_artifact("FluxLand").abi
    )
    tx = contract.functions.transferFrom(deployer.address, "0x" + "9" * 40, 5).build_transaction(
        {"from": deployer.address, "nonce": w3b.eth.get_transaction_count(deployer.address)}
    )
    w3b.eth.wait_for_transaction_receipt(
        w3b.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction)
    )
    rpc(Web3(Web3.HTTPProvider(a.rpc_url)), "evm_mine")  # same height, different histories
    await oracle.refresh_head()
    split = await oracle.check(land, PRIVATE, owner)
    assert (split.allowed, split.reason) == (False, CHAIN_UNAVAILABLE)
    # with quorum 1 the first endpoint (a) answers alone
    single = Oracle(pool, contracts_of(da), confirmations=0, quorum=1)
    assert (await single.check(land, PRIVATE, owner)).allowed
