"""A running node on a chain: it follows the index in the background and checks land ownership
of published world records at a confirmed block."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, cast

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from fluxnode.chain.anvil import ANVIL_DEV_KEY_0, start_anvil
from fluxnode.chain.deploy import deploy_all
from fluxnode.contracts import load_artifact
from tests.conftest import NodeFactory, run_cli

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "hello-world"


def key_file(path: Path, account: Any) -> Path:
    path.write_text(account.key.hex())
    path.chmod(0o600)
    return path


def test_land_records_are_checked_on_chain_and_the_index_follows(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    owner, mallory = Account.create(), Account.create()
    with start_anvil() as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
        deployer = cast(LocalAccount, Account.from_key(ANVIL_DEV_KEY_0))
        deployment = deploy_all(w3, deployer, rpc_url=anvil.rpc_url)
        land = w3.eth.contract(
            address=cast(Any, deployment.addresses["FluxLand"]), abi=load_artifact("FluxLand").abi
        )
        tx = land.functions.mint(owner.address, 7).build_transaction(
            {"from": deployer.address, "nonce": w3.eth.get_transaction_count(deployer.address)}
        )
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction)
        )

        d = tmp_path / "node"
        d.mkdir()
        deployment.write(d / "deployment.json")
        (d / "config.toml").write_text(f'[chain]\nrpc = ["{anvil.rpc_url}"]\nconfirmations = 0\n')
        node = nodes.start("node")
        node.wait_ready()

        ok = run_cli(
            "publish",
            "--data-dir",
            str(d),
            str(EXAMPLE),
            "--land",
            "7",
            "--key-file",
            str(key_file(tmp_path / "owner.key", owner)),
        )
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["world_id"] == "land:7"

        bad = run_cli(
            "publish",
            "--data-dir",
            str(d),
            str(EXAMPLE),
            "--land",
            "7",
            "--key-file",
            str(key_file(tmp_path / "mallory.key", mallory)),
        )
        assert bad.returncode == 1
        assert "not_world_owner" in bad.stderr or "owner" in bad.stderr

        status: dict[str, Any] = {}
        for _ in range(50):
            status = json.loads(run_cli("status", "--data-dir", str(d)).stdout)
            if status.get("chain", {}).get("last_indexed_block", -1) >= deployment.deploy_block:
                break
            time.sleep(0.2)
        assert status["chain"]["last_indexed_block"] >= deployment.deploy_block
        assert status["chain"]["endpoints"][0]["state"] == "healthy"
        worlds = json.loads(run_cli("worlds", "--data-dir", str(d)).stdout)["worlds"]
        assert [w["world_id"] for w in worlds] == ["land:7"]
        assert worlds[0]["owner"].lower() == owner.address.lower()
        node.terminate()
