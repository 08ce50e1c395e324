"""Our importer against the JS reference importer (ipfs-unixfs-importer, Kubo defaults), and
our CARs against @ipld/car, in both directions. Nobody here wrote the reference."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from fluxnode.core.cid import Cid
from fluxnode.core.unixfs import CHUNK_SIZE, FileBuilder
from fluxnode.storage.repo import Repo
from tests.interop import jsref

pytestmark = [pytest.mark.interop, pytest.mark.slow]

C = CHUNK_SIZE
SIZES = {
    "empty": 0,
    "one-byte": 1,
    "one-chunk": C,
    "one-chunk-plus-one": C + 1,
    "two-chunks-minus-one": 2 * C - 1,
    "174-chunks": 174 * C,
    "175-chunks": 175 * C,
    "175-chunks-plus-one": 175 * C + 1,
}


def write(path: Path, size: int, seed: int) -> Path:
    rng = random.Random(seed)
    with path.open("wb") as fh:
        left = size
        while left:
            n = min(left, 1 << 20)
            fh.write(rng.randbytes(n))
            left -= n
    return path


def ours(path: Path, version: int, repo: Repo) -> str:
    return str(repo.add(path, cid_version=version, pin=False).cid)


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("name", list(SIZES))
def test_file_cids_match_the_reference(tmp_path: Path, name: str, version: int) -> None:
    path = write(tmp_path / name, SIZES[name], seed=len(name))
    repo = Repo(tmp_path / "repo")
    assert ours(path, version, repo) == jsref.unixfs_add(path, version)["cid"]


@pytest.mark.parametrize("version", [0, 1])
def test_random_sizes_match_the_reference(tmp_path: Path, version: int) -> None:
    rng = random.Random(99 + version)
    repo = Repo(tmp_path / "repo")
    for i in range(6):
        size = rng.choice([rng.randrange(1, 3 * C), rng.randrange(3 * C, 40 * C)])
        path = write(tmp_path / f"r{i}", size, seed=i)
        assert ours(path, version, repo) == jsref.unixfs_add(path, version)["cid"], size


@pytest.mark.parametrize("version", [0, 1])
def test_three_level_tree_174x174_plus_one_chunks(tmp_path: Path, version: int) -> None:
    """174*174+1 leaves need a third level. With 256 KiB chunks that is 7.4 GiB, so both
    importers use 64-byte chunks here: the layout code is the same, only leaves are smaller."""
    chunk = 64
    size = (174 * 174 + 1) * chunk
    path = write(tmp_path / "deep", size, seed=7)
    builder = FileBuilder(version, chunk_size=chunk)
    builder.write(path.read_bytes())
    _, root = builder.finish()
    ref = jsref.unixfs_add(path, version, chunk_size=chunk)
    assert str(root.cid) == ref["cid"]


@pytest.mark.parametrize("version", [0, 1])
def test_nested_folders_match_the_reference(tmp_path: Path, version: int) -> None:
    root = tmp_path / "world"
    rng = random.Random(5)
    for d in ["models", "models/doors", "textures", "empty", "scripts/lib/deep"]:
        (root / d).mkdir(parents=True, exist_ok=True)
    for f, size in [
        ("world.json", 300),
        ("models/a.glb", 3 * C + 17),
        ("models/doors/d.glb", C),
        ("textures/sky.ktx2", 70_000),
        ("scripts/main.js", 1),
        ("scripts/lib/deep/x.js", 0),
        ("Ünïcødé名前.txt", 10),
    ]:
        (root / f).write_bytes(rng.randbytes(size))
    repo = Repo(tmp_path / "repo")
    assert ours(root, version, repo) == jsref.unixfs_add(root, version)["cid"]


@pytest.mark.parametrize("version", [0, 1])
def test_car_both_directions(tmp_path: Path, version: int) -> None:
    data_path = write(tmp_path / "f.bin", 5 * C + 3, seed=11)
    repo = Repo(tmp_path / "repo")
    cid = repo.add(data_path, cid_version=version).cid

    # ours -> @ipld/car + ipfs-unixfs-exporter
    car = tmp_path / "ours.car"
    with car.open("wb") as fh:
        repo.export_car(cid, fh)
    read = jsref.car_read(car)
    assert read["roots"] == [str(cid)]
    assert len(read["blocks"]) == 7
    assert read["blocks"][0][0] == str(cid)  # DFS pre-order: root first
    cat = jsref.unixfs_cat(car, str(cid))
    assert cat["size"] == data_path.stat().st_size

    # the reference's CAR -> our import; the same bytes come out
    theirs = tmp_path / "theirs.car"
    ref = jsref.unixfs_add(data_path, version, car=theirs)
    other = Repo(tmp_path / "other")
    with theirs.open("rb") as fh:
        result = other.import_car(fh)
    assert [str(r) for r in result.roots] == [ref["cid"]]
    assert b"".join(other.cat(Cid.parse(ref["cid"]), [])) == data_path.read_bytes()


def test_reference_car_of_a_folder_imports_and_serves_paths(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "a").mkdir(parents=True)
    (root / "a" / "b.glb").write_bytes(b"glTF" * 1000)
    car = tmp_path / "pkg.car"
    ref = jsref.unixfs_add(root, 1, car=car)
    repo = Repo(tmp_path / "repo")
    repo.import_car(io.BytesIO(car.read_bytes()))
    assert b"".join(repo.cat(Cid.parse(ref["cid"]), ["a", "b.glb"])) == b"glTF" * 1000
