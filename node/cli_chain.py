"""`flux-node chain ...`: a local Polygon devnet, deployment, index status and access checks.

Private keys are read from a file (`--key-file`, mode 0600) or the FLUX_DEPLOY_KEY environment
variable, never from argv, and never printed or logged.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from fluxnode.core.errors import BadRequest, ConfigError
from fluxnode.node.chain_setup import (
    DEPLOYMENT_FILE,
    ChainParts,
    deployment_path,
    open_chain,
)
from fluxnode.node.config import Config


def register(sub: Any) -> None:
    chain = sub.add_parser("chain", help="Polygon contracts, devnet and ownership checks")
    cmds = chain.add_subparsers(dest="chain_cmd", required=True)

    p = cmds.add_parser("devnet", help="run a local chain (anvil) with the Flux contracts deployed")
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--port", type=int, default=8545, help="RPC port on 127.0.0.1 (0 = any)")
    p.add_argument("--out", metavar="FILE", help=f"deployment file (default DIR/{DEPLOYMENT_FILE})")

    p = cmds.add_parser("deploy", help="deploy the Flux contracts to any chain")
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--rpc", required=True, metavar="URL")
    p.add_argument(
        "--key-file",
        metavar="FILE",
        help="deployer private key file (0600); or set FLUX_DEPLOY_KEY",
    )
    p.add_argument("--out", metavar="FILE", help=f"deployment file (default DIR/{DEPLOYMENT_FILE})")

    p = cmds.add_parser("status", help="index the configured chain once; show endpoints and lag")
    p.add_argument("--data-dir", metavar="DIR")

    p = cmds.add_parser("check", help="would this address be let into this world?")
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("world", metavar="WORLD_ID", help="land:<tokenId> or <0xaddress>/<slug>")
    p.add_argument("--address", help="the visitor's (signed-in) address")
    p.add_argument(
        "--visibility", default="ticketed", choices=["public", "private", "friends", "ticketed"]
    )
    p.add_argument("--allow", action="append", default=[], metavar="ADDRESS")


def _deployment_path(args: argparse.Namespace, cfg: Config) -> Path:
    return Path(args.out) if getattr(args, "out", None) else deployment_path(cfg)


def cmd_chain(args: argparse.Namespace, cfg: Config) -> int:
    if args.chain_cmd == "devnet":
        return _devnet(args, cfg)
    if args.chain_cmd == "deploy":
        return _deploy(args, cfg)
    if args.chain_cmd == "status":
        import asyncio  # only for the commands that need a loop

        return asyncio.run(_status(cfg))
    import asyncio  # only for the commands that need a loop

    return asyncio.run(_check(args, cfg))


def _devnet(args: argparse.Namespace, cfg: Config) -> int:
    from fluxnode.chain.anvil import start_anvil
    from fluxnode.chain.deploy import deploy_over_http

    if not 0 <= args.port <= 65535:
        raise ConfigError("--port", f"bad port {args.port}")
    out = _deployment_path(args, cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    # Blocks every second (not only per transaction) so confirmation depths advance as on Polygon.
    with start_anvil(args.port, chain_id=cfg.chain.chain_id, block_time=1.0) as anvil:
        deployment = deploy_over_http(anvil.rpc_url, record_url=True)
        deployment.write(out)
        print(
            json.dumps(
                {
                    "rpc_url": anvil.rpc_url,
                    "chain_id": deployment.chain_id,
                    "deployment": str(out),
                    **dict(deployment.addresses),
                }
            ),
            flush=True,
        )
        print(
            f"devnet ready: {anvil.rpc_url} (chain {deployment.chain_id}); contracts in {out}."
            " Ctrl-C stops it.",
            file=sys.stderr,
            flush=True,
        )
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        while not stop and anvil.running():
            time.sleep(0.2)
    return 0


def _deploy(args: argparse.Namespace, cfg: Config) -> int:
    from fluxnode.chain.deploy import deploy_over_http, load_private_key

    account = load_private_key(Path(args.key_file) if args.key_file else None)
    deployment = deploy_over_http(args.rpc, account)
    out = _deployment_path(args, cfg)
    deployment.write(out)
    print(json.dumps({"deployment": str(out), **deployment.to_dict()}))
    return 0


def _open(cfg: Config) -> ChainParts:
    parts = open_chain(cfg, required=True)
    assert parts is not None  # required=True raises instead of returning None
    return parts


async def _status(cfg: Config) -> int:
    from fluxnode.chain.indexer import Indexer

    parts = _open(cfg)
    pool, index = parts.pool, parts.index
    healthy = await pool.check_all()
    result = None
    if healthy:
        result = await Indexer(pool, index, confirmations=cfg.chain.confirmations).sync_once()
    print(
        json.dumps(
            {
                "endpoints": pool.statistics(),
                "last_indexed_block": index.last_block,
                "synced": None
                if result is None
                else {
                    "from": result.from_block,
                    "to": result.to_block,
                    "events": result.events,
                    "reorged_to": result.reorged_to,
                },
            },
            indent=2,
        )
    )
    await parts.aclose()
    return 0 if healthy else 1


async def _check(args: argparse.Namespace, cfg: Config) -> int:
    from fluxnode.core.access import AccessRule, WorldRef
    from fluxnode.core.world import Visibility

    world = WorldRef.parse(args.world)
    for addr in [*args.allow, *([args.address] if args.address else [])]:
        if not (isinstance(addr, str) and len(addr) == 42 and addr.startswith("0x")):
            raise BadRequest(f"not an address: {addr!r}")
    parts = _open(cfg)
    rule = AccessRule(Visibility(args.visibility), frozenset(a.lower() for a in args.allow))
    decision = await parts.oracle.check(world, rule, args.address)
    await parts.aclose()
    print(json.dumps({"allowed": decision.allowed, "reason": decision.reason}))
    return 0 if decision.allowed else 1
