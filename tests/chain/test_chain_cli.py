"""`flux-node chain devnet|status|check|deploy` as an operator runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fluxnode.chain.anvil import ANVIL_DEV_KEY_0, start_anvil
from tests.conftest import FLUX, clean_env, run_cli

pytestmark = pytest.mark.slow


def test_devnet_status_check_and_clean_stop(tmp_path: Path) -> None:
    d = tmp_path / "node"
    proc = subprocess.Popen(
        [FLUX, "chain", "devnet", "--data-dir", str(d), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["chain_id"] == 80002
        assert info["rpc_url"].startswith("http://127.0.0.1:")
        deployment = json.loads((d / "deployment.json").read_text())
        assert deployment["addresses"]["FluxLand"] == info["FluxLand"]
        time.sleep(3)  # let a few blocks pass the confirmation depth
        status = run_cli("chain", "status", "--data-dir", str(d))
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["endpoints"][0]["state"] == "healthy"
        check = run_cli(
            "chain",
            "check",
            "--data-dir",
            str(d),
            "land:1",
            "--visibility",
            "private",
            "--address",
            "0x" + "1" * 40,
        )
        assert check.returncode == 1
        assert json.loads(check.stdout)["allowed"] is False
        public = run_cli("chain", "check", "--data-dir", str(d), "land:1", "--visibility", "public")
        assert json.loads(public.stdout) == {"allowed": True, "reason": "public world"}
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(15) == 0
    # the anvil it started is gone too
    rpc = info["rpc_url"]
    unreachable = run_cli(
        "chain",
        "check",
        "--data-dir",
        str(d),
        "land:1",
        "--visibility",
        "ticketed",
        "--address",
        "0x" + "1" * 40,
    )
    assert json.loads(unreachable.stdout)["reason"] == "chain unavailable", rpc


def test_deploy_reads_the_key_from_a_private_file_only(tmp_path: Path) -> None:
    key = tmp_path / "deployer.key"
    key.write_text(ANVIL_DEV_KEY_0 + "\n")
    with start_anvil() as anvil:
        key.chmod(0o644)
        loose = run_cli(
            "chain",
            "deploy",
            "--data-dir",
            str(tmp_path / "n"),
            "--rpc",
            anvil.rpc_url,
            "--key-file",
            str(key),
        )
        assert loose.returncode == 2  # a key readable by others is refused before any use
        assert ANVIL_DEV_KEY_0[2:] not in loose.stderr + loose.stdout
        key.chmod(0o600)
        out = tmp_path / "amoy.json"
        ok = run_cli(
            "chain",
            "deploy",
            "--data-dir",
            str(tmp_path / "n"),
            "--rpc",
            anvil.rpc_url,
            "--key-file",
            str(key),
            "--out",
            str(out),
        )
        assert ok.returncode == 0, ok.stderr
        assert ANVIL_DEV_KEY_0[2:] not in ok.stderr + ok.stdout
        assert set(json.loads(out.read_text())["addresses"]) == {
            "FluxLand",
            "FluxItems",
            "FluxTickets",
        }
