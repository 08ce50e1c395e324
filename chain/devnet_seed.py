"""Seed a fresh devnet chain: fund the dev wallets, mint a land parcel to the owner and sell a
ticket of it to the visitor, then let anvil mine a block every second.

For anvil devnets only: funding uses `anvil_setBalance` and the land is minted by anvil's public
dev account #0 (`ANVIL_DEV_KEY_0`), which deployed the contracts and so holds FluxLand's minter
role. Every transaction is signed here from a local key and must succeed, or `DevnetSeedError`
(a `DeployError`) says which one failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from fluxnode.chain.anvil import ANVIL_DEV_KEY_0
from fluxnode.chain.deploy import Deployment
from fluxnode.contracts import load_artifact
from fluxnode.core.errors import DeployError

__all__ = ["Seeded", "is_deployed", "seed_devnet"]

log = logging.getLogger(__name__)

ETH = 10**18
#: Balance each dev wallet gets: plenty for gas on a devnet, worthless anywhere else.
FUND_WEI = 100 * ETH
TICKET_LIFETIME_S = 365 * 86_400
TICKET_CAPACITY = 1_000


@dataclass(frozen=True)
class Seeded:
    """What `seed_devnet` created: the owner's land token, the ticket type the visitor holds,
    and the block by which all of it is mined (nodes must have indexed it)."""

    land_token: int
    ticket_id: int
    block: int


def _rpc(w3: Web3, method: str, *params: Any) -> Any:
    response = w3.provider.make_request(cast(Any, method), list(params))
    if "error" in response:
        raise DeployError(f"{method} failed: {response['error']}")
    return response["result"]


def _transact(w3: Web3, call: Any, sender: LocalAccount, what: str) -> int:
    tx = call.build_transaction(
        {"from": sender.address, "nonce": w3.eth.get_transaction_count(sender.address, "pending")}
    )
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)
    if receipt["status"] != 1:
        raise DeployError(f"{what} failed (tx 0x{bytes(tx_hash).hex()})")
    log.info("%s: block %d", what, receipt["blockNumber"])
    return int(receipt["blockNumber"])


def is_deployed(rpc_url: str, deployment: Deployment) -> bool:
    """Whether the chain at `rpc_url` has code at every address of `deployment` (a seeded
    devnet chain that is still running, as opposed to a fresh anvil)."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    return all(len(w3.eth.get_code(cast(Any, a))) > 0 for a in deployment.addresses.values())


def seed_devnet(
    rpc_url: str,
    deployment: Deployment,
    *,
    owner_key: bytes,
    visitor_key: bytes,
    extra_funded: tuple[str, ...] = (),
    land_token: int = 1,
    block_time_s: int = 1,
) -> Seeded:
    """Fund owner, visitor and `extra_funded` addresses; mint land `land_token` to the owner;
    the owner creates a free ticket type for "land:<land_token>" and the visitor buys one.
    Then switch anvil from mining per transaction to a block every `block_time_s` seconds, so
    the chain head keeps moving as on Polygon."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    deployer = cast(LocalAccount, Account.from_key(ANVIL_DEV_KEY_0))
    owner = cast(LocalAccount, Account.from_key(owner_key))
    visitor = cast(LocalAccount, Account.from_key(visitor_key))
    for address in (owner.address, visitor.address, *extra_funded):
        _rpc(w3, "anvil_setBalance", address, hex(FUND_WEI))

    def at(name: str) -> Any:
        address = cast(Any, deployment.addresses[name])
        return w3.eth.contract(address=address, abi=load_artifact(name).abi)

    land, tickets = at("FluxLand"), at("FluxTickets")
    _transact(w3, land.functions.mint(owner.address, land_token), deployer, "mint land")
    now = int(w3.eth.get_block("latest")["timestamp"])
    create = tickets.functions.createLandTicketType(
        land_token, now + TICKET_LIFETIME_S, 0, TICKET_CAPACITY, False
    )
    _transact(w3, create, owner, "create ticket type")
    ticket_id = int(tickets.functions.lastTicketId().call())
    block = _transact(w3, tickets.functions.buy(ticket_id), visitor, "buy ticket")
    _rpc(w3, "evm_setIntervalMining", block_time_s)
    return Seeded(land_token=land_token, ticket_id=ticket_id, block=block)
