"""`world pack` checks and stores a package in one pass: what is checked is what is shipped.

Each race test swaps a file at a fixed point of the run (a hook, not a timer), so it is
deterministic: right after world.json is parsed (in a check-then-import pack that is between the
check and the import), or right before a file is opened.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fluxnode.core.cid import Cid
from fluxnode.core.content import Kind
from fluxnode.node.cli import main
from fluxnode.storage import importer, worldpkg
from fluxnode.storage.repo import Repo
from fluxnode.storage.worldpkg import WorldPackageInvalid, scan_package
from tests.unit.test_world_package import MANIFEST, make_package

MiB = 1 << 20


@pytest.fixture(autouse=True)
def _no_flux_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("FLUX_")]:
        monkeypatch.delenv(key)


def pack(data_dir: Path, pkg: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`flux-node world pack` in this process: (exit code, stdout, stderr)."""
    code = main(["world", "pack", "--data-dir", str(data_dir), str(pkg)])
    out = capsys.readouterr()
    return code, out.out, out.err


def stored(data_dir: Path) -> tuple[list[Cid], list[str]]:
    if not (data_dir / "blocks").exists():
        return [], []
    repo = Repo(data_dir)
    return list(repo.blocks.iter_cids()), [p.cid for p in repo.pins.list()]


def shipped(repo: Repo, cid: Cid, prefix: str = "") -> Iterator[str]:
    """Every file path in the stored DAG under `cid`."""
    for entry in repo.exporter.list_dir(cid):
        path = f"{prefix}{entry.name}"
        if repo.exporter.stat(entry.cid).kind is Kind.DIRECTORY:
            yield from shipped(repo, entry.cid, f"{path}/")
        else:
            yield path


def after_manifest_is_parsed(monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None]) -> None:
    real = worldpkg.parse_manifest

    def parse_then_swap(data: bytes, *args: Any) -> Any:
        result = real(data, *args)
        swap()
        return result

    monkeypatch.setattr(worldpkg, "parse_manifest", parse_then_swap)


def test_a_link_swapped_in_after_the_check_is_not_packed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = make_package(tmp_path / "garden")
    model = pkg / "models" / "tree.glb"

    def swap() -> None:
        model.unlink()
        model.symlink_to("/etc/passwd")

    after_manifest_is_parsed(monkeypatch, swap)
    code, out, err = pack(tmp_path / "node", pkg, capsys)
    assert code == 1
    assert "models/tree.glb: symbolic link to /etc/passwd escapes the package" in err
    assert out == ""
    assert stored(tmp_path / "node") == ([], [])


def test_an_oversize_file_swapped_in_after_the_check_is_not_packed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = make_package(tmp_path / "garden")
    model = pkg / "models" / "tree.glb"

    def swap() -> None:
        model.unlink()
        with model.open("wb") as f:
            f.truncate(40 * MiB)

    after_manifest_is_parsed(monkeypatch, swap)
    code, _, err = pack(tmp_path / "node", pkg, capsys)
    assert code == 1
    assert "models/tree.glb: is 40 MiB, over the 16 MiB per-file limit" in err
    assert stored(tmp_path / "node") == ([], [])


def test_world_json_rewritten_after_the_check_ships_the_checked_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = make_package(tmp_path / "garden")
    checked = (pkg / "world.json").read_bytes()
    bad = json.loads(checked)
    bad["thumbnail"] = "../../etc/passwd"
    after_manifest_is_parsed(monkeypatch, lambda: (pkg / "world.json").write_text(json.dumps(bad)))
    code, out, _ = pack(tmp_path / "node", pkg, capsys)
    assert code == 0
    repo = Repo(tmp_path / "node")
    cid = Cid.parse(out.strip())
    manifest = repo.exporter.resolve(cid, ["world.json"])
    assert b"".join(repo.exporter.read(manifest.cid)) == checked


def test_the_gitkeep_validation_lists_is_packed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = make_package(tmp_path / "garden")
    (pkg / "models" / "empty").mkdir()
    (pkg / "models" / "empty" / ".gitkeep").write_bytes(b"")
    (pkg / "nothing").mkdir()  # empty: neither listed nor shipped
    listed = [f.path for f in scan_package(pkg).files]
    assert "models/empty/.gitkeep" in listed
    code, out, _ = pack(tmp_path / "node", pkg, capsys)
    assert code == 0
    repo = Repo(tmp_path / "node")
    assert sorted(shipped(repo, Cid.parse(out.strip()))) == listed


def test_validation_computes_the_cid_the_pack_stores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = make_package(tmp_path / "garden")
    code, out, _ = pack(tmp_path / "node", pkg, capsys)
    assert code == 0
    assert str(scan_package(pkg).link.cid) == out.strip()


# --- swaps at the moment a file is opened (after its folder was listed) -----------------------


def before_open(monkeypatch: pytest.MonkeyPatch, name: str, swap: Callable[[], None]) -> None:
    real = importer.open_entry

    def swap_then_open(dir_fd: int, entry: str, st: os.stat_result) -> int:
        if entry == name:
            swap()
        return real(dir_fd, entry, st)

    monkeypatch.setattr(worldpkg, "open_entry", swap_then_open)


@pytest.mark.parametrize("kind", ["link", "fifo", "folder"])
def test_an_entry_swapped_between_listing_and_open_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    pkg = make_package(tmp_path / "garden")
    model = pkg / "models" / "tree.glb"

    def swap() -> None:
        model.unlink()
        if kind == "link":
            model.symlink_to("/etc/passwd")
        elif kind == "fifo":
            os.mkfifo(model)
        else:
            model.mkdir()

    before_open(monkeypatch, "tree.glb", swap)
    blocks: list[Any] = []
    with worldpkg.open_package(pkg) as p, pytest.raises(WorldPackageInvalid) as info:
        p.pack(blocks.extend)
    assert [str(x) for x in info.value.problems] == [
        "models/tree.glb: changed while being read (links and special files are not allowed)"
    ]


def test_a_file_growing_past_the_limit_while_read_stops_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = make_package(tmp_path / "garden")
    model = pkg / "models" / "tree.glb"
    read: list[int] = []
    real = importer.import_stream

    def grow_then_import(stream: Any, sink: Any, cid_version: int = 0) -> Any:
        monkeypatch.setattr(worldpkg, "import_stream", real)  # this file only
        with model.open("r+b") as f:
            f.truncate(40 * MiB)
        result = real(stream, sink, cid_version)
        read.append(result.bytes_read)
        return result

    before_open(
        monkeypatch,
        "tree.glb",
        lambda: monkeypatch.setattr(worldpkg, "import_stream", grow_then_import),
    )
    with worldpkg.open_package(pkg) as p, pytest.raises(WorldPackageInvalid) as info:
        p.pack(lambda blocks: None)
    assert [str(x) for x in info.value.problems] == [
        "models/tree.glb: grew past its size limit while being read"
    ]
    assert read == [16 * MiB + 1]  # bounded: never the whole 40 MiB


def test_an_unchanged_package_packs_what_it_validates(tmp_path: Path) -> None:
    pkg = make_package(tmp_path / "garden", MANIFEST)
    repo = Repo(tmp_path / "node")
    with worldpkg.open_package(pkg) as p:
        result = repo.add(p.importer(), name="world:garden")
        assert p.packed is not None
        assert sorted(shipped(repo, result.cid)) == [f.path for f in p.packed.files]
    assert [pin.cid for pin in repo.pins.list()] == [str(result.cid)]
