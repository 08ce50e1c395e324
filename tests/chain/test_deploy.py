"""The deploy library: Deployment records, deploy keys, and a deployment on anvil."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, cast

import pytest
from web3 import Web3

from fluxnode.chain.anvil import ANVIL_DEV_KEY_0, AnvilError, start_anvil
from fluxnode.chain.deploy import Deployment, KeyFileError, load_private_key
from fluxnode.contracts import load_artifact

from .conftest import CHAIN_ID

DEV0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ADDRS = {
    "FluxLand": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
    "FluxItems": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
    "FluxTickets": "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
}


def test_deployment_json_round_trip(tmp_path: Path) -> None:
    d = Deployment(chain_id=80002, rpc_url="http://127.0.0.1:8545", deploy_block=7, addresses=ADDRS)
    assert d.addresses["FluxLand"] == "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # checksummed
    with pytest.raises(TypeError):
        d.addresses["FluxLand"] = "0x0"  # type: ignore[index]
    assert Deployment.from_json(d.to_json()) == d
    path = tmp_path / "deployment.json"
    d.write(path)
    assert path.read_text() == d.to_json()
    assert json.loads(path.read_text())["addresses"]["FluxTickets"] == ADDRS["FluxTickets"]
    assert Deployment.read(path) == d
    d2 = Deployment(chain_id=137, rpc_url="", deploy_block=9, addresses=ADDRS)
    d2.write(path)  # replaces atomically, leaves no temp files
    assert Deployment.read(path) == d2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deployment.json"]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda o: o.pop("addresses"),
        lambda o: o["addresses"].pop("FluxItems"),
        lambda o: o["addresses"].update(Extra=DEV0),
        lambda o: o["addresses"].update(FluxLand="0x1234"),
        lambda o: o.update(chain_id="80002"),
        lambda o: o.update(chain_id=0),
        lambda o: o.update(deploy_block=-1),
        lambda o: o.update(deploy_block=True),
    ],
)
def test_deployment_rejects_malformed(mutate: object) -> None:
    obj = {"chain_id": 80002, "rpc_url": "", "deploy_block": 1, "addresses": dict(ADDRS)}
    mutate(obj)  # type: ignore[operator]
    with pytest.raises(ValueError):  # noqa: PT011
        Deployment.from_json(json.dumps(obj))


def test_load_private_key_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key_file = tmp_path / "deploy.key"
    key_file.write_text(ANVIL_DEV_KEY_0 + "\n")
    key_file.chmod(0o600)
    assert load_private_key(key_file).address == DEV0
    key_file.write_text(ANVIL_DEV_KEY_0[2:])  # without 0x
    assert load_private_key(key_file).address == DEV0
    for mode in (0o644, 0o640, 0o604, 0o660):
        key_file.chmod(mode)
        with pytest.raises(KeyFileError, match="too open"):
            load_private_key(key_file)
    key_file.chmod(0o600)
    key_file.write_text("not a key " + ANVIL_DEV_KEY_0[2:10])
    with pytest.raises(KeyFileError) as info:
        load_private_key(key_file)
    assert ANVIL_DEV_KEY_0[2:10] not in str(info.value)
    with pytest.raises(KeyFileError):
        load_private_key(tmp_path / "missing.key")
    link = tmp_path / "link.key"
    link.symlink_to(key_file)
    with pytest.raises(KeyFileError):
        load_private_key(link)
    with pytest.raises(KeyFileError):
        load_private_key(tmp_path)  # a directory
    key_hex = ANVIL_DEV_KEY_0[2:].lower()
    assert all(key_hex not in r.getMessage().lower() for r in caplog.records)


def test_load_private_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUX_DEPLOY_KEY", ANVIL_DEV_KEY_0)
    assert load_private_key(None).address == DEV0
    monkeypatch.setenv("OTHER_KEY", "0x" + "00" * 32)
    with pytest.raises(KeyFileError):  # zero is not a valid secp256k1 key
        load_private_key(None, env_var="OTHER_KEY")
    monkeypatch.delenv("FLUX_DEPLOY_KEY")
    with pytest.raises(KeyFileError, match="FLUX_DEPLOY_KEY"):
        load_private_key(None)


@pytest.mark.slow
def test_deploy_all_on_anvil(w3: Web3, deployment: Deployment) -> None:
    assert deployment.chain_id == CHAIN_ID
    assert deployment.rpc_url == w3.provider.endpoint_uri  # type: ignore[attr-defined]
    assert deployment.deploy_block >= 1
    code = {name: bytes(w3.eth.get_code(cast(Any, a))) for name, a in deployment.addresses.items()}
    for name in ("FluxLand", "FluxItems"):
        assert code[name] == bytes.fromhex(load_artifact(name).deployed_bytecode[2:])
    assert code["FluxTickets"]  # differs from the artifact by its immutable (FluxLand's address)
    tickets = w3.eth.contract(
        address=cast(Any, deployment.addresses["FluxTickets"]),
        abi=load_artifact("FluxTickets").abi,
    )
    assert tickets.functions.land().call() == deployment.addresses["FluxLand"]


@pytest.mark.slow
def test_anvil_process_lifecycle() -> None:
    with start_anvil(chain_id=31337, block_time=0.2) as anvil:
        assert anvil.running()
        assert anvil.rpc_url.startswith("http://127.0.0.1:")
        w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
        assert w3.eth.chain_id == 31337
        first = w3.eth.block_number
        time.sleep(0.5)
        assert w3.eth.block_number > first  # interval mining
        pid = anvil.pid
    assert not anvil.running()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "Listening on 127.0.0.1:" in anvil.output()
    anvil.stop()  # idempotent
    with pytest.raises(AnvilError):
        start_anvil(binary=Path("/nonexistent/anvil"))
