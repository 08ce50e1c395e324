"""The `flux-node` command as an operator runs it: real processes, real files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NodeFactory, clean_env, run_cli, snapshot

pytestmark = pytest.mark.slow


def test_version_and_python_dash_m() -> None:
    out = run_cli("version")
    assert out.returncode == 0 and out.stdout.startswith("flux-node ")
    mod = subprocess.run(
        [sys.executable, "-m", "fluxnode", "version"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd="/",
        timeout=60,
    )
    assert mod.returncode == 0 and mod.stdout == out.stdout


def test_init_creates_private_key_and_commented_config_and_is_idempotent(tmp_path: Path) -> None:
    d = tmp_path / "node"
    first = run_cli("init", "--data-dir", str(d))
    assert first.returncode == 0, first.stderr
    key = d / "identity.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert "[network]" in (d / "config.toml").read_text()
    peer_id = json.loads(first.stdout)["peer_id"]
    assert peer_id.startswith("12D3KooW")
    key_bytes = key.read_bytes()

    again = run_cli("init", "--data-dir", str(d))
    assert again.returncode == 0
    assert json.loads(again.stdout) == {**json.loads(first.stdout), "created_key": False}
    assert key.read_bytes() == key_bytes  # never overwritten

    ident = run_cli("id", "--data-dir", str(d))
    assert json.loads(ident.stdout) == {"peer_id": peer_id, "addrs": []}


def test_peer_id_is_stable_across_restarts(nodes: NodeFactory) -> None:
    a = nodes.start("a")
    first = a.wait_ready()["peer_id"]
    a.terminate()
    b = nodes.start("a")  # same data dir
    assert b.wait_ready()["peer_id"] == first
    live = json.loads(run_cli("id", "--data-dir", str(b.data_dir)).stdout)
    assert live["peer_id"] == first and live["addrs"] == b.info["addrs"]
    b.terminate()
    assert not (b.data_dir / "node.json").exists()


def test_run_without_init_initialises_on_the_fly(nodes: NodeFactory) -> None:
    a = nodes.start("fresh")
    info = a.wait_ready()
    assert set(info) == {"peer_id", "addrs", "gateway_url", "pid"}
    assert info["pid"] == a.pid and info["gateway_url"] is None
    assert (a.data_dir / "identity.key").exists()
    a.terminate()


def test_second_node_on_same_data_dir_is_refused(nodes: NodeFactory) -> None:
    a = nodes.start("a")
    a.wait_ready()
    b = nodes.start("a")
    assert b.proc.wait(30) == 1
    assert "another node" in b.log() and str(a.pid) in b.log()
    assert a.proc.poll() is None  # the first one is untouched
    a.terminate()


def test_status_without_a_running_node_says_so(tmp_path: Path) -> None:
    run_cli("init", "--data-dir", str(tmp_path / "n"))
    out = run_cli("status", "--data-dir", str(tmp_path / "n"))
    assert out.returncode == 1
    assert "no node is running" in out.stderr and "Traceback" not in out.stderr


def _initialised(tmp_path: Path) -> Path:
    d = tmp_path / "node"
    assert run_cli("init", "--data-dir", str(d)).returncode == 0
    return d


BAD_FLAGS = [
    (["--listen", "/ip4/127.0.0.1/tcp/70000"], "network.listen", "--listen"),
    (["--listen", "not-a-multiaddr"], "network.listen", "--listen"),
    (["--bootstrap", "/ip4/127.0.0.1/tcp/1"], "network.bootstrap", "--bootstrap"),
    (["--gateway", "127.0.0.1:http"], "gateway.listen", "--gateway"),
    (["--gateway", "127.0.0.1:65536"], "gateway.listen", "--gateway"),
]


@pytest.mark.parametrize(("flags", "key", "flag"), BAD_FLAGS)
def test_bad_flags_exit_2_naming_the_key_and_write_nothing(
    tmp_path: Path, flags: list[str], key: str, flag: str
) -> None:
    d = _initialised(tmp_path)
    before = snapshot(d)
    out = run_cli("run", "--data-dir", str(d), *flags)
    assert out.returncode == 2, out.stderr
    assert key in out.stderr and flag in out.stderr and "Traceback" not in out.stderr
    assert snapshot(d) == before


def test_bad_flags_on_a_missing_data_dir_create_nothing(tmp_path: Path) -> None:
    d = tmp_path / "never"
    out = run_cli("run", "--data-dir", str(d), "--listen", "/ip4/127.0.0.1/tcp/99999")
    assert out.returncode == 2
    assert not d.exists()


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[network]\nlisen = []\n", "network.lisen"),
        ("[gatway]\n", "gatway"),
        ('[network]\nlisten = ["/ip4/127.0.0.1/tcp/-1"]\n', "network.listen"),
        ('[gateway]\nlisten = "127.0.0.1:99999"\n', "gateway.listen"),
    ],
)
def test_bad_config_file_exits_2_naming_key_and_file(tmp_path: Path, toml: str, key: str) -> None:
    d = _initialised(tmp_path)
    (d / "config.toml").write_text(toml)
    before = snapshot(d)
    out = run_cli("run", "--data-dir", str(d))
    assert out.returncode == 2, out.stderr
    assert key in out.stderr and str(d / "config.toml") in out.stderr
    assert snapshot(d) == before


def test_bad_env_var_exits_2(tmp_path: Path) -> None:
    d = _initialised(tmp_path)
    before = snapshot(d)
    out = run_cli("run", "--data-dir", str(d), env=clean_env(FLUX_LISTEN="/ip4/x/tcp/1"))
    assert out.returncode == 2 and "FLUX_LISTEN" in out.stderr
    assert snapshot(d) == before


def test_world_readable_key_is_refused(tmp_path: Path) -> None:
    d = _initialised(tmp_path)
    os.chmod(d / "identity.key", 0o644)
    before = snapshot(d)
    for cmd in ("run", "id"):
        out = run_cli(cmd, "--data-dir", str(d))
        assert out.returncode == 2
        assert "readable by other users" in out.stderr and str(d / "identity.key") in out.stderr
    assert snapshot(d) == before


@pytest.mark.parametrize("kind", ["garbage", "directory", "missing", "huge"])
def test_unusable_key_file_exits_2_naming_the_file(tmp_path: Path, kind: str) -> None:
    d = _initialised(tmp_path)
    key = d / "other.key"
    if kind == "garbage":
        key.write_bytes(b"\x08\x01\x12\x05hello")
        key.chmod(0o600)
    elif kind == "directory":
        key.mkdir(mode=0o700)
    elif kind == "huge":
        key.write_bytes(b"\0" * 10_000)
        key.chmod(0o600)
    before = snapshot(d)
    out = run_cli("run", "--data-dir", str(d), "--key-file", "other.key")
    assert out.returncode == 2, out.stderr
    assert str(key) in out.stderr and "Traceback" not in out.stderr
    assert snapshot(d) == before
