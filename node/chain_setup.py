"""Opening the configured chain once, for the daemon and the `chain` commands alike."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fluxnode.core.errors import ConfigError
from fluxnode.node.config import Config
from fluxnode.node.config_keys import KEYS_BY_NAME

if TYPE_CHECKING:  # web3 / eth-account are heavy imports: loaded only when a chain is used
    from fluxnode.chain.deploy import Deployment
    from fluxnode.chain.indexer import ChainIndex, Contracts
    from fluxnode.chain.oracle import Oracle
    from fluxnode.chain.rpc import RpcPool
    from fluxnode.node.loops import Loops

log = logging.getLogger("fluxnode.node.chain")

DEPLOYMENT_FILE = str(KEYS_BY_NAME["chain.deployment"].default)
CHAIN_DB = "chain.db"


@dataclass
class ChainParts:
    deployment: Deployment
    pool: RpcPool
    contracts: Contracts
    index: ChainIndex
    oracle: Oracle

    async def aclose(self) -> None:
        await self.pool.aclose()
        self.index.close()


def deployment_path(cfg: Config) -> Path:
    return cfg.chain.deployment


def load_deployment(cfg: Config, *, required: bool) -> Deployment | None:
    """The configured deployment, checked against the config; reads only (so a start can
    check it before writing anything). None if no chain is configured (unless `required`,
    which makes a missing deployment or endpoint a ConfigError)."""
    path = deployment_path(cfg)
    if not required and not cfg.chain.rpc and not path.exists():
        return None
    from fluxnode.chain.deploy import Deployment

    try:
        deployment = Deployment.read(path)
    except FileNotFoundError:
        raise ConfigError("chain.deployment", f"no deployment file at {path}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError("chain.deployment", f"cannot use {path}: {exc}") from None
    if deployment.chain_id != cfg.chain.chain_id:
        raise ConfigError(
            "chain.chain_id",
            f"is {cfg.chain.chain_id} but {path} is for chain {deployment.chain_id}",
        )
    if not cfg.chain.rpc and not deployment.rpc_url:
        if required:
            raise ConfigError("chain.rpc", "no RPC endpoint configured")
        return None
    return deployment


def open_chain(cfg: Config, *, required: bool) -> ChainParts | None:
    """The pool, index and oracle for the configured chain; None if no chain is configured
    (unless `required`, see `load_deployment`)."""
    deployment = load_deployment(cfg, required=required)
    if deployment is None:
        return None
    from fluxnode.chain.indexer import ChainIndex, Contracts
    from fluxnode.chain.oracle import Oracle
    from fluxnode.chain.rpc import RpcPool, RpcSettings

    urls = cfg.chain.rpc or (deployment.rpc_url,)
    pool = RpcPool(
        RpcSettings(urls=tuple(urls), chain_id=cfg.chain.chain_id, timeout_s=cfg.chain.timeout_s)
    )
    a = deployment.addresses
    contracts = Contracts(a["FluxLand"], a["FluxItems"], a["FluxTickets"])
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    index = ChainIndex(cfg.data_dir / CHAIN_DB, contracts, start_block=deployment.deploy_block)
    oracle = Oracle(
        pool, contracts, confirmations=cfg.chain.confirmations, index=index, quorum=cfg.chain.quorum
    )
    return ChainParts(deployment, pool, contracts, index, oracle)


async def follow_chain(
    parts: ChainParts, confirmations: int, loops: Loops, interval_s: float = 2.0
) -> None:
    """Keep the head fresh and the index synced, so access checks are answered warm. A failed
    round is counted in `loops` ("chain") and checks fall back to the chain, then deny."""
    from fluxnode.chain.indexer import Indexer

    indexer = Indexer(parts.pool, parts.index, confirmations=confirmations)

    async def step() -> None:
        await parts.oracle.refresh_head()
        result = await indexer.sync_once()
        if result.events or result.reorged_to is not None:
            log.info(
                "indexed blocks %d..%d: %d events%s",
                result.from_block,
                result.to_block,
                result.events,
                f", reorg back to {result.reorged_to}" if result.reorged_to else "",
            )

    await loops.run_forever("chain", step, interval_s)
