"""Leaf blocks written by the threads that read them (storage/leaves.LeafStore): the same blocks
and DAG as the sequential builder, only the leaves of the DAG kept, a denied or failing leaf
undoing the whole add, and `add --only-hash` starting without the config machinery."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from fluxnode.core.cid import Cid
from fluxnode.core.denylist import ContentDenied, Denylist
from fluxnode.core.unixfs import CHUNK_SIZE, Block, FileBuilder, Link
from fluxnode.storage import blockstore
from fluxnode.storage.blockstore import BlockStore
from fluxnode.storage.importer import import_path
from fluxnode.storage.leaves import LeafStore, file_leaves
from fluxnode.storage.repo import Repo


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(3) as p:
        yield p


class Recorder:
    """A LeafStore's two ends, recording what each thread handed over."""

    def __init__(self, on_write: Callable[[Cid], None] | None = None) -> None:
        self.lock = threading.Lock()
        self.written: dict[Cid, bytes] = {}
        self.kept: list[Cid] = []
        self.on_write = on_write

    def write(self, cid: Cid, block: memoryview) -> None:
        with self.lock:
            self.written[cid] = bytes(block)  # the view is only valid during the call
        if self.on_write is not None:
            self.on_write(cid)

    def keep(self, cid: Cid) -> None:
        self.kept.append(cid)

    def store(self) -> LeafStore:
        return LeafStore(self.write, self.keep)


def sequential(data: bytes, version: int, chunk: int, links: int) -> tuple[list[Block], Link]:
    b = FileBuilder(version, chunk_size=chunk, max_links=links)
    blocks = b.write(data)
    rest, root = b.finish()
    return blocks + rest, root


def stored_leaves(
    path: Path, version: int, chunk: int, rec: Recorder, pool: Any, batch: int
) -> tuple[list[Block], Link]:
    """The parents (as built) and root of `path`, its leaves going to `rec`."""
    b = FileBuilder(version, chunk_size=chunk, max_links=3)
    parents: list[Block] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        store = rec.store()
        for leaf in file_leaves(
            fd,
            version,
            False,
            size_hint=size,
            chunk_size=chunk,
            pool=pool,
            store=store,
            batch=batch,
        ):
            assert leaf.block is None
            if leaf.written:
                rec.keep(leaf.link.cid)
            parents += b.add_leaf(leaf.link)
    finally:
        os.close(fd)
    rest, root = b.finish()
    return parents + rest, root


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("batch", [1, 2, 3])
@pytest.mark.parametrize("size", [1, 7, 8, 7 * 12, 7 * 12 + 1, 7 * 29 + 3])
def test_written_leaves_and_built_parents_are_the_sequential_blocks(
    tmp_path: Path, pool: ThreadPoolExecutor, version: int, batch: int, size: int
) -> None:
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    want, want_root = sequential(data, version, 7, 3)
    rec = Recorder()
    parents, root = stored_leaves(path, version, 7, rec, pool, batch)
    assert root == want_root
    # every block once: the leaves through the store, in file order, the rest built here
    assert sorted(rec.kept, key=str) == sorted(rec.written, key=str)
    assert {(c, rec.written[c]) for c in rec.kept} | {(b.cid, b.data) for b in parents} == {
        (b.cid, b.data) for b in want
    }


class InlinePool:
    """Runs each job as it is submitted: every job of the window has run before the first
    result is looked at, so the test decides what a job past the end finds."""

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn())
        except BaseException as exc:  # handed to the consumer, as a pool would
            fut.set_exception(exc)
        return fut


def test_leaves_written_past_an_end_that_moved_are_never_kept(tmp_path: Path) -> None:
    chunk = 7
    path = tmp_path / "f"
    path.write_bytes(os.urandom(2 * chunk + 3))  # the third leaf is the short last one
    grown = [False]

    def grow(cid: Cid) -> None:
        if not grown[0] and len(rec.written[cid]) == 3:
            grown[0] = True  # the file grows right after its short leaf was read
            with path.open("ab") as fh:
                fh.write(os.urandom(3 * chunk))

    rec = Recorder(on_write=grow)
    _, root = stored_leaves(path, 1, chunk, rec, InlinePool(), 1)
    assert grown[0]
    assert len(rec.kept) == 3  # the DAG ends at the short leaf, as a sequential read's does
    beyond = set(rec.written) - set(rec.kept)
    assert beyond  # the window's later jobs read (and wrote) what was appended
    assert root.filesize == 2 * chunk + 3


