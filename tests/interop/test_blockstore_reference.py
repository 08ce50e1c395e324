"""What a storing add leaves on disk, against the JS reference: ipfs-unixfs-importer (Kubo
defaults, interop/unixfs-add.mjs) storing into Helia's file-per-block store blockstore-fs.
Nobody here wrote either. Not only the root CIDs must agree: both stores must hold the same
blocks (by multihash, the key both stores file blocks under) with the same bytes, so a block
one side leaves out or writes extra is caught."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fluxnode.core.cid import Cid
from fluxnode.core.unixfs import CHUNK_SIZE
from fluxnode.storage.repo import Repo
from tests.interop import jsref

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.usefixtures("js_harness")]

C = CHUNK_SIZE


def our_blocks(repo: Repo) -> dict[bytes, bytes]:
    """Every block in our store, {multihash: bytes}; `get` re-checks each digest."""
    blocks = {cid.multihash: repo.blocks.get(cid) for cid in repo.blocks.iter_cids()}
    assert len(blocks) == repo.stat().blocks  # no block file the listing skipped
    return blocks


def add_both(tmp_path: Path, path: Path, version: int) -> tuple[Cid, dict[bytes, bytes]]:
    """Store `path` on both sides; check the roots and both stores agree block for block."""
    js_dir = tmp_path / "js-store"
    ref = jsref.unixfs_add(path, version, blockstore=js_dir)
    theirs = jsref.fs_blockstore_blocks(js_dir)
    repo = Repo(tmp_path / "repo")
    result = repo.add(path, cid_version=version)
    ours = our_blocks(repo)

    assert str(result.cid) == ref["cid"]
    assert result.cid.multihash in theirs
    assert sorted(ours) == sorted(theirs), "the stores hold different blocks"
    for mh, data in theirs.items():
        assert ours[mh] == data
    assert ref["blocks"] == len(theirs)  # the script stored every distinct block it counted
    return result.cid, theirs


def _random_file(path: Path, size: int, seed: int) -> Path:
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


@pytest.mark.parametrize("version", [0, 1])
def test_multi_chunk_file_stores_the_same_blocks(tmp_path: Path, version: int) -> None:
    path = _random_file(tmp_path / "f.bin", 6 * C, seed=15 + version)  # 1.5 MiB
    _, theirs = add_both(tmp_path, path, version)
    assert len(theirs) == 7  # six 256 KiB leaves and their parent


@pytest.mark.parametrize("empty_dir", [False, True], ids=["no-empty-dir", "empty-dir"])
@pytest.mark.parametrize("version", [0, 1])
def test_directory_tree_stores_the_same_blocks(
    tmp_path: Path, version: int, empty_dir: bool
) -> None:
    root = tmp_path / "world"
    rng = random.Random(21)
    for d in ["models/doors", "scripts/lib"]:
        (root / d).mkdir(parents=True)
    glb = rng.randbytes(3 * C + 17)
    for name, data in [
        ("world.json", b'{"spawn": [0, 1, 0]}'),
        ("models/a.glb", glb),
        ("models/doors/copy-of-a.glb", glb),  # the same blocks twice: stored once each side
        ("scripts/main.js", rng.randbytes(C)),
        ("scripts/lib/empty.js", b""),
    ]:
        (root / name).write_bytes(data)
    if empty_dir:
        (root / "textures").mkdir()
    cid, theirs = add_both(tmp_path, root, version)
    # a.glb and its copy share 4 leaves + 1 parent; main.js (one chunk), empty.js and
    # world.json are one block each (a raw leaf in v1, a dag-pb node in v0); 5 directories,
    # 6 with the empty one.
    assert len(theirs) == 5 + 1 + 1 + 1 + 5 + empty_dir
    assert cid.codec == 0x70


def test_car_and_blockstore_together_are_refused(tmp_path: Path) -> None:
    path = _random_file(tmp_path / "f.bin", 10, seed=1)
    with pytest.raises(jsref.JSRefError, match="exclude each other"):
        jsref.unixfs_add(path, 1, car=tmp_path / "x.car", blockstore=tmp_path / "store")
    assert not (tmp_path / "store").exists()
