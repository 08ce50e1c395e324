"""The asyncio <-> trio bridge, with small test services on the trio side."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from fluxnode.core.errors import BridgeClosed, BridgeCrashed
from fluxnode.p2p import ServiceIO, TrioBridge

N = 10_000


class Echo:
    """Echoes every inbox message back as an event; `handle` answers calls."""

    def __init__(self) -> None:
        self.thread: str | None = None

    async def serve(self, io: ServiceIO) -> None:
        self.thread = threading.current_thread().name
        io.ready("echo-ready")
        while True:
            msg = await io.receive()
            await io.emit(msg)

    async def handle(self, op: str, arg: Any) -> Any:
        if op == "add":
            return arg[0] + arg[1]
        if op == "boom":
            raise ValueError("bad request")
        if op == "sleep":
            await ServiceIO.sleep(arg)
            return "slept"
        raise KeyError(op)


class Producer:
    """Emits `count` numbered events as fast as credit allows."""

    def __init__(self, count: int) -> None:
        self.count = count

    async def serve(self, io: ServiceIO) -> None:
        io.ready(None)
        for i in range(self.count):
            await io.emit(i)
        await io.sleep_forever()

    async def handle(self, op: str, arg: Any) -> Any:
        raise KeyError(op)


class Crashy:
    def __init__(self, when: str) -> None:
        self.when = when

    async def serve(self, io: ServiceIO) -> None:
        if self.when == "before-ready":
            raise RuntimeError("libp2p exploded during start")
        io.ready(None)
        await io.receive()
        raise RuntimeError("libp2p exploded while running")

    async def handle(self, op: str, arg: Any) -> Any:
        await ServiceIO.sleep_forever()


def _bridge_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("flux-trio")]


async def test_ten_thousand_messages_each_way_arrive_in_order() -> None:
    echo = Echo()
    bridge: TrioBridge[str] = TrioBridge(echo, inbox_capacity=64, event_capacity=64)
    assert await bridge.start() == "echo-ready"
    assert echo.thread == "flux-trio"

    received: list[int] = []

    async def consume() -> None:
        async for event in bridge.events():
            received.append(event)
            if len(received) == N:
                return

    consumer = asyncio.create_task(consume())
    for i in range(N):
        await bridge.send(i)
    await asyncio.wait_for(consumer, 60)
    assert received == list(range(N))
    stats = bridge.statistics()
    assert stats.sent == N and stats.received_events == N and stats.events_dropped == 0
    await bridge.aclose()
    assert _bridge_threads() == []


async def test_trio_to_asyncio_stream_waits_for_a_slow_consumer() -> None:
    bridge: TrioBridge[None] = TrioBridge(Producer(N), event_capacity=16)
    await bridge.start()
    seen = []
    async for event in bridge.events():
        seen.append(event)
        if len(seen) % 1000 == 0:
            await asyncio.sleep(0.01)  # slow consumer: the producer must wait, not drop
        if len(seen) == N:
            break
    assert seen == list(range(N))
    assert bridge.statistics().events_dropped == 0
    await bridge.aclose()


async def test_emit_nowait_drops_and_counts_when_the_window_is_full() -> None:
    class Lossy:
        async def serve(self, io: ServiceIO) -> None:
            sent = sum(io.emit_nowait(i) for i in range(100))
            io.ready(sent)
            await io.sleep_forever()

        async def handle(self, op: str, arg: Any) -> Any:
            return None

    bridge: TrioBridge[int] = TrioBridge(Lossy(), event_capacity=10)
    assert await bridge.start() == 10
    assert bridge.statistics().events_dropped == 90
    await bridge.aclose()


async def test_calls_return_results_and_remote_errors_concurrently() -> None:
    bridge: TrioBridge[str] = TrioBridge(Echo())
    await bridge.start()
    slow = asyncio.create_task(bridge.call("sleep", 0.2))
    assert await bridge.call("add", (2, 3)) == 5  # not stuck behind the slow call
    with pytest.raises(ValueError, match="bad request"):
        await bridge.call("boom")
    assert await slow == "slept"
    assert bridge.running  # a failed call is not a crash
    await bridge.aclose()


async def test_crash_while_running_surfaces_on_asyncio_side() -> None:
    bridge: TrioBridge[None] = TrioBridge(Crashy("running"))
    await bridge.start()
    pending = asyncio.create_task(bridge.call("hang"))
    await asyncio.sleep(0.05)
    await bridge.send("trigger")
    with pytest.raises(BridgeCrashed) as info:
        await asyncio.wait_for(bridge.wait_closed(), 10)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "exploded while running" in str(info.value.__cause__)
    with pytest.raises(BridgeCrashed):
        await pending
    with pytest.raises(BridgeCrashed):
        await bridge.call("add", (1, 1))
    await bridge.aclose()
    assert _bridge_threads() == []


async def test_crash_before_ready_is_raised_by_start() -> None:
    bridge: TrioBridge[None] = TrioBridge(Crashy("before-ready"))
    with pytest.raises(BridgeCrashed, match="before ready") as info:
        await bridge.start()
    assert "during start" in str(info.value.__cause__)
    await bridge.aclose()
    assert _bridge_threads() == []


async def test_close_joins_thread_fails_pending_calls_and_is_idempotent() -> None:
    bridge: TrioBridge[str] = TrioBridge(Echo())
    await bridge.start()
    pending = asyncio.create_task(bridge.call("sleep", 60))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(bridge.aclose(), 5)
    with pytest.raises(BridgeClosed):
        await pending
    assert _bridge_threads() == []
    await bridge.aclose()
    with pytest.raises(BridgeClosed):
        await bridge.call("add", (1, 2))
    with pytest.raises(BridgeClosed):
        await bridge.send(1)


async def test_use_before_start_is_a_clear_error() -> None:
    bridge: TrioBridge[str] = TrioBridge(Echo())
    with pytest.raises(BridgeClosed, match="not started"):
        await bridge.call("add", (1, 2))
    with pytest.raises(ValueError, match="capacities"):
        TrioBridge(Echo(), inbox_capacity=0)


class Asker:
    """Asks the asyncio side for each inbox message and emits the answers."""

    async def serve(self, io: ServiceIO) -> None:
        io.ready(None)
        while True:
            msg = await io.receive()
            try:
                await io.emit(("ok", await io.ask("double", msg, limit_s=2.0)))
            except Exception as exc:
                await io.emit(("error", type(exc).__name__, str(exc)))

    async def handle(self, op: str, arg: Any) -> Any:
        return None


async def test_trio_side_can_ask_the_asyncio_side() -> None:
    bridge: TrioBridge[None] = TrioBridge(Asker())

    async def responder(op: str, arg: Any) -> Any:
        if arg == "boom":
            raise ValueError("responder refused")
        if arg == "slow":
            await asyncio.sleep(10)
        return arg * 2

    bridge.set_responder(responder)
    await bridge.start()
    events = bridge.events()
    for msg in (21, "boom", "slow", 5):
        await bridge.send(msg)
    got = [await asyncio.wait_for(anext(events), 10) for _ in range(4)]
    assert got[0] == ("ok", 42)
    assert got[1] == ("error", "ValueError", "responder refused")
    assert got[2][:2] == ("error", "TimeoutError")
    assert got[3] == ("ok", 10)
    await bridge.aclose()
    assert _bridge_threads() == []
