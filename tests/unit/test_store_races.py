"""Writers racing each other, GC and rollbacks on one data dir, each with its own Repo handle
(the CLI commands are separate processes; flock on separate open files behaves the same between
threads). Orderings are forced with events, never with sleeps."""

from __future__ import annotations

import io
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fluxnode.core.car import encode_header, encode_section
from fluxnode.core.cid import Cid
from fluxnode.storage.blockstore import BlockHashMismatch
from fluxnode.storage.dag import walk
from fluxnode.storage.repo import Repo

MiB = 1 << 20
WAIT_S = 60.0  # only a bound on a broken test: every wait below ends on an event


def payload(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


class Gated(io.BytesIO):
    """A stream that runs `hook` once, the first time it is read at or past `at`."""

    def __init__(self, data: bytes, at: int, hook: Callable[[], None]) -> None:
        super().__init__(data)
        self.at = at
        self.hook: Callable[[], None] | None = hook

    def _gate(self) -> None:
        if self.hook is not None and self.tell() >= self.at:
            hook, self.hook = self.hook, None
            hook()

    def read(self, n: int | None = -1) -> bytes:
        self._gate()
        return super().read(n)

    def readinto(self, b: Any) -> int:
        self._gate()
        return super().readinto(b)


def wait(event: threading.Event) -> None:
    if not event.wait(WAIT_S):
        raise AssertionError("the other writer never got there")


class Runner(threading.Thread):
    """A thread that keeps what its target returned or raised."""

    def __init__(self, target: Callable[[], object]) -> None:
        super().__init__(daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None
        self.result: object = None

    def run(self) -> None:
        try:
            self.result = self._target_fn()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def finish(self) -> None:
        self.join(WAIT_S)
        assert not self.is_alive(), "thread did not finish"


def car_of(data: bytes, tmp_path: Path) -> tuple[Cid, bytes, int]:
    """A CAR of `data` as `add` imports it; also the offset of its last section."""
    src = Repo(tmp_path / "src")
    cid = src.add(io.BytesIO(data)).cid  # type: ignore[arg-type]
    sections = [encode_section(c, d) for c, d in walk(src.blocks, cid)]
    car = encode_header([cid]) + b"".join(sections)
    return cid, car, len(car) - len(sections[-1])


def assert_pinned_and_whole(data_dir: Path, cid: Cid, data: bytes) -> None:
    repo = Repo(data_dir)
    assert repo.verify().missing_in_pins == ()
    assert repo.pins.is_pinned(cid)
    assert b"".join(repo.cat(cid, [])) == data


# -- a failed writer's rollback vs a writer relying on the same blocks ----------------------------


@pytest.mark.parametrize("failing", ["car_import", "add"])
@pytest.mark.parametrize("relying", ["add", "car_import"])
@pytest.mark.parametrize("order", ["pin_before_rollback", "rollback_before_pin"])
def test_a_failed_writer_never_deletes_blocks_another_writer_pins(
    tmp_path: Path, failing: str, relying: str, order: str
) -> None:
    data = payload(3 * MiB + 100_000)
    cid, car, last_section = car_of(data, tmp_path)
    d = tmp_path / "node"
    a_wrote, b_found, a_failing = threading.Event(), threading.Event(), threading.Event()
    b_done = threading.Event()

    def a_gate() -> None:  # the failing writer: has written blocks, is about to fail
        a_wrote.set()
        wait(b_done if order == "pin_before_rollback" else b_found)
        a_failing.set()
        if failing == "add":
            raise OSError("input went away")

    def b_gate() -> None:  # the relying writer: found A's blocks present, has not pinned yet
        b_found.set()
        if order == "rollback_before_pin":
            wait(a_failing)

    a_repo, b_repo = Repo(d), Repo(d)
    if failing == "car_import":
        bad = bytearray(car)
        bad[-1] ^= 0xFF  # the last block no longer hashes to its CID
        a = Runner(lambda: a_repo.import_car(Gated(bytes(bad), last_section, a_gate)))
    else:
        a = Runner(lambda: a_repo.add(Gated(data, 2 * MiB, a_gate)))  # type: ignore[arg-type]
    if relying == "add":
        b = Runner(lambda: b_repo.add(Gated(data, 2 * MiB, b_gate)))  # type: ignore[arg-type]
    else:
        b = Runner(lambda: b_repo.import_car(Gated(car, last_section, b_gate)))

    a.start()
    wait(a_wrote)
    b.start()
    if order == "pin_before_rollback":
        b.finish()
        b_done.set()
    a.finish()
    b.finish()
    assert isinstance(a.error, BlockHashMismatch if failing == "car_import" else OSError)
    assert b.error is None
    assert_pinned_and_whole(d, cid, data)


def test_a_failed_import_alone_still_removes_what_it_wrote_and_its_empty_shards(
    tmp_path: Path,
) -> None:
    data = payload(MiB)
    _, car, _ = car_of(data, tmp_path)
    bad = bytearray(car)
    bad[-1] ^= 0xFF
    repo = Repo(tmp_path / "node")
    with pytest.raises(BlockHashMismatch):
        repo.import_car(io.BytesIO(bytes(bad)))
    assert repo.stat().blocks == 0
    left = sorted(p.name for p in (tmp_path / "node" / "blocks").iterdir())
    assert left == [".gc.lock", ".tmp"]  # no empty shard folders either


# -- GC vs a writer between its walk (or fetch) and its pin ---------------------------------------


def _lock_has_waiter(lock_path: Path) -> bool:
    """Does /proc/locks show a process waiting for the flock on `lock_path`?"""
    ino = os.stat(lock_path).st_ino
    with open("/proc/locks") as fh:
        for line in fh:
            fields = line.split()
            if "->" not in fields or "FLOCK" not in fields:
                continue
            dev = next((f for f in fields if f.count(":") == 2), "")
            if dev.rsplit(":", 1)[-1] == str(ino):
                return True
    return False


def wait_blocked_or_done(lock_path: Path, thread: threading.Thread) -> None:
    """Return once `thread` waits for the store lock or has finished."""
    deadline = time.monotonic() + WAIT_S
    while thread.is_alive() and not _lock_has_waiter(lock_path):
        if time.monotonic() > deadline:
            raise AssertionError("GC neither finished nor waited for the lock")
        time.sleep(0.002)


needs_proc_locks = pytest.mark.skipif(
    not os.path.exists("/proc/locks"), reason="needs Linux /proc/locks"
)


@needs_proc_locks
def test_gc_between_a_pins_walk_and_its_commit_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fluxnode.storage.pins as pins_mod

    data = payload(MiB)
    d = tmp_path / "node"
    cid = Repo(d).add(io.BytesIO(data), pin=False).cid  # type: ignore[arg-type]
    gc_repo = Repo(d)
    gc = Runner(gc_repo.gc)
    real = pins_mod.reachable

    def reachable_then_gc(store: Any, root: Cid, progress: Any = None) -> set[bytes]:
        blocks = real(store, root, progress)
        gc.start()  # `flux-node gc` in another process, right after the walk
        wait_blocked_or_done(d / "blocks" / ".gc.lock", gc)
        return blocks

    monkeypatch.setattr(pins_mod, "reachable", reachable_then_gc)
    Repo(d).pins.add(cid)
    gc.finish()
    assert gc.error is None
    assert_pinned_and_whole(d, cid, data)


@needs_proc_locks
def test_hosting_fetch_holds_off_gc_until_the_pin_commits(tmp_path: Path) -> None:
    import asyncio

    from fluxnode.core.replication import HostingPolicy
    from fluxnode.node.hosting import Hosting

    data = payload(MiB)
    src = Repo(tmp_path / "src")
    cid = src.add(io.BytesIO(data)).cid  # type: ignore[arg-type]
    d = tmp_path / "node"
    repo = Repo(d)
    gc = Runner(Repo(d).gc)

    class Host:
        """Blocks arrive through the p2p side; a GC starts in another process meanwhile."""

        async def provide(self, cid: Any) -> None:
            return None

        async def fetch_world(self, root: Any, hints: Any) -> int:
            for block_cid, block in walk(src.blocks, cid):
                repo.blocks.put(block_cid, block)
            gc.start()
            await asyncio.to_thread(wait_blocked_or_done, d / "blocks" / ".gc.lock", gc)
            return 0

    hosting = Hosting(
        me="me",
        host=Host(),  # type: ignore[arg-type]
        repo=repo,
        worlds=None,  # type: ignore[arg-type]
        policy=HostingPolicy(),
        interval_s=10.0,
    )
    asyncio.run(hosting._pin(str(cid), "0xabc/w", 0.0))
    gc.finish()
    assert hosting.stats.pinned == 1 and hosting.stats.fetch_failures == 0
    assert_pinned_and_whole(d, cid, data)


def test_hosting_neither_renames_nor_releases_the_operators_pins(tmp_path: Path) -> None:
    import asyncio

    from fluxnode.core.replication import HostingPolicy
    from fluxnode.node.hosting import Hosting

    class Host:  # every block is here already
        async def provide(self, cid: Any) -> None:
            return None

        async def fetch_world(self, root: Any, hints: Any) -> int:
            return 0

    repo = Repo(tmp_path / "node")
    mine = repo.add(io.BytesIO(payload(1000, 1)), name="mine").cid  # type: ignore[arg-type]
    other = repo.add(io.BytesIO(payload(1000, 2)), pin=False).cid  # type: ignore[arg-type]
    repo.pins.add(other, recursive=False, name="op")
    hosting = Hosting(
        me="me",
        host=Host(),  # type: ignore[arg-type]
        repo=repo,
        worlds=None,  # type: ignore[arg-type]
        policy=HostingPolicy(),
        interval_s=10.0,
    )

    async def scenario() -> None:
        await hosting._pin(str(mine), "0xabc/mine", 0.0)
        await hosting._pin(str(other), "0xabc/other", 0.0)
        await hosting._release(str(other), "0xabc/other", "superseded")

    asyncio.run(scenario())
    pins = sorted((p.cid, p.mode, p.name) for p in repo.pins.list())
    assert pins == sorted([(str(mine), "recursive", "mine"), (str(other), "direct", "op")])
