"""`Node.publish` answers once the record is stored and gossiped; the best-effort DHT put and
provide run afterwards as tasks of the node's TaskGroup, are awaited (or cancelled after a
grace) when the node stops, and every failure is counted, never fatal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fluxnode.chain.keys import WalletKey
from fluxnode.chain.records import sign_record
from fluxnode.core.cid import Cid
from fluxnode.core.errors import OperationTimedOut
from fluxnode.node.config import CliOverrides, load_config
from fluxnode.node.daemon import Node
from fluxnode.node.worlds import WORLDS_TOPIC
from fluxnode.p2p import HostInfo

KEY = WalletKey.from_secret(bytes.fromhex("11" * 32))
CID = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"


class FakeHost:
    """Gossip publishes at once; the DHT put waits until the test releases it."""

    def __init__(self) -> None:
        self.published: list[str] = []
        self.put_started = asyncio.Event()
        self.release = asyncio.Event()
        self.put_error: Exception | None = None
        self.provide_error: Exception | None = None
        self.provided: list[Cid] = []
        self.puts: list[bytes] = []

    async def publish(self, topic: str, data: bytes) -> None:
        self.published.append(topic)

    async def dht_put(self, key: str, value: bytes) -> None:
        self.puts.append(value)
        self.put_started.set()
        await self.release.wait()
        if self.put_error is not None:
            raise self.put_error

    async def provide(self, cid: Cid) -> bool:
        if self.provide_error is not None:
            raise self.provide_error
        self.provided.append(cid)
        return True


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[Node, FakeHost]]:
    cfg = load_config(CliOverrides(data_dir=str(tmp_path)), env={})
    host = FakeHost()
    n = Node(cfg, host, HostInfo("12D3KooWtest", ()), None)  # type: ignore[arg-type]
    yield n, host
    assert n.worlds.store is not None
    await n.worlds.store.aclose()


def record_wire(seq: int = 1) -> bytes:
    record = sign_record(
        world_id=f"{KEY.address.lower()}/plaza",
        cid=CID,
        seq=seq,
        visibility="public",
        issued_at=int(time.time()),
        account=KEY,
    )
    return record.to_wire()


async def test_publish_answers_before_the_dht_work_and_the_group_owns_it(
    node: tuple[Node, FakeHost],
) -> None:
    n, host = node
    async with asyncio.TaskGroup() as tg:
        n.tasks = tg
        answer = await n.publish(record_wire())
        assert answer["seq"] == 1 and answer["cid"] == CID
        assert host.published == [WORLDS_TOPIC]
        assert n.worlds.book.get(answer["world_id"]) is not None  # stored before answering
        await host.put_started.wait()
        assert n.announce.started == 1 and n.announce.done == 0  # still in flight
        host.release.set()
        await n.wait_announced()
    assert n.announce.done == 1 and n.announce.failed == 0
    assert host.provided == [Cid.parse(CID)]


async def test_stopping_cancels_dht_work_past_the_grace_and_awaits_it(
    node: tuple[Node, FakeHost],
) -> None:
    n, host = node
    async with asyncio.TaskGroup() as tg:
        n.tasks = tg
        await n.publish(record_wire())
        await host.put_started.wait()
        await n.wait_announced(grace_s=0)  # the put never finishes on its own
        assert not n._announcers  # nothing left running when the host closes
    assert n.announce.cancelled == 1 and n.announce.done == 0


async def test_dht_failures_are_counted_and_never_end_the_node(
    node: tuple[Node, FakeHost], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="fluxnode.node")
    n, host = node
    host.put_error = OperationTimedOut("no DHT peer answered")
    host.provide_error = RuntimeError("a bug in provide")
    host.release.set()
    async with asyncio.TaskGroup() as tg:
        n.tasks = tg
        await n.publish(record_wire())
        await n.wait_announced()
    assert n.announce.started == 1 and n.announce.done == 1
    assert n.announce.failed == 2
    assert n.announce.last_error is not None and "a bug in provide" in n.announce.last_error
    assert "no DHT peer answered" in caplog.text


async def test_publish_outside_the_task_group_announces_before_answering(
    node: tuple[Node, FakeHost],
) -> None:
    n, host = node
    host.release.set()
    await n.publish(record_wire())  # no TaskGroup yet: nothing could own a task
    assert n.announce.done == 1 and host.provided == [Cid.parse(CID)]
    async with asyncio.TaskGroup() as tg:
        n.tasks = tg
    await n.publish(record_wire(seq=2))  # the group has finished: the same
    assert n.announce.done == 2


def test_status_shows_the_announce_counters(node: Any) -> None:
    n, _ = node
    from dataclasses import asdict

    assert asdict(n.announce) == {
        "started": 0,
        "done": 0,
        "failed": 0,
        "cancelled": 0,
        "superseded": 0,
        "last_error": None,
    }


async def test_records_of_one_world_queued_behind_a_put_coalesce_to_the_newest(
    node: tuple[Node, FakeHost],
) -> None:
    n, host = node
    wires = [record_wire(seq) for seq in (1, 2, 3)]
    async with asyncio.TaskGroup() as tg:
        n.tasks = tg
        await n.publish(wires[0])
        await host.put_started.wait()  # seq 1 is being put; 2 and 3 wait their turn
        await n.publish(wires[1])
        answer = await n.publish(wires[2])
        assert answer["seq"] == 3  # every publish is answered at once
        host.release.set()
        await n.wait_announced()
    assert host.puts == [wires[0], wires[2]]  # seq 2 was replaced before its turn
    assert n.announce.superseded == 1 and n.announce.done == 2
    assert not n._announcers and not n._announce_next


async def test_a_record_published_as_the_worker_ends_is_still_announced(
    node: tuple[Node, FakeHost],
) -> None:
    n, host = node
    host.release.set()
    wires = [record_wire(seq) for seq in range(1, 6)]
    async with asyncio.TaskGroup() as tg:
        n.tasks = tg
        for wire in wires:
            await n.publish(wire)
            await asyncio.sleep(0)  # let the worker run, and end, between publications
        await n.wait_announced()
    assert host.puts[-1] == wires[-1]
    assert n.announce.done + n.announce.superseded == 5
