"""Chain fixtures: one anvil per session with the Flux contracts deployed once.

`anvil` starts anvil (npm `@foundry-rs/anvil-linux-amd64`, installed by scripts/setup-npm.sh) on
127.0.0.1, port 0, chain id 80002, and stops it by PID at the end of the session. `chain` gives a
test the deployed contracts, funded accounts and transaction helpers, inside an
`evm_snapshot`/`evm_revert` pair so every test starts from the same state.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError
from web3.types import TxReceipt

from fluxnode.chain.anvil import ANVIL_DEV_KEY_0, AnvilError, AnvilProcess, start_anvil
from fluxnode.chain.deploy import Deployment, deploy_all
from fluxnode.chain.rpc import RpcPool, RpcSettings
from fluxnode.contracts import load_artifact

CHAIN_ID = 80002
ETH = 10**18
# Test-only keys, derived from fixed labels (never funded anywhere but this anvil).
NAMES = ("alice", "bob", "carol", "mallory")


_open_pools: list[RpcPool] = []


def open_pool(settings: RpcSettings) -> RpcPool:
    """An RPC pool that is closed (with its HTTP sessions) when the test ends."""
    pool = RpcPool(settings)
    _open_pools.append(pool)
    return pool


@pytest.fixture(autouse=True)
async def _close_open_pools() -> AsyncIterator[None]:
    yield
    while _open_pools:
        await _open_pools.pop().aclose()


def _account(label: str) -> LocalAccount:
    return cast(LocalAccount, Account.from_key(keccak(text=f"flux-node tests/chain {label}")))


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    response = w3.provider.make_request(cast(Any, method), list(params))
    if "error" in response:
        raise RuntimeError(f"{method}: {response['error']}")
    return response["result"]


def error_selector(abi: list[dict[str, Any]], name: str) -> str:
    """0x-selector of custom error `name` in `abi` (raises if the ABI has no such error)."""
    for entry in abi:
        if entry.get("type") == "error" and entry["name"] == name:
            types = ",".join(i["type"] for i in entry["inputs"])
            return "0x" + keccak(text=f"{name}({types})")[:4].hex()
    raise KeyError(f"no error {name} in ABI")


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilProcess]:
    try:
        proc = start_anvil(chain_id=CHAIN_ID)
    except AnvilError as exc:
        pytest.fail(f"cannot start anvil (run scripts/setup-npm.sh): {exc}")
    with proc:
        yield proc


@pytest.fixture(scope="session")
def w3(anvil: AnvilProcess) -> Web3:
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url, cache_allowed_requests=True))
    assert w3.eth.chain_id == CHAIN_ID
    return w3


@pytest.fixture(scope="session")
def deployer() -> LocalAccount:
    return cast(LocalAccount, Account.from_key(ANVIL_DEV_KEY_0))  # anvil's public dev key #0


@pytest.fixture(scope="session")
def deployment(w3: Web3, deployer: LocalAccount) -> Deployment:
    deployment = deploy_all(w3, deployer)
    for name in NAMES:
        rpc(w3, "anvil_setBalance", _account(name).address, hex(100 * ETH))
    return deployment


@dataclass
class Chain:
    """What one test sees: web3, contracts, accounts and helpers."""

    w3: Web3
    deployment: Deployment
    deployer: LocalAccount
    alice: LocalAccount
    bob: LocalAccount
    carol: LocalAccount
    mallory: LocalAccount
    land: Contract
    items: Contract
    tickets: Contract

    def contract(self, name: str, address: str) -> Contract:
        abi = load_artifact(name).abi
        return cast(Contract, self.w3.eth.contract(address=cast(Any, address), abi=abi))

    def transact(self, call: Any, sender: LocalAccount, value: int = 0) -> TxReceipt:
        """Sign and send contract call `call` from `sender`; the receipt must show success."""
        tx = call.build_transaction(
            {
                "from": sender.address,
                "value": value,
                "nonce": self.w3.eth.get_transaction_count(sender.address),
            }
        )
        return self.send(tx, sender)

    def send(self, tx: Any, sender: LocalAccount) -> TxReceipt:
        signed = sender.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.02)
        assert receipt["status"] == 1, receipt
        return receipt

    def deploy(self, name: str, *args: Any) -> Contract:
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = self.transact(factory.constructor(*args), self.deployer)
        return self.contract(name, cast(str, receipt["contractAddress"]))

    @contextlib.contextmanager
    def reverts(self, contract: Contract, error: str) -> Iterator[None]:
        """The block must raise custom error `error` of `contract` (at gas estimation)."""
        selector = error_selector(cast(Any, contract.abi), error)
        with pytest.raises(ContractCustomError) as info:
            yield
        data = info.value.data
        assert isinstance(data, str), info.value
        assert data.startswith(selector), f"expected {error} ({selector}), got {data}"

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def mine_at(self, timestamp: int) -> None:
        """Mine one block with exactly `timestamp`."""
        rpc(self.w3, "anvil_setNextBlockTimestamp", timestamp)
        rpc(self.w3, "evm_mine")

    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(cast(Any, address)))


@pytest.fixture
def chain(w3: Web3, deployment: Deployment, deployer: LocalAccount) -> Iterator[Chain]:
    snapshot = rpc(w3, "evm_snapshot")
    try:

        def at(name: str) -> Contract:
            abi = load_artifact(name).abi
            address = cast(Any, deployment.addresses[name])
            return cast(Contract, w3.eth.contract(address=address, abi=abi))

        yield Chain(
            w3=w3,
            deployment=deployment,
            deployer=deployer,
            alice=_account("alice"),
            bob=_account("bob"),
            carol=_account("carol"),
            mallory=_account("mallory"),
            land=at("FluxLand"),
            items=at("FluxItems"),
            tickets=at("FluxTickets"),
        )
    finally:
        assert rpc(w3, "evm_revert", snapshot) is True
