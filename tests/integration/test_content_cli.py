"""The content commands as an operator runs them, with and without a node on the data dir."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FLUX, NodeFactory, clean_env, run_cli

pytestmark = pytest.mark.slow


def cli_ok(*args: str, input: str | None = None) -> str:
    out = run_cli(*args, input=input)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_add_cat_get_pin_gc_stat_round_trip(tmp_path: Path) -> None:
    d = str(tmp_path / "node")
    data = random.Random(3).randbytes(1_300_000)
    src = tmp_path / "model.glb"
    src.write_bytes(data)
    folder = tmp_path / "world"
    (folder / "assets").mkdir(parents=True)
    (folder / "assets" / "model.glb").write_bytes(data)
    (folder / "world.json").write_text("{}")

    cid = cli_ok("add", "--data-dir", d, str(src)).strip().splitlines()[-1]
    assert cid.startswith("Qm")
    assert cli_ok("add", "--data-dir", d, "--only-hash", str(src)).strip() == cid
    v1 = cli_ok("add", "--data-dir", d, "--cid-version", "1", "-q", str(src)).strip()
    assert v1.startswith("bafybei")
    dir_cid = cli_ok("add", "--data-dir", d, "-q", str(folder)).strip()

    cat = subprocess.run(
        [FLUX, "cat", "--data-dir", d, f"{dir_cid}/assets/model.glb"],
        capture_output=True,
        env=clean_env(),
        timeout=60,
    )
    assert cat.returncode == 0
    assert cat.stdout == data
    out = tmp_path / "out"
    cli_ok("get", "--data-dir", d, f"/ipfs/{dir_cid}", "-o", str(out))
    assert (out / "assets" / "model.glb").read_bytes() == data
    assert (out / "world.json").read_text() == "{}"
    got = tmp_path / "got.glb"
    cli_ok("get", "--data-dir", d, cid, "-o", str(got))
    assert got.read_bytes() == data

    pins = [json.loads(line) for line in cli_ok("pin", "ls", "--data-dir", d).splitlines()]
    assert {p["cid"] for p in pins} == {cid, v1, dir_cid}
    stat = json.loads(cli_ok("repo", "stat", "--data-dir", d))
    assert stat["pins"] == 3
    cli_ok("pin", "rm", "--data-dir", d, v1)
    cli_ok("pin", "rm", "--data-dir", d, cid)
    gc = json.loads(cli_ok("gc", "--data-dir", d))
    # v0 file blocks are shared with the folder's copy; the v1 raw leaves and root are freed
    assert gc["blocks_removed"] == 6
    assert gc["bytes_freed"] > 1_300_000
    assert run_cli("cat", "--data-dir", d, v1).returncode == 1
    assert json.loads(cli_ok("repo", "verify", "--data-dir", d))["corrupted"] == []


def test_stdin_add_and_car_export_import(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    cid = cli_ok("add", "--data-dir", a, "-q", "-", input="hello world\n").strip()
    assert cid == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    car = tmp_path / "x.car"
    cli_ok("car", "export", "--data-dir", a, cid, "-o", str(car))
    res = json.loads(cli_ok("car", "import", "--data-dir", b, str(car)))
    assert res["roots"] == [cid]
    assert res["pinned"] is True
    assert cli_ok("cat", "--data-dir", b, cid) == "hello world\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cat", "not-a-cid"], "invalid"),
        (["cat", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"], "not in the store"),
        (["cat", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o/../x"], "not allowed"),
        (["add", "/nonexistent/file"], "cannot read"),
        (["pin", "rm", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"], "not pinned"),
        (["car", "import", "/nonexistent.car"], "No such file"),
    ],
)
def test_bad_content_commands_fail_cleanly(tmp_path: Path, args: list[str], message: str) -> None:
    out = run_cli(*args, "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 1
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_garbage_car_changes_nothing(tmp_path: Path) -> None:
    d = str(tmp_path / "d")
    cli_ok("add", "--data-dir", d, "-q", "-", input="keep me\n")
    before = cli_ok("repo", "stat", "--data-dir", d)
    bad = tmp_path / "bad.car"
    bad.write_bytes(b"\x11\xa2eroots\x80gversion\x01" + b"\x30" + b"\x01\x55\x12\x20" + b"x" * 44)
    out = run_cli("car", "import", "--data-dir", d, str(bad))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert cli_ok("repo", "stat", "--data-dir", d) == before


def test_content_added_while_the_node_runs_is_served_by_its_gateway(nodes: NodeFactory) -> None:
    import urllib.request

    a = nodes.start("a", gateway=True)
    info = a.wait_ready()
    cid = cli_ok("add", "--data-dir", str(a.data_dir), "-q", "-", input="served\n").strip()
    with urllib.request.urlopen(f"{info['gateway_url']}/ipfs/{cid}", timeout=10) as resp:
        assert resp.read() == b"served\n"
        assert resp.headers["Cache-Control"] == "public, max-age=29030400, immutable"
    a.terminate()


EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "hello-world"


def test_world_validate_and_pack_the_example(tmp_path: Path) -> None:
    d = str(tmp_path / "node")
    valid = json.loads(cli_ok("world", "validate", "--data-dir", d, str(EXAMPLE)))
    assert valid["valid"] is True
    assert valid["files"] >= 3
    cid = cli_ok("world", "pack", "--data-dir", d, str(EXAMPLE)).strip()
    assert cid.startswith("bafybei")
    manifest = subprocess.run(
        [FLUX, "cat", "--data-dir", d, f"{cid}/world.json"],
        capture_output=True,
        env=clean_env(),
        timeout=60,
    )
    assert manifest.stdout == (EXAMPLE / "world.json").read_bytes()
    pins = [json.loads(line) for line in cli_ok("pin", "ls", "--data-dir", d).splitlines()]
    assert pins[0]["name"].startswith("world:")


def test_invalid_world_names_the_json_path_and_stores_nothing(tmp_path: Path) -> None:
    d = tmp_path / "node"
    pkg = tmp_path / "bad"
    pkg.mkdir()
    doc = json.loads((EXAMPLE / "world.json").read_text())
    doc["objects"] = [{"id": "a", "type": "cube", "scale": {"x": 0, "y": 1, "z": 1}}]
    doc["thumbnail"] = "../../etc/passwd"
    (pkg / "world.json").write_text(json.dumps(doc))
    out = run_cli("world", "pack", "--data-dir", str(d), str(pkg))
    assert out.returncode == 1
    assert "objects[0].scale.x" in out.stderr
    assert "thumbnail" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (d / "blocks").exists() or not any((d / "blocks").rglob("*.data"))


def test_world_limits_come_from_config(tmp_path: Path) -> None:
    d = tmp_path / "node"
    d.mkdir()
    (d / "config.toml").write_text('[world]\nmax_total_size = "100B"\n')
    out = run_cli("world", "validate", "--data-dir", str(d), str(EXAMPLE))
    assert out.returncode == 1
    assert "limit" in out.stderr
    (d / "config.toml").write_text('[world]\nmax_files = "lots"\n')
    out = run_cli("world", "validate", "--data-dir", str(d), str(EXAMPLE))
    assert out.returncode == 2
    assert "world.max_files" in out.stderr
