"""HAMT-sharded directories: our importer against the JS reference importer.

The reference is ipfs-unixfs-importer (interop/package.json) run the way `ipfs add -r` runs with
Kubo defaults (interop/unixfs-add.mjs): CIDv0 + dag-pb leaves, and CIDv1 + raw leaves. For each
tree we build every file with FileBuilder and every directory with `directory_node` or
`hamt_directory` as `should_shard` decides, and compare root CIDs.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fluxnode.core.cid import Cid
from fluxnode.core.dagpb import DataType, PBNode, decode_node, decode_unixfs
from fluxnode.core.hamt import (
    SHARD_SPLIT_THRESHOLD_BYTES,
    find_in_shard,
    hamt_directory,
    iter_shard_entries,
    should_shard,
)
from fluxnode.core.unixfs import Block, Link, directory_node, import_bytes
from tests.interop import jsref

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.usefixtures("js_harness")]

#: Two names whose murmur3-x64-64 hashes share their first 4 bytes: sub-shards 4 levels deep.
DEEP_PAIR = ("deep-178212.bin", "deep-184251.bin")


def js_add(path: Path, cid_version: int) -> str:
    out = jsref.unixfs_add(path, cid_version)
    # The rule should_shard implements is for these importer settings.
    assert out["shardSplitThresholdBytes"] == SHARD_SPLIT_THRESHOLD_BYTES
    assert out["shardSplitStrategy"] == "links-bytes"
    return str(out["cid"])


def py_add(path: Path, cid_version: int, blocks: list[Block] | None = None) -> Link:
    """Import a tree like `ipfs add -r`: files via FileBuilder, directories plain or sharded."""
    if path.is_file():
        file_blocks, link = import_bytes(path.read_bytes(), cid_version)
        if blocks is not None:
            blocks += file_blocks
        return link
    entries: list[tuple[str, Link]] = []
    subdirs: set[str] = set()
    for child in sorted(path.iterdir()):
        entries.append((child.name, py_add(child, cid_version, blocks)))
        if child.is_dir() and any(child.iterdir()):
            subdirs.add(child.name)
    if should_shard(entries, cid_version, subdirectories=subdirs):
        dir_blocks, link = hamt_directory(entries, cid_version)
    else:
        block, link = directory_node(entries, cid_version)
        dir_blocks = [block]
    if blocks is not None:
        blocks += dir_blocks
    return link


def write_files(d: Path, names: list[str], seed: int = 0) -> None:
    d.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    for name in names:
        (d / name).write_bytes(rnd.randbytes(rnd.randrange(0, 400)) + name.encode())


def varied_names(count: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    stems = ["img", "doc", "ü-file", "データ", "a", "Z", "report final (copy)", "😀"]
    names: set[str] = set()
    while len(names) < count:
        stem = rnd.choice(stems)
        tail = "".join(
            rnd.choices("abcdefghijklmnopqrstuvwxyz0123456789-_", k=rnd.randrange(20, 80))
        )
        names.add(f"{stem}-{len(names)}-{tail}{rnd.choice(['.txt', '.png', '', '.tar.gz'])}")
    return sorted(names)


def exact_names(total_bytes: int, count: int, prefix: str = "f") -> list[str]:
    """`count` distinct ASCII names whose lengths add up to exactly `total_bytes`."""
    base, extra = divmod(total_bytes, count)
    names = []
    for i in range(count):
        stem = f"{prefix}{i:05d}-"
        length = base + (1 if i < extra else 0)
        assert len(stem) <= length <= 255
        names.append(stem + "x" * (length - len(stem)))
    assert sum(len(n) for n in names) == total_bytes
    return names


def _depth(root: Block, blocks: list[Block], name: str) -> int:
    """How many shard nodes a lookup of `name` reads."""
    by_cid = {b.cid: b.data for b in blocks}
    fetched: list[Cid] = []

    def get_node(cid: Cid) -> PBNode:
        fetched.append(cid)
        return decode_node(by_cid[cid])

    assert find_in_shard(decode_node(root.data), name, get_node) is not None
    return 1 + len(fetched)


@pytest.mark.parametrize("cid_version", [0, 1])
def test_large_sharded_directory_with_nested_sub_shards(tmp_path: Path, cid_version: int) -> None:
    names = [*varied_names(3000), *DEEP_PAIR]
    d = tmp_path / "big"
    write_files(d, names)
    blocks: list[Block] = []
    root = py_add(d, cid_version, blocks)
    assert str(root.cid) == js_add(d, cid_version)

    shard_root = next(b for b in blocks if b.cid == root.cid)
    assert _depth(shard_root, blocks, DEEP_PAIR[0]) == 5  # root + 4 levels of sub-shards
    by_cid = {b.cid: b.data for b in blocks}
    listed = list(
        iter_shard_entries(decode_node(shard_root.data), lambda c: decode_node(by_cid[c]))
    )
    assert sorted(n for n, _, _ in listed) == sorted(names)


@pytest.mark.parametrize("cid_version", [0, 1])
@pytest.mark.parametrize("over", [0, 1])
def test_threshold_boundary(tmp_path: Path, cid_version: int, over: int) -> None:
    """Estimate exactly 262,144 stays a plain directory; one byte more shards."""
    count = 1500
    cid_len = 34 if cid_version == 0 else 36
    names = exact_names(SHARD_SPLIT_THRESHOLD_BYTES + over - count * cid_len, count)
    d = tmp_path / "edge"
    write_files(d, names)
    blocks: list[Block] = []
    root = py_add(d, cid_version, blocks)
    root_block = next(b for b in blocks if b.cid == root.cid)
    kind = decode_unixfs(decode_node(root_block.data).data).type
    assert kind == (DataType.HAMT_SHARD if over else DataType.DIRECTORY)
    assert str(root.cid) == js_add(d, cid_version)


@pytest.mark.parametrize("cid_version", [0, 1])
@pytest.mark.parametrize(
    ("subdir", "empty", "sharded"),
    [("aaa", False, False), ("zzz", False, True), ("aaa", True, True)],
)
def test_subdirectory_counts_only_while_empty(
    tmp_path: Path, cid_version: int, subdir: str, empty: bool, sharded: bool
) -> None:
    """Files alone stay 10 bytes under the threshold. A sub-directory counts (name + CID) only
    while it is empty: added first and then filled it ends up counting 0, added last it tips
    the estimate over, and an empty one counts for good."""
    count = 1500
    cid_len = 34 if cid_version == 0 else 36
    names = exact_names(SHARD_SPLIT_THRESHOLD_BYTES - 10 - count * cid_len, count, prefix="m")
    d = tmp_path / "mixed"
    write_files(d, names)
    (d / subdir).mkdir()
    if not empty:
        write_files(d / subdir, ["inner.txt"])
    blocks: list[Block] = []
    root = py_add(d, cid_version, blocks)
    root_block = next(b for b in blocks if b.cid == root.cid)
    kind = decode_unixfs(decode_node(root_block.data).data).type
    assert (kind == DataType.HAMT_SHARD) == sharded
    assert str(root.cid) == js_add(d, cid_version)
