"""fluxnode.atomicfile: the one atomic-write and bounded-read helper, and its users."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fluxnode.atomicfile import UnsafeFile, atomic_write, read_regular_file


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_replace_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    assert atomic_write(path, b"one", 0o600)
    assert path.read_bytes() == b"one" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert atomic_write(path, b"two")
    assert path.read_bytes() == b"two" and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert leftovers(tmp_path) == []


def test_exclusive_never_replaces(tmp_path: Path) -> None:
    path = tmp_path / "key"
    assert atomic_write(path, b"first", 0o600, exclusive=True)
    assert not atomic_write(path, b"second", 0o600, exclusive=True)
    assert path.read_bytes() == b"first" and leftovers(tmp_path) == []
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere")
    assert not atomic_write(link, b"x", exclusive=True)  # something is there: leave it
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_non_regular_target_is_refused_and_kept(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "target"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    with pytest.raises(FileExistsError, match="not a regular file"):
        atomic_write(path, b"data")
    mode = path.lstat().st_mode
    assert stat.S_ISFIFO(mode) if kind == "fifo" else stat.S_ISDIR(mode)
    assert leftovers(tmp_path) == []


def test_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "f", "not bytes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("fifo", "not a regular file"),
        ("device", "not a regular file"),
        ("directory", "not a regular file"),
        ("huge", "larger than 100 bytes"),
        ("dangling", "symlink to a missing file"),
    ],
)
def test_read_regular_file_refuses(tmp_path: Path, kind: str, message: str) -> None:
    path = tmp_path / "f"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    elif kind == "huge":
        path.write_bytes(b"x" * 101)
    else:
        path.symlink_to(tmp_path / "gone")
    with pytest.raises(UnsafeFile, match=message):
        read_regular_file(path, 100)


def test_read_regular_file_reads_and_reports_missing(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 100)
    assert read_regular_file(tmp_path / "f", 100) == b"x" * 100
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "missing", 100)


# -- chain/deploy.py uses it ------------------------------------------------------------------
def _deployment() -> object:
    from fluxnode.chain.deploy import Deployment

    names = ["FluxLand", "FluxItems", "FluxTickets"]
    addresses = {name: "0x" + f"{i:040x}" for i, name in enumerate(names, 1)}
    return Deployment(chain_id=80002, rpc_url="", deploy_block=0, addresses=addresses)


def test_deployment_write_refuses_a_fifo_and_round_trips(tmp_path: Path) -> None:
    from fluxnode.chain.deploy import Deployment

    deployment = _deployment()
    assert isinstance(deployment, Deployment)
    deployment.write(tmp_path / "deployment.json")
    assert Deployment.read(tmp_path / "deployment.json") == deployment
    os.mkfifo(tmp_path / "out.json")
    with pytest.raises(FileExistsError):
        deployment.write(tmp_path / "out.json")
    assert stat.S_ISFIFO((tmp_path / "out.json").lstat().st_mode)


@pytest.mark.timeout(30)
def test_deployment_and_deploy_key_that_are_fifos_are_refused(tmp_path: Path) -> None:
    from fluxnode.chain.deploy import Deployment, KeyFileError, load_private_key

    os.mkfifo(tmp_path / "deployment.json")
    with pytest.raises(UnsafeFile, match="not a regular file"):
        Deployment.read(tmp_path / "deployment.json")
    os.mkfifo(tmp_path / "deploy.key", 0o600)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_private_key(tmp_path / "deploy.key")
