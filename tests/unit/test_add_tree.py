"""`flux-node add` of bad trees: a clear error, exit 1, nothing stored; each entry read once."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fluxnode.core.cid import Cid
from fluxnode.core.content import Kind
from fluxnode.node.cli import main
from fluxnode.storage.repo import Repo

MiB = 1 << 20


@pytest.fixture(autouse=True)
def _no_flux_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("FLUX_")]:
        monkeypatch.delenv(key)


def add(data_dir: Path, path: Path | bytes, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`flux-node add -q` in this process: (exit code, stderr); stdout must be a CID or empty."""
    code = main(["add", "-q", "--data-dir", str(data_dir), os.fsdecode(path)])
    out = capsys.readouterr()
    assert (out.out == "") == (code != 0)
    return code, out.out.strip() if code == 0 else out.err


def nothing_stored(data_dir: Path) -> bool:
    if not (data_dir / "blocks").exists():
        return True
    repo = Repo(data_dir)
    return not list(repo.blocks.iter_cids()) and not repo.pins.list()


def test_a_symlink_loop_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    code, err = add(tmp_path / "node", loop, capsys)
    assert code == 1
    assert err == f"flux-node: error: cannot read {loop}: Too many levels of symbolic links\n"
    assert nothing_stored(tmp_path / "node")


def test_a_loop_inside_the_tree_is_stored_as_a_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_bytes(b"a")
    (tree / "loop").symlink_to("loop")
    code, cid = add(tmp_path / "node", tree, capsys)
    assert code == 0
    repo = Repo(tmp_path / "node")
    entry = repo.exporter.resolve(Cid.parse(cid), ["loop"])
    assert entry.kind is Kind.SYMLINK
    assert repo.exporter.read_link(entry.cid) == "loop"


def test_nesting_is_bounded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / "deep"
    fd = os.open(tmp_path, os.O_RDONLY)
    try:  # built through descriptors: the whole path is longer than PATH_MAX
        os.mkdir("deep", dir_fd=fd)
        for _ in range(200):
            child = os.open("deep", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
            os.mkdir("deep", dir_fd=fd)
        with open(os.open("x.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
            f.write(b"x")
    finally:
        os.close(fd)
    code, err = add(tmp_path / "node", deep, capsys)
    assert code == 1
    assert "folders nested deeper than 128 levels" in err
    assert nothing_stored(tmp_path / "node")


def test_a_name_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_bytes(b"a")
    os.close(os.open(os.fsencode(tree) + b"/bad-\xff", os.O_WRONLY | os.O_CREAT, 0o644))
    code, err = add(tmp_path / "node", tree, capsys)
    assert code == 1
    assert err == f"flux-node: error: {tree}/bad-\\xff: file name is not valid UTF-8\n"
    assert nothing_stored(tmp_path / "node")


def test_a_link_target_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_bytes(b"a")
    os.symlink(b"target-\xff", os.fsencode(tree) + b"/link")
    code, err = add(tmp_path / "node", tree, capsys)
    assert code == 1
    assert err == f"flux-node: error: {tree}/link: link target is not valid UTF-8\n"
    assert nothing_stored(tmp_path / "node")


def test_a_folder_that_cannot_be_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    (tree / "locked").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"a" * 1000)
    (tree / "locked" / "b.txt").write_bytes(b"b")
    real = os.scandir
    locked = (tree / "locked").stat().st_ino

    def scandir(path: Any = ".") -> Any:
        # As root, chmod 000 does not stop a listing: refuse it here, as the kernel would.
        if isinstance(path, int) and os.fstat(path).st_ino == locked:
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code, err = add(tmp_path / "node", tree, capsys)
    assert code == 1
    assert err == f"flux-node: error: cannot list {tree}/locked: Permission denied\n"
    assert nothing_stored(tmp_path / "node")


def test_the_quota_estimate_skips_what_add_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = tmp_path / "node"
    node.mkdir()
    (node / "config.toml").write_text('[storage]\nmax_size = "1MiB"\n')
    tree = tmp_path / "tree"
    (tree / ".git").mkdir(parents=True)
    (tree / ".git" / "pack").write_bytes(b"\0" * (2 * MiB))  # hidden: never imported
    (tree / "a.txt").write_bytes(b"a" * 1000)
    code, cid = add(node, tree, capsys)
    assert code == 0
    assert cid.startswith("Qm")


class _Listing:
    """What os.scandir returns, already read: an iterator usable with and without `with`."""

    def __init__(self, entries: list[Any]) -> None:
        self._it = iter(entries)

    def __iter__(self) -> _Listing:
        return self

    def __next__(self) -> Any:
        return next(self._it)

    def close(self) -> None:
        return None

    def __enter__(self) -> _Listing:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def after_listing(monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None]) -> None:
    real = os.scandir

    def scandir(path: Any = ".") -> Any:
        with real(path) as it:
            entries = _Listing(list(it))
        swap()
        return entries

    monkeypatch.setattr(os, "scandir", scandir)


def test_a_file_swapped_for_a_link_after_the_listing_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    secret = tmp_path / "secret"
    secret.write_bytes(b"not for the store")
    (tree / "a.txt").write_bytes(b"a")
    listings: list[bool] = []

    def swap() -> None:
        listings.append(True)
        if len(listings) == 2:  # the first listing is the quota estimate's, the second the import's
            (tree / "a.txt").unlink()
            (tree / "a.txt").symlink_to(secret)

    after_listing(monkeypatch, swap)
    code, cid = add(tmp_path / "node", tree, capsys)
    assert code == 0
    repo = Repo(tmp_path / "node")
    entry = repo.exporter.resolve(Cid.parse(cid), ["a.txt"])
    assert entry.kind is Kind.SYMLINK  # stored as what it now is, a link; never its target
    assert repo.exporter.read_link(entry.cid) == str(secret)
