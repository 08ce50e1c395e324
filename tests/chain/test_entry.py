"""Entry proofs, ban lists and the join decision against a real anvil.

A contract wallet (TestWallet1271, owned by alice) enters through EIP-1271; a land world's ban
list is checked against the land's owner at a confirmed block; and the oracle's facts for a
ticketed land world drive `decide_join` (a ticket holder enters, others are told why not).
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account.messages import encode_defunct
from web3 import AsyncHTTPProvider, AsyncWeb3

from fluxnode.chain.bans import sign_ban_list, verify_ban_list
from fluxnode.chain.entry import EntryVerifier
from fluxnode.chain.indexer import Contracts
from fluxnode.chain.oracle import Oracle
from fluxnode.chain.rpc import RpcPool, RpcSettings
from fluxnode.chain.siwe_verify import Is1271, eip1271_check, eip1271_checker
from fluxnode.core.access import WorldRef
from fluxnode.core.cid import Cid
from fluxnode.core.errors import BanListInvalid, EntryProofInvalid
from fluxnode.core.session.bans import BanList
from fluxnode.core.session.entry import EntryProof, build_entry_message
from fluxnode.core.session.join import (
    DENIED_BANNED,
    DENIED_CHAIN_UNAVAILABLE,
    DENIED_NO_TICKET,
    Admit,
    Deny,
    decide_join,
)
from fluxnode.core.world import Visibility
from fluxnode.core.world_record import UnsignedRecord
from tests.chain.conftest import CHAIN_ID, ETH, Chain

pytestmark = pytest.mark.slow

DOMAIN = "node.example"
URI = "https://node.example/session"
KEY = bytes(range(32))


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


_POOLS: list[RpcPool] = []


@pytest.fixture(autouse=True)
async def _close_pools() -> AsyncIterator[None]:
    yield
    while _POOLS:
        await _POOLS.pop().aclose()


def pool(url: str) -> RpcPool:
    p = RpcPool(RpcSettings(urls=(url,), chain_id=CHAIN_ID, timeout_s=2.0, retry_after_s=30.0))
    _POOLS.append(p)
    return p


def oracle_for(c: Chain, url: str | None = None) -> Oracle:
    d = c.deployment.addresses
    contracts = Contracts(d["FluxLand"], d["FluxItems"], d["FluxTickets"])
    return Oracle(pool(url or c.deployment.rpc_url), contracts, confirmations=0, head_max_age_s=0.0)


@pytest.fixture
async def aw3(chain: Chain) -> AsyncIterator[Any]:
    w3 = AsyncWeb3(AsyncHTTPProvider(chain.deployment.rpc_url))
    try:
        yield w3
    finally:
        await w3.provider.disconnect()


def entry_for(address: str, nonce: str, now: datetime) -> str:
    return build_entry_message(
        domain=DOMAIN,
        address=address,
        uri=URI,
        chain_id=CHAIN_ID,
        nonce=nonce,
        session_key=KEY,
        issued_at=now,
        lifetime=timedelta(hours=1),
    ).to_text()


async def refused(verifier: EntryVerifier, proof: EntryProof) -> str:
    with pytest.raises(EntryProofInvalid) as info:
        await verifier.admit(proof)
    return info.value.reason


async def test_contract_wallet_enters_through_eip1271(chain: Chain, aw3: Any) -> None:
    wallet = chain.deploy("TestWallet1271", chain.alice.address)
    now = datetime.now(UTC)

    async def is_valid_1271(address: str, message_hash: bytes, signature: bytes) -> bool:
        return await eip1271_check(aw3, address, message_hash, signature)

    verifier = EntryVerifier(
        domain=DOMAIN, chain_id=CHAIN_ID, is_valid_1271=is_valid_1271, clock=lambda: now
    )
    text = entry_for(wallet.address, verifier.issue_nonce(), now)
    # The wallet's owner signs the message's EIP-191 hash; the contract vouches for it.
    proof = EntryProof(text, bytes(chain.alice.sign_message(encode_defunct(text=text)).signature))
    claims = await verifier.admit(proof)
    assert (claims.address, claims.session_key) == (wallet.address, KEY)
    assert await refused(verifier, proof) == "nonce_reused"

    # Another node verifies the same proof (no nonce), through the same contract.
    member = EntryVerifier(
        domain=DOMAIN, chain_id=CHAIN_ID, is_valid_1271=is_valid_1271, clock=lambda: now
    )
    assert (await member.verify_relayed(proof, domain=DOMAIN)).address == wallet.address

    # Someone who is not the wallet's owner: the contract says no.
    text = entry_for(wallet.address, verifier.issue_nonce(), now)
    forged = EntryProof(
        text, bytes(chain.mallory.sign_message(encode_defunct(text=text)).signature)
    )
    assert await refused(verifier, forged) == "wrong_signer"


async def test_contract_wallet_with_the_chain_down_fails_closed(chain: Chain) -> None:
    wallet = chain.deploy("TestWallet1271", chain.alice.address)
    now = datetime.now(UTC)
    checker: Is1271 = eip1271_checker(pool(dead_url()).call)
    verifier = EntryVerifier(
        domain=DOMAIN, chain_id=CHAIN_ID, is_valid_1271=checker, clock=lambda: now
    )
    text = entry_for(wallet.address, verifier.issue_nonce(), now)
    proof = EntryProof(text, bytes(chain.alice.sign_message(encode_defunct(text=text)).signature))
    with pytest.raises(EntryProofInvalid) as info:
        await verifier.admit(proof)
    assert (info.value.reason, info.value.http_status) == ("chain_unavailable", 503)


async def test_land_ban_list_is_checked_on_chain(chain: Chain) -> None:
    chain.transact(chain.land.functions.mint(chain.alice.address, 7), chain.deployer)
    now = int(time.time())
    oracle = oracle_for(chain)
    kw: dict[str, Any] = {
        "world_id": "land:7",
        "seq": 1,
        "banned": [chain.bob.address],
        "issued_at": now,
    }
    good = sign_ban_list(account=chain.alice, **kw)
    await verify_ban_list(good, oracle=oracle, now=now)
    for acct, chain_oracle, expected in (
        (chain.mallory, oracle, "not_world_owner"),
        (chain.alice, oracle_for(chain, dead_url()), "chain_unavailable"),
    ):
        with pytest.raises(BanListInvalid) as info:
            await verify_ban_list(
                sign_ban_list(account=acct, **kw),
                oracle=chain_oracle,
                now=now,
            )
        assert info.value.reason == expected


async def test_ticketed_land_world_join_decisions(chain: Chain) -> None:
    c = chain
    c.transact(c.land.functions.mint(c.alice.address, 7), c.deployer)
    expires = c.now() + 3600
    c.transact(c.tickets.functions.createLandTicketType(7, expires, ETH // 100, 10, True), c.alice)
    c.transact(c.tickets.functions.buy(1), c.bob, value=ETH // 100)
    now = int(time.time())
    record = UnsignedRecord(
        world_id="land:7",
        cid=Cid.parse("bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"),
        seq=1,
        visibility=Visibility.TICKETED,
        access=(),
        owner=c.alice.address,
        issued_at=now,
    )
    ref, rule = WorldRef.parse("land:7"), record.access_rule()
    oracle = oracle_for(c)

    async def join(visitor: str, oracle: Oracle = oracle, bans: BanList | None = None) -> Any:
        facts = await oracle.facts(ref, rule, visitor)
        return decide_join(record, facts, visitor, bans, set(), now)

    assert await join(c.bob.address) == Admit("valid ticket")
    assert await join(c.alice.address) == Admit("world owner")
    assert await join(c.carol.address) == Deny(DENIED_NO_TICKET)
    assert await join(c.bob.address, oracle_for(c, dead_url())) == Deny(DENIED_CHAIN_UNAVAILABLE)
    bans = sign_ban_list(
        account=c.alice, world_id="land:7", seq=1, banned=[c.bob.address], issued_at=now
    )
    assert await join(c.bob.address, bans=bans) == Deny(DENIED_BANNED)
    # The ticket expires (a time jump on chain): refused with the reason.
    c.mine_at(expires + 1)
    assert await join(c.bob.address) == Deny(DENIED_NO_TICKET)
