"""Block store, pins, GC, quota, CAR and exporter over real files in tmp_path."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fluxnode.core.car import InvalidCar, encode_header, encode_section
from fluxnode.core.cid import RAW, Cid
from fluxnode.storage.blockstore import (
    BlockCorrupted,
    BlockHashMismatch,
    BlockNotFound,
    BlockTooLarge,
    QuotaExceeded,
)
from fluxnode.storage.dag import DagIncomplete
from fluxnode.storage.exporter import NotAFile, PathNotFound
from fluxnode.storage.repo import Repo


def payload(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "data")


def add_bytes(repo: Repo, data: bytes, **kw: object) -> Cid:
    return repo.add(io.BytesIO(data), **kw).cid  # type: ignore[arg-type]


def test_add_cat_ranges_and_blocks_are_0600_free_files(repo: Repo) -> None:
    data = payload(1_000_000)
    cid = add_bytes(repo, data)
    assert b"".join(repo.cat(cid, [])) == data
    for offset, length in [(0, 1), (262_143, 2), (500_000, 300_000), (999_999, 10), (5, 0)]:
        assert b"".join(repo.cat(cid, [], offset, length)) == data[offset : offset + length]
    assert b"".join(repo.cat(cid, [], 2_000_000, 5)) == b""
    assert repo.pins.is_pinned(cid)
    assert repo.stat().blocks == 5  # 4 leaves + 1 root


def test_cidv1_raw_leaves_and_single_chunk_root_is_raw(repo: Repo) -> None:
    small = add_bytes(repo, b"tiny", cid_version=1)
    assert small.codec == RAW
    assert b"".join(repo.cat(small, [])) == b"tiny"
    big = add_bytes(repo, payload(600_000), cid_version=1)
    assert str(big).startswith("bafybei")


def test_directories_paths_hidden_files_and_symlinks(repo: Repo, tmp_path: Path) -> None:
    root = tmp_path / "world"
    (root / "models").mkdir(parents=True)
    (root / "models" / "door.glb").write_bytes(b"glTF" + payload(300_000))
    (root / "world.json").write_text('{"name": "x"}')
    (root / ".secret").write_text("skip me")
    (root / "link").symlink_to("models/door.glb")
    cid = repo.add(root).cid
    names = sorted(e.name for e in repo.exporter.list_dir(cid))
    assert names == ["link", "models", "world.json"]  # hidden file skipped, like Kubo
    assert b"".join(repo.cat(cid, ["models", "door.glb"]))[:4] == b"glTF"
    assert repo.exporter.read_link(repo.exporter.resolve(cid, ["link"]).cid) == "models/door.glb"
    with pytest.raises(PathNotFound):
        repo.exporter.resolve(cid, ["models", "nope.glb"])
    with pytest.raises(PathNotFound, match="not a directory"):
        repo.exporter.resolve(cid, ["world.json", "x"])
    with pytest.raises(NotAFile):
        list(repo.cat(cid, ["models"]))


def test_only_hash_writes_nothing(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "d")
    before = sorted(p.name for p in (tmp_path / "d" / "blocks").iterdir())
    res = repo.add(io.BytesIO(payload(700_000)), only_hash=True)  # type: ignore[arg-type]
    assert not res.pinned
    assert repo.stat().blocks == 0
    assert sorted(p.name for p in (tmp_path / "d" / "blocks").iterdir()) == before
    assert repo.pins.list() == []


def test_corrupted_block_is_detected_and_never_served(repo: Repo) -> None:
    data = payload(600_000)
    cid = add_bytes(repo, data)
    leaf = next(c for c in repo.blocks.iter_cids() if repo.blocks.size_of(c) > 200_000)
    path = repo.blocks.path_for(leaf)
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(BlockCorrupted, match="corrupted"):
        b"".join(repo.cat(cid, []))
    report = repo.verify()
    assert len(report.corrupted) == 1
    assert report.missing_in_pins == (str(cid),)


def test_put_rejects_wrong_hash_and_oversized_blocks(repo: Repo) -> None:
    cid = Cid.hash_block(b"good", 1, RAW)
    with pytest.raises(BlockHashMismatch):
        repo.blocks.put(cid, b"evil")
    assert not repo.blocks.has(cid)
    big = b"\0" * (2 * 1024 * 1024 + 1)
    with pytest.raises(BlockTooLarge, match="max"):
        repo.blocks.put(Cid.hash_block(big, 1, RAW), big)


def test_recursive_pin_needs_the_whole_dag(repo: Repo) -> None:
    cid = add_bytes(repo, payload(600_000), pin=False)
    leaf = next(c for c in repo.blocks.iter_cids() if repo.blocks.size_of(c) > 200_000)
    repo.blocks.delete(leaf)
    with pytest.raises(DagIncomplete):
        repo.pins.add(cid)
    assert repo.pins.list() == []
    with pytest.raises(BlockNotFound):
        repo.pins.add(leaf, recursive=False)


def test_gc_removes_only_unpinned_blocks_and_reports(repo: Repo) -> None:
    keep = add_bytes(repo, payload(500_000, 1), name="keep")
    drop = add_bytes(repo, payload(500_000, 2), pin=False)
    direct = add_bytes(repo, b"direct", pin=False)
    repo.pins.add(direct, recursive=False)
    before = repo.stat()
    result = repo.gc()
    assert result.blocks_removed == 3  # drop: 2 leaves + root
    assert result.bytes_freed == before.bytes - repo.stat().bytes
    assert b"".join(repo.cat(keep, [])) == payload(500_000, 1)
    assert repo.blocks.has(direct)
    with pytest.raises(BlockNotFound):
        b"".join(repo.cat(drop, []))
    repo.pins.remove(keep)
    assert repo.gc().blocks_removed == 3
    assert repo.verify().missing_in_pins == ()


def test_quota_fails_cleanly_and_changes_nothing(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "q", quota_bytes=700_000)
    add_bytes(repo, payload(400_000, 1))
    before = sorted(str(c) for c in repo.blocks.iter_cids())
    # a stream: its size is unknown, so the quota trips part-way; what it wrote is removed
    with pytest.raises(QuotaExceeded):
        add_bytes(repo, payload(400_000, 2))
    assert sorted(str(c) for c in repo.blocks.iter_cids()) == before
    # a file: its size is known, so nothing is written at all
    big = tmp_path / "big.bin"
    big.write_bytes(payload(400_000, 3))
    with pytest.raises(QuotaExceeded, match="quota"):
        repo.add(big)
    assert sorted(str(c) for c in repo.blocks.iter_cids()) == before
    assert len(repo.pins.list()) == 1


def test_car_round_trip_and_all_or_nothing_import(repo: Repo, tmp_path: Path) -> None:
    data = payload(900_000)
    cid = add_bytes(repo, data)
    buf = io.BytesIO()
    repo.export_car(cid, buf)
    other = Repo(tmp_path / "other")
    result = other.import_car(io.BytesIO(buf.getvalue()))
    assert result.roots == (cid,)
    assert b"".join(other.cat(cid, [])) == data
    assert other.pins.is_pinned(cid)

    # a block that does not hash to its CID: error, and nothing stays behind
    third = Repo(tmp_path / "third")
    good = Cid.hash_block(b"good", 1, RAW)
    car = encode_header([good]) + encode_section(good, b"good")
    car += encode_section(Cid.hash_block(b"x", 1, RAW), b"y")
    with pytest.raises(BlockHashMismatch):
        third.import_car(io.BytesIO(car))
    assert third.stat().blocks == 0
    assert third.pins.list() == []

    # roots whose DAG is incomplete: undone too
    missing_root = Cid.parse("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")
    car = encode_header([missing_root]) + encode_section(good, b"good")
    with pytest.raises(DagIncomplete):
        third.import_car(io.BytesIO(car))
    assert third.stat().blocks == 0


@pytest.mark.parametrize(
    "car",
    [
        b"",
        b"\x05abc",
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
        b"\x02\xa0\x00",
        encode_header([])[:-3],
        b"\x11\xa2eroots\x80gversion\x02",  # version 2
        encode_header([Cid.hash_block(b"a", 1, RAW)]) + b"\x05\x01\x55\x12",  # truncated section
        encode_header([Cid.hash_block(b"a", 1, RAW)]) + b"\xff\xff\xff\x7f",  # absurd length
        os.urandom(64),
    ],
)
def test_garbage_and_truncated_cars_are_rejected_cleanly(repo: Repo, car: bytes) -> None:
    with pytest.raises((InvalidCar, BlockHashMismatch)):
        repo.import_car(io.BytesIO(car))
    assert repo.stat().blocks == 0


def test_a_car_with_no_roots_is_refused_when_pinning_and_stores_nothing(repo: Repo) -> None:
    good = Cid.hash_block(b"good", 1, RAW)
    car = encode_header([]) + encode_section(good, b"good")
    with pytest.raises(InvalidCar, match="no root"):
        repo.import_car(io.BytesIO(car))
    assert repo.stat().blocks == 0
    # asked for unpinned blocks explicitly: that is what it gets
    assert repo.import_car(io.BytesIO(car), pin_roots=False).blocks == 1


def test_a_failed_car_import_leaves_earlier_pins_of_its_roots_alone(repo: Repo) -> None:
    good = Cid.hash_block(b"good", 1, RAW)
    repo.import_car(io.BytesIO(encode_header([good]) + encode_section(good, b"good")))
    repo.pins.add(good, recursive=False, name="mine")
    missing = Cid.parse("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")
    car = encode_header([good, missing]) + encode_section(good, b"good")
    with pytest.raises(DagIncomplete):
        repo.import_car(io.BytesIO(car))
    assert sorted((p.mode, p.name) for p in repo.pins.list()) == [
        ("direct", "mine"),
        ("recursive", None),
    ]
    assert repo.blocks.has(good)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_and_empty_shards_are_cleaned_on_open_live_ones_kept(
    tmp_path: Path,
) -> None:
    d = tmp_path / "d"
    Repo(d)
    tmp = d / "blocks" / ".tmp"
    hour_ago = time.time() - 2 * 3600
    (tmp / f"{dead_pid()}-0123abcd").write_bytes(b"killed writer")
    (tmp / f"{os.getpid()}-live").write_bytes(b"a writer of this process")
    (tmp / "1-other").write_bytes(b"a live process's writer")
    (tmp / "tmpold").write_bytes(b"an older version's name")
    os.utime(tmp / "tmpold", (hour_ago, hour_ago))
    (tmp / "tmpnew").write_bytes(b"an older version's name, just written")
    (d / "blocks" / "XY").mkdir()  # the shard an interrupted writer had just made
    Repo(d)
    assert sorted(p.name for p in tmp.iterdir()) == sorted(
        [f"{os.getpid()}-live", "1-other", "tmpnew"]
    )
    assert not (d / "blocks" / "XY").exists()
    # GC cleans the same way: never the temp file a live writer is about to rename
    Repo(d).gc()
    assert (tmp / f"{os.getpid()}-live").exists()


def test_blocks_are_written_through_pid_named_temp_files(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "d")
    seen: list[str] = []
    real = os.link

    def link(src: object, dst: object, **kw: object) -> None:
        seen.append(Path(str(src)).name)
        real(src, dst, **kw)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "link", link)
        add_bytes(repo, b"x")
    assert seen and all(name.startswith(f"{os.getpid()}-") for name in seen)
    assert list((tmp_path / "d" / "blocks" / ".tmp").iterdir()) == []


def run_flux(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    from fluxnode.node import cli

    for key in list(os.environ):
        if key.startswith("FLUX_"):
            monkeypatch.delenv(key)
    return cli.main(list(argv))


@pytest.mark.parametrize("kind", ["fifo", "symlink", "directory"])
def test_car_export_refuses_to_replace_a_non_regular_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    d = tmp_path / "node"
    cid = add_bytes(Repo(d), b"hello")
    target = tmp_path / "out.car"
    if kind == "fifo":
        os.mkfifo(target)  # stands in for a device node such as /dev/full
    elif kind == "symlink":
        (tmp_path / "elsewhere").write_bytes(b"keep")
        target.symlink_to(tmp_path / "elsewhere")
    else:
        target.mkdir()
    before = os.lstat(target)
    code = run_flux(monkeypatch, "car", "export", "--data-dir", str(d), str(cid), "-o", str(target))
    assert code == 2
    assert "not a regular file" in capsys.readouterr().err
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []
    # a regular file is replaced as before
    regular = tmp_path / "regular.car"
    regular.write_bytes(b"old")
    export = ["car", "export", "--data-dir", str(d), str(cid), "-o", str(regular)]
    assert run_flux(monkeypatch, *export) == 0
    assert regular.read_bytes() != b"old"


def test_cli_car_import_with_no_roots_fails_and_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "node"
    good = Cid.hash_block(b"good", 1, RAW)
    car = tmp_path / "noroots.car"
    car.write_bytes(encode_header([]) + encode_section(good, b"good"))
    assert run_flux(monkeypatch, "car", "import", "--data-dir", str(d), str(car)) == 1
    assert "no root" in capsys.readouterr().err
    assert Repo(d).stat().blocks == 0


def test_get_never_writes_through_a_planted_partial_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "node"
    cid = add_bytes(Repo(d), b"fetched bytes")
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    out = tmp_path / "got.bin"
    (tmp_path / ".got.bin.partial").symlink_to(victim)
    assert run_flux(monkeypatch, "get", "--data-dir", str(d), str(cid), "-o", str(out)) == 0
    assert victim.read_bytes() == b"precious"
    assert out.read_bytes() == b"fetched bytes" and not out.is_symlink()
