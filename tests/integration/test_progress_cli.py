"""Progress lines of the content commands: on a terminal's stderr they appear; with stderr not
a terminal the output is what it always was (no progress text, no carriage returns)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.helpers import EXAMPLE_WORLD
from tests.tty import run_cli_tty

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
