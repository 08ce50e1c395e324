"""Deploy the Flux contracts (FluxLand, FluxItems, FluxTickets) and record where they are.

`deploy_all(w3, deployer)` sends the three creation transactions from `deployer` (a local
eth-account key: signed here, sent raw, gas estimated by the node) and waits for their receipts;
it returns a `Deployment`, which `write()` stores atomically as JSON for nodes to read
(`Deployment.read()` / `from_json()`).

The deployer key never comes from argv: `load_private_key(path)` reads it from a file that only
its owner may read (like ssh, group/other permission bits are refused), or from the environment
variable FLUX_DEPLOY_KEY. Nothing here logs or prints a key. Anvil's public dev key
(`fluxnode.chain.anvil.ANVIL_DEV_KEY_0`) is for tests and devnets only.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_address, to_checksum_address
from web3 import Web3
from web3.types import Nonce
from web3.utils.address import get_create_address

from fluxnode.atomicfile import atomic_write, read_regular_file
from fluxnode.chain.keys import read_key_secret
from fluxnode.contracts import CONTRACT_NAMES, load_artifact
from fluxnode.core.errors import DeployError as DeployError  # re-exported
from fluxnode.core.errors import KeyFileError as KeyFileError

__all__ = [
    "DEPLOY_KEY_ENV",
    "DeployError",
    "Deployment",
    "KeyFileError",
    "deploy_all",
    "load_private_key",
]

log = logging.getLogger(__name__)

DEPLOY_KEY_ENV = "FLUX_DEPLOY_KEY"
MAX_DEPLOYMENT_BYTES = 1 << 20


@dataclass(frozen=True)
class Deployment:
    """Where the Flux contracts live on one chain.

    `addresses` maps each name of `fluxnode.contracts.CONTRACT_NAMES` to its checksummed address
    (read-only); `deploy_block` is the first block holding any of them (where indexers start).
    """

    chain_id: int
    rpc_url: str
    deploy_block: int
    addresses: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.chain_id, int) or isinstance(self.chain_id, bool):
            raise ValueError(f"chain_id must be an int, got {self.chain_id!r}")
        if self.chain_id <= 0:
            raise ValueError(f"bad chain_id {self.chain_id}")
        if not isinstance(self.rpc_url, str):
            raise ValueError("rpc_url must be a string")
        if not isinstance(self.deploy_block, int) or isinstance(self.deploy_block, bool):
            raise ValueError(f"deploy_block must be an int, got {self.deploy_block!r}")
        if self.deploy_block < 0:
            raise ValueError(f"bad deploy_block {self.deploy_block}")
        if set(self.addresses) != set(CONTRACT_NAMES):
            raise ValueError(f"addresses must name exactly {', '.join(CONTRACT_NAMES)}")
        checked: dict[str, str] = {}
        for name in CONTRACT_NAMES:
            address = self.addresses[name]
            if not isinstance(address, str) or not is_address(address):
                raise ValueError(f"bad address for {name}: {address!r}")
            checked[name] = to_checksum_address(address)
        object.__setattr__(self, "addresses", MappingProxyType(checked))

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "rpc_url": self.rpc_url,
            "deploy_block": self.deploy_block,
            "addresses": {name: self.addresses[name] for name in CONTRACT_NAMES},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Deployment:
        """Parse `to_json()` output; raises ValueError on anything malformed."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("deployment JSON must be an object")
        missing = {"chain_id", "rpc_url", "deploy_block", "addresses"} - set(data)
        if missing:
            raise ValueError(f"deployment JSON lacks {', '.join(sorted(missing))}")
        addresses = data["addresses"]
        if not isinstance(addresses, dict):
            raise ValueError("deployment JSON: addresses must be an object")
        return cls(
            chain_id=data["chain_id"],
            rpc_url=data["rpc_url"],
            deploy_block=data["deploy_block"],
            addresses=addresses,
        )

    @classmethod
    def read(cls, path: Path) -> Deployment:
        """Read a deployment file; a non-regular or oversized one is refused (UnsafeFile)."""
        return cls.from_json(read_regular_file(Path(path), MAX_DEPLOYMENT_BYTES))

    def write(self, path: Path) -> None:
        """Write `to_json()` to `path` atomically (see `fluxnode.atomicfile`)."""
        atomic_write(Path(path), self.to_json().encode("utf-8"), 0o644)


