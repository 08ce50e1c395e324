"""Chain benchmark: warm access checks/s, cold check latency and RPC round trips, and indexer
catch-up over 10,000 transfer events, each against a reference measured in the same run.

    .venv/bin/python bench/bench_chain.py [--events 10000] [--checks 20000]

References: a bare SQLite primary-key lookup loop (warm checks), one eth_blockNumber round trip
(cold check latency), and fetching the same logs with eth_getLogs alone (indexer catch-up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from eth_abi.abi import encode
from eth_account import Account
from eth_utils.crypto import keccak
from web3 import Web3

from fluxnode.chain.anvil import ANVIL_DEV_KEY_0, start_anvil
from fluxnode.chain.deploy import deploy_all
from fluxnode.chain.indexer import TOPICS, ChainIndex, Contracts, Indexer
from fluxnode.chain.oracle import Oracle
from fluxnode.chain.rpc import RpcPool, RpcSettings
from fluxnode.contracts import load_artifact
from fluxnode.core.access import AccessRule, WorldRef
from fluxnode.core.world import Visibility


def rpc_batch(url: str, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    body = json.dumps(
        [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    ).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        out = json.loads(resp.read())
    errors = [r for r in out if "error" in r]
    assert not errors, errors[:3]
    return [r["result"] for r in sorted(out, key=lambda r: r["id"])]


def main(n_events: int, n_checks: int) -> None:
    with start_anvil() as anvil, tempfile.TemporaryDirectory() as tmp:
        url = anvil.rpc_url
        w3 = Web3(Web3.HTTPProvider(url))
        deployer = Account.from_key(ANVIL_DEV_KEY_0)
        d = deploy_all(w3, deployer, rpc_url=url)
        a = d.addresses
        land = w3.eth.contract(address=a["FluxLand"], abi=load_artifact("FluxLand").abi)
        tickets = w3.eth.contract(address=a["FluxTickets"], abi=load_artifact("FluxTickets").abi)
        items = w3.eth.contract(address=a["FluxItems"], abi=load_artifact("FluxItems").abi)

        def send(call: Any, value: int = 0) -> None:
            tx = call.build_transaction(
                {
                    "from": deployer.address,
                    "value": value,
                    "nonce": w3.eth.get_transaction_count(deployer.address),
                }
            )
            w3.eth.wait_for_transaction_receipt(
                w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction)
            )

        send(land.functions.mint(deployer.address, 1))
        send(tickets.functions.createLandTicketType(1, 2**40, 0, 1000, True))
        send(tickets.functions.buy(1))
        send(items.functions.registerItem("ipfs://bench", 0, 0))

        # n_events ERC-1155 mints (one TransferSingle each), sent as unsigned transactions from
        # anvil's unlocked dev account in JSON-RPC batches, mined 500 to a block.
        selector = keccak(text="mint(uint256,address,uint256)")[:4]
        rpc_batch(url, [("evm_setAutomine", [False])])
        nonce = w3.eth.get_transaction_count(deployer.address)
        for start in range(0, n_events, 500):
            calls = []
            for i in range(start, min(n_events, start + 500)):
                to = "0x" + (i + 1).to_bytes(20, "big").hex()
                data = (
                    "0x" + (selector + encode(["uint256", "address", "uint256"], [1, to, 1])).hex()
                )
                calls.append(
                    (
                        "eth_sendTransaction",
                        [
                            {
                                "from": deployer.address,
                                "to": a["FluxItems"],
                                "data": data,
                                "gas": hex(120_000),
                                "nonce": hex(nonce + i),
                            }
                        ],
                    )
                )
            rpc_batch(url, calls)
            # Mine until the pool is empty (anvil's pool and blocks hold only so many).
            while int(rpc_batch(url, [("txpool_status", [])])[0]["pending"], 16):
                rpc_batch(url, [("evm_mine", [])])
        rpc_batch(url, [("evm_setAutomine", [True])])
        head = w3.eth.block_number

        contracts = Contracts(a["FluxLand"], a["FluxItems"], a["FluxTickets"])
        # reference: the same logs, fetched only
        t = time.perf_counter()
        logs = 0
        for frm in range(d.deploy_block, head + 1, 2000):
            logs += len(
                w3.eth.get_logs(
                    {
                        "fromBlock": frm,
                        "toBlock": min(head, frm + 1999),
                        "address": contracts.all(),
                        "topics": [TOPICS],
                    }
                )
            )
        ref_logs = time.perf_counter() - t

        async def run() -> None:
            pool = RpcPool(RpcSettings(urls=(url,), chain_id=d.chain_id))
            index = ChainIndex(Path(tmp) / "chain.db", contracts, start_block=d.deploy_block)
            t = time.perf_counter()
            result = await Indexer(pool, index, confirmations=0).sync_once(max_blocks=10**9)
            catch_up = time.perf_counter() - t
            print(
                f"indexer catch-up: {result.events} events in {catch_up:.2f} s "
                f"({result.events / catch_up:,.0f} events/s); eth_getLogs alone "
                f"{logs / ref_logs:,.0f} logs/s -> ratio {ref_logs / catch_up:.2f}x"
            )

            world = WorldRef.parse("land:1")
            rule = AccessRule(Visibility.TICKETED)
            oracle = Oracle(pool, contracts, confirmations=0, index=index)
            await oracle.refresh_head()
            t = time.perf_counter()
            for _ in range(n_checks):
                await oracle.check(world, rule, deployer.address)
            warm = n_checks / (time.perf_counter() - t)
            assert oracle.stats.warm == n_checks
            db = sqlite3.connect(Path(tmp) / "chain.db")
            t = time.perf_counter()
            for _ in range(n_checks):
                db.execute("SELECT owner FROM land WHERE token = ?", ("1",)).fetchone()
            ref_lookup = n_checks / (time.perf_counter() - t)
            print(
                f"warm checks: {warm:,.0f}/s (goal >= 10,000); bare SQLite lookup "
                f"{ref_lookup:,.0f}/s -> ratio {warm / ref_lookup:.2f}x"
            )

            cold = Oracle(pool, contracts, confirmations=0)
            await cold.refresh_head()
            lat, trips = [], []
            for _ in range(200):
                before = cold.stats.round_trips
                t = time.perf_counter()
                decision = await cold.check(world, rule, deployer.address)
                lat.append(time.perf_counter() - t)
                trips.append(cold.stats.round_trips - before)
                assert decision.allowed
            ref = []
            for _ in range(200):
                t = time.perf_counter()
                await pool.call(lambda w3a: w3a.eth.block_number)
                ref.append(time.perf_counter() - t)
            p50, ref50 = statistics.median(lat), statistics.median(ref)
            print(
                f"cold check: p50 {p50 * 1000:.2f} ms, p99 "
                f"{sorted(lat)[int(0.99 * len(lat))] * 1000:.2f} ms, round trips per check "
                f"{max(trips)} (goal 1); one eth_blockNumber {ref50 * 1000:.2f} ms -> "
                f"ratio {p50 / ref50:.2f}x"
            )

        asyncio.run(run())
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--checks", type=int, default=20_000)
    args = ap.parse_args()
    main(args.events, args.checks)
