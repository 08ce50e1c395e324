"""Start-up order of `flux-node init|run|id`, in-process: a start that exits 2 has written
nothing (no data dir, key, config, lock, block store), and no traceback reaches the user."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fluxnode.node.cli import EXIT_OK, EXIT_USAGE, main
from tests.conftest import snapshot


@pytest.fixture(autouse=True)
def no_flux_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("FLUX_")]:
        monkeypatch.delenv(var)


def initialised(tmp_path: Path) -> Path:
    d = tmp_path / "node"
    assert main(["init", "--data-dir", str(d)]) == EXIT_OK
    return d


def assert_refused(
    capsys: pytest.CaptureFixture[str], d: Path, argv: list[str], *needles: str
) -> str:
    before = snapshot(d)
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    assert snapshot(d) == before, "a refused start wrote to the data dir"
    return err


@pytest.mark.parametrize("value", ['"infGiB"', '"1e400"'])
def test_run_with_an_infinite_quota_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    d = initialised(tmp_path)
    (d / "config.toml").write_text(f"[storage]\nmax_size = {value}\n")
    assert_refused(capsys, d, ["run", "--data-dir", str(d)], "storage.max_size")


def test_run_with_an_infinite_quota_from_env_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = initialised(tmp_path)
    monkeypatch.setenv("FLUX_STORAGE_MAX_SIZE", "inf")
    assert_refused(capsys, d, ["run", "--data-dir", str(d)], "FLUX_STORAGE_MAX_SIZE")


def test_bad_denylist_creates_no_lock_and_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = initialised(tmp_path)
    (d / "config.toml").write_text('[content]\ndenylist = ["missing.deny"]\n')
    assert_refused(capsys, d, ["run", "--data-dir", str(d)], "content.denylist", "missing.deny")
    assert not (d / "repo.lock").exists()


def test_bad_denylist_on_a_new_data_dir_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "never"
    monkeypatch.setenv("FLUX_DENYLIST", str(tmp_path / "missing.deny"))
    assert main(["run", "--data-dir", str(d)]) == EXIT_USAGE
    assert not d.exists()


def test_deployment_for_another_chain_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fluxnode.chain.deploy import Deployment

    d = initialised(tmp_path)
    addresses = {
        name: "0x" + f"{i:040x}"
        for i, name in enumerate(["FluxLand", "FluxItems", "FluxTickets"], 1)
    }
    Deployment(chain_id=1, rpc_url="http://127.0.0.1:9", deploy_block=0, addresses=addresses).write(
        d / "deployment.json"
    )
    assert_refused(capsys, d, ["run", "--data-dir", str(d)], "chain.chain_id")
    assert not (d / "repo.lock").exists() and not (d / "chain.db").exists()


def test_dangling_key_symlink_creates_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = initialised(tmp_path)
    (d / "identity.key").unlink()
    (d / "identity.key").symlink_to(tmp_path / "gone.key")
    for argv in (["run", "--data-dir", str(d)], ["init", "--data-dir", str(d)]):
        assert_refused(capsys, d, argv, str(d / "identity.key"), "missing file")
    assert not (d / "blocks").exists() and not (d / "pins.db").exists()


def test_init_with_a_dangling_key_symlink_writes_no_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "node"
    d.mkdir()
    (d / "identity.key").symlink_to(tmp_path / "gone.key")
    assert_refused(capsys, d, ["init", "--data-dir", str(d)], "missing file")
    assert not (d / "config.toml").exists()


@pytest.mark.timeout(30)
def test_run_with_a_fifo_as_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = initialised(tmp_path)
    (d / "config.toml").unlink()
    os.mkfifo(d / "config.toml")
    assert_refused(capsys, d, ["run", "--data-dir", str(d)], "not a regular file")


@pytest.mark.parametrize("var", ["FLUX_OWNER_KEY", "FLUX_DEPLOY_KEY"])
def test_wallet_key_variables_do_not_stop_commands(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    var: str,
) -> None:
    d = initialised(tmp_path)
    secret = "cd" * 32
    monkeypatch.setenv(var, secret)
    assert main(["id", "--data-dir", str(d)]) == EXIT_OK
    out = capsys.readouterr()
    assert secret not in out.out + out.err