def load_private_key(path: Path | None, env_var: str = DEPLOY_KEY_ENV) -> LocalAccount:
    """The deployer account from key file `path`, or else from environment variable `env_var`.

    The file holds one hex private key (optional 0x, surrounding whitespace ignored). Like ssh,
    it is refused unless it is a regular file owned by the current user (or root) with no
    group/other permission bits (chmod 600); see `fluxnode.chain.keys.read_key_secret`. Never
    pass keys on the command line: argv is visible to every local user. Errors never include
    key material.
    """
    secret, source = read_key_secret(path, env_var)
    try:
        account = cast(LocalAccount, Account.from_key(secret))
    except Exception:
        raise KeyFileError(f"{source} does not hold a valid secp256k1 private key") from None
    log.info("deploy key loaded from %s (address %s)", source, account.address)
    return account


def deploy_all(
    w3: Web3,
    deployer: LocalAccount,
    *,
    rpc_url: str | None = None,
    receipt_timeout: float = 120.0,
) -> Deployment:
    """Deploy FluxLand, FluxItems and FluxTickets from `deployer`; wait for all receipts.

    The three transactions go out back to back (consecutive nonces from the pending count; the
    FluxTickets constructor gets FluxLand's predicted address), each with gas estimated by the
    node and EIP-1559 fees from web3's defaults; then every receipt must show success, the
    predicted address and code there. `deployer` becomes FluxLand's admin
    and minter. `rpc_url` is recorded in the Deployment as given; by default the provider's
    endpoint URI if it is on loopback (a devnet), else "" — remote RPC URLs often embed API keys,
    which must not end up in a file nodes share. Raises DeployError if anything fails.
    """
    chain_id = w3.eth.chain_id
    nonce = w3.eth.get_transaction_count(deployer.address, "pending")
    # CREATE addresses follow from (sender, nonce): FluxTickets takes FluxLand's address before
    # FluxLand is mined, and every receipt is checked against its prediction below.
    expected = {
        name: get_create_address(deployer.address, Nonce(nonce + offset))
        for offset, name in enumerate(CONTRACT_NAMES)
    }
    args: dict[str, tuple[Any, ...]] = {"FluxTickets": (expected["FluxLand"],)}
    sent: dict[str, bytes] = {}
    for offset, name in enumerate(CONTRACT_NAMES):
        artifact = load_artifact(name)
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx = factory.constructor(*args.get(name, ())).build_transaction(
            {"from": deployer.address, "nonce": nonce + offset, "chainId": chain_id}
        )
        signed = deployer.sign_transaction(cast(Any, tx))
        sent[name] = bytes(w3.eth.send_raw_transaction(signed.raw_transaction))
        log.info("deploying %s: tx 0x%s", name, sent[name].hex())

    addresses: dict[str, str] = {}
    blocks: list[int] = []
    for name, tx_hash in sent.items():
        receipt = w3.eth.wait_for_transaction_receipt(
            cast(Any, tx_hash), timeout=receipt_timeout, poll_latency=0.05
        )
        address = receipt.get("contractAddress")
        if receipt["status"] != 1 or not address:
            raise DeployError(f"{name} deployment failed (tx 0x{tx_hash.hex()})")
        if to_checksum_address(address) != expected[name]:
            raise DeployError(
                f"{name} landed at {address}, not {expected[name]}: was another transaction "
                f"from {deployer.address} sent at the same time?"
            )
        if len(w3.eth.get_code(address)) == 0:
            raise DeployError(f"{name} deployment left no code at {address}")
        addresses[name] = to_checksum_address(address)
        blocks.append(int(receipt["blockNumber"]))
        log.info("deployed %s at %s (block %d)", name, address, receipt["blockNumber"])

    if rpc_url is None:
        rpc_url = _loopback_endpoint(w3)
    return Deployment(
        chain_id=chain_id, rpc_url=rpc_url, deploy_block=min(blocks), addresses=addresses
    )


def _loopback_endpoint(w3: Web3) -> str:
    uri = str(getattr(w3.provider, "endpoint_uri", "") or "")
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname in (
        "127.0.0.1",
        "localhost",
        "::1",
    ):
        return uri
    return ""


def deploy_over_http(
    rpc_url: str,
    deployer: LocalAccount | None = None,
    *,
    request_timeout_s: float = 60.0,
    record_url: bool = False,
) -> Deployment:
    """`deploy_all` over an HTTP JSON-RPC endpoint, so callers outside chain/ never build a
    Web3 themselves. `deployer` defaults to anvil's first public dev account (devnets only);
    `record_url` keeps `rpc_url` in the Deployment (a devnet's loopback URL is safe to share)."""
    from eth_account import Account
    from web3 import Web3

    from fluxnode.chain.anvil import ANVIL_DEV_KEY_0

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": request_timeout_s}))
    account = deployer if deployer is not None else Account.from_key(ANVIL_DEV_KEY_0)
    return deploy_all(w3, account, rpc_url=rpc_url if record_url else None)
