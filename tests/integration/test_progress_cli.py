"""Progress lines of the content commands: on a terminal's stderr they appear; with stderr not
a terminal the output is what it always was (no progress text, no carriage returns)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from tests.conftest import NodeFactory, run_cli
from tests.helpers import EXAMPLE_WORLD, publish, status, wait_for, write_owner_key
from tests.tty import TtyProcess, run_cli_tty

pytestmark = pytest.mark.slow


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(random.Random(1).randbytes(3 << 20))
    return path


def test_add_pin_and_car_import_show_progress_on_a_terminal_only(
    tmp_path: Path, big_file: Path
) -> None:
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    shown = run_cli_tty("add", "--data-dir", src, "--no-pin", str(big_file), stdout_tty=False)
    assert shown.returncode == 0, shown.terminal
    cid = shown.stdout.strip()
    assert "added: 3.0 MiB" in shown.terminal

    shown = run_cli_tty("pin", "add", "--data-dir", src, cid, stdout_tty=False)
    assert shown.returncode == 0, shown.terminal
    assert "pinning: 13 blocks verified" in shown.terminal  # 12 leaves and their parent
    assert json.loads(shown.stdout)["cid"] == cid

    car = tmp_path / "x.car"
    assert run_cli("car", "export", "--data-dir", src, cid, "-o", str(car)).returncode == 0
    shown = run_cli_tty("car", "import", "--data-dir", dst, str(car), stdout_tty=False)
    assert shown.returncode == 0, shown.terminal
    assert f"of {car.stat().st_size / 2**20:.1f} MiB (100%)" in shown.terminal
    assert json.loads(shown.stdout)["roots"] == [cid]

    # The same commands with stderr not a terminal: no progress, output as before.
    plain = run_cli("car", "import", "--data-dir", str(tmp_path / "dst2"), str(car))
    assert plain.returncode == 0 and plain.stderr == ""
    assert json.loads(plain.stdout)["roots"] == [cid]
    plain = run_cli("pin", "add", "--data-dir", src, cid)
    assert plain.returncode == 0 and plain.stderr == ""
    plain = run_cli("add", "--data-dir", str(tmp_path / "src3"), str(big_file))
    assert plain.stderr == f"added {cid} ({3 << 20} bytes, 13 blocks, pinned)\n"


def test_world_pack_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    d = str(tmp_path / "n")
    shown = run_cli_tty("world", "pack", "--data-dir", d, str(EXAMPLE_WORLD), stdout_tty=False)
    assert shown.returncode == 0, shown.terminal
    assert "packing " in shown.terminal and "\r" in shown.terminal
    plain = run_cli("world", "pack", "--data-dir", str(tmp_path / "m"), str(EXAMPLE_WORLD))
    assert plain.returncode == 0 and plain.stdout == shown.stdout
    assert "packing" not in plain.stderr and "\r" not in plain.stderr
    assert json.loads(plain.stderr)["cid"] == plain.stdout.strip()


def test_a_node_on_a_terminal_shows_its_replication_fetch(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    key = tmp_path / "owner.key"
    owner = write_owner_key(key)
    world_id = f"{owner.address.lower()}/hello"
    a = nodes.start("a")
    a_addr = a.wait_ready()["addrs"][0]
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    (b_dir / "config.toml").write_text(f'[hosting]\nworlds = ["{world_id}"]\ninterval = 0.5\n')
    b = TtyProcess(
        "run", "--data-dir", str(b_dir), "--listen", "/ip4/127.0.0.1/tcp/0", "--no-gateway",
        "--bootstrap", a_addr,
    )  # fmt: skip
    try:
        wait_for(lambda: (b_dir / "node.json").exists(), "B to be ready", detail=lambda: b.shown)
        time.sleep(1)  # let gossip meshes form, or the publication reaches nobody
        world = publish(a.data_dir, EXAMPLE_WORLD, key)
        wait_for(
            lambda: any(
                r["cid"] == world["cid"] and r["hosted_here"]
                for r in status(b_dir)["hosting"]["replicas"]
            ),
            "B to host the world",
            detail=lambda: b.shown,
        )
    finally:
        b.terminate()
    assert f"fetching {world_id}: " in b.shown, b.shown