def test_import_path_with_a_store_hands_the_sink_every_other_block(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    (folder / "sub").mkdir(parents=True)
    big = os.urandom(40 * CHUNK_SIZE + 11)  # batched jobs, a short last leaf, two levels
    (folder / "sub" / "big.bin").write_bytes(big)
    (folder / "small.txt").write_bytes(b"hello")
    (folder / "link").symlink_to("small.txt")
    for version in (0, 1):
        plain: list[Block] = []
        want = import_path(folder, plain.extend, version)
        rec = Recorder()
        others: list[Block] = []
        got = import_path(folder, others.extend, version, store=rec.store())
        assert got == want
        assert {c: rec.written[c] for c in rec.kept} | {b.cid: b.data for b in others} == {
            b.cid: b.data for b in plain
        }
        assert len(rec.kept) == 41 + 1  # 40 full leaves, the short last one, the small file


def test_an_add_with_a_denied_leaf_writes_it_never_and_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "f"
    src.write_bytes(os.urandom(40 * CHUNK_SIZE))
    rec = Recorder()
    import_path(src, lambda blocks: None, 1, store=rec.store())
    denied = rec.kept[25]
    puts: list[Cid] = []
    real = BlockStore.put

    def put(self: BlockStore, cid: Cid, data: Any, **kw: Any) -> bool:
        puts.append(cid)
        return real(self, cid, data, **kw)

    monkeypatch.setattr(BlockStore, "put", put)
    repo = Repo(tmp_path / "d", denylist=Denylist.parse(f"/ipfs/{denied}", "test.deny"))
    with pytest.raises(ContentDenied):
        repo.add(src, cid_version=1)
    assert puts and denied not in puts
    assert list(repo.blocks.iter_cids()) == []
    assert repo.pins.list() == []


def test_add_only_hash_neither_reads_the_config_nor_imports_it(tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(os.urandom(3 * CHUNK_SIZE + 1))
    data_dir = tmp_path / "node"
    data_dir.mkdir()
    (data_dir / "config.toml").write_text("this is not toml [")
    argv = ["add", "--only-hash", "-q", "--data-dir", str(data_dir), str(src)]
    heavy = ("fluxnode.node.config", "fluxnode.node.cli_chain", "fluxnode.node.devnet")
    probe = (
        "import sys\n"
        "from fluxnode.node.cli import main\n"
        f"code = main({argv!r})\n"
        f"print('heavy', [m for m in {heavy!r} if m in sys.modules], file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUX_")}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "heavy []" in out.stderr
    want = Repo(tmp_path / "probe").add(src, only_hash=True).cid
    assert out.stdout.strip() == str(want)
    assert sorted(p.name for p in data_dir.iterdir()) == ["config.toml"]  # nothing created


@pytest.mark.parametrize("version", [0, 1])
def test_a_leaf_write_failing_in_the_kernel_raises_its_own_error_and_undoes_the_add(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int
) -> None:
    src = tmp_path / "f"
    src.write_bytes(os.urandom(40 * CHUNK_SIZE + 5))
    calls = [0]
    real = blockstore.write_all

    def write_all(fd: int, data: bytes | memoryview) -> None:
        view = memoryview(data)  # held by the traceback, as a failing os.write's caller is
        calls[0] += 1
        if calls[0] == 20:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, view)

    monkeypatch.setattr(blockstore, "write_all", write_all)
    repo = Repo(tmp_path / "d")
    with pytest.raises(OSError, match="No space left"):
        repo.add(src, cid_version=version)
    assert list(repo.blocks.iter_cids()) == []
    assert repo.pins.list() == []


def test_version_and_help_still_parse_through_their_parsers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fluxnode import __version__
    from fluxnode.node.cli import main

    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"flux-node {__version__}"
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    listing = capsys.readouterr().out
    assert "add" in listing and "version" in listing and "devnet" in listing
