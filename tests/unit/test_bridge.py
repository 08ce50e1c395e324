"""The asyncio <-> trio bridge, with small test services on the trio side."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from fluxnode.core.errors import BridgeClosed, BridgeCrashed
from fluxnode.p2p import Ask, Request, ServiceIO, TrioBridge

N = 10_000


@dataclass(frozen=True)
class Add(Request[int]):
    a: int
    b: int


@dataclass(frozen=True)
class Boom(Request[None]):
    pass


@dataclass(frozen=True)
class Sleep(Request[str]):
    seconds: float


@dataclass(frozen=True)
class Hang(Request[None]):
    """Runs until cancelled; the service emits ("started",) and ("stopped", how) events."""


@dataclass(frozen=True)
class Double(Ask[int]):
    value: int


@dataclass(frozen=True)
class Slow(Ask[int]):
    pass


class Echo:
    """Echoes every inbox message back as an event; `handle` answers calls."""

    def __init__(self) -> None:
        self.thread: str | None = None
        self.io: ServiceIO | None = None

    async def serve(self, io: ServiceIO) -> None:
        self.thread = threading.current_thread().name
        self.io = io
        io.ready("echo-ready")
        while True:
            msg = await io.receive()
            await io.emit(msg)

    async def handle(self, request: Request[object]) -> object:
        assert self.io is not None
        if isinstance(request, Add):
            return request.a + request.b
        if isinstance(request, Boom):
            raise ValueError("bad request")
        if isinstance(request, Sleep):
            await ServiceIO.sleep(request.seconds)
            return "slept"
        if isinstance(request, Hang):
            await self.io.emit(("started",))
            try:
                await ServiceIO.sleep_forever()
            finally:  # only cancellation gets here
                self.io.emit_nowait(("stopped", "cancelled"))
        raise KeyError(type(request).__name__)


class Producer:
    """Emits `count` numbered events as fast as credit allows (or with emit_nowait)."""

    def __init__(self, count: int, *, lossy: bool = False) -> None:
        self.count = count
        self.lossy = lossy
        self.emitted = 0

    async def serve(self, io: ServiceIO) -> None:
        io.ready(None)
        for i in range(self.count):
            if self.lossy:
                io.emit_nowait(i)
                if i % 50 == 0:
                    await ServiceIO.sleep(0)  # let credit come back now and then
            else:
                await io.emit(i)
            self.emitted += 1
        await io.emit("done")  # waits for credit, so it is never dropped
        await io.sleep_forever()

    async def handle(self, request: Request[object]) -> object:
        raise KeyError(type(request).__name__)


class Crashy:
    def __init__(self, when: str) -> None:
        self.when = when

    async def serve(self, io: ServiceIO) -> None:
        if self.when == "before-ready":
            raise RuntimeError("libp2p exploded during start")
        io.ready(None)
        await io.receive()
        raise RuntimeError("libp2p exploded while running")

    async def handle(self, request: Request[object]) -> object:
        await ServiceIO.sleep_forever()
        return None


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for a state the code under test must reach (fails, rather than hangs, if never)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    pytest.fail("condition never became true")


def _bridge_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("flux-trio")]


@pytest.fixture
async def echo() -> AsyncIterator[TrioBridge[str]]:
    bridge: TrioBridge[str] = TrioBridge(Echo(), max_calls_in_flight=2)
    assert await bridge.start() == "echo-ready"
    try:
        yield bridge
    finally:
        await bridge.aclose()
    assert _bridge_threads() == []


async def test_ten_thousand_messages_each_way_arrive_in_order() -> None:
    echo = Echo()
    bridge: TrioBridge[str] = TrioBridge(echo, inbox_capacity=64, event_capacity=64)
    assert await bridge.start() == "echo-ready"
    assert echo.thread == "flux-trio"

    received: list[object] = []

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
    assert stats.inbox_depth == 0
    assert stats.events_buffered_max <= 64
    await bridge.aclose()
    assert _bridge_threads() == []


async def test_trio_to_asyncio_stream_waits_for_a_slow_consumer() -> None:
    """The producer fills the window and then waits: the asyncio side never buffers more than
    `event_capacity` events, and nothing is dropped."""
    producer = Producer(N)
    bridge: TrioBridge[None] = TrioBridge(producer, event_capacity=16)
    await bridge.start()
    seen: list[object] = []
    events = bridge.events()
    # Consume nothing until the window is full: the producer must then wait.
    await _until(lambda: bridge.statistics().events_buffered >= 16)
    async for event in events:
        seen.append(event)
        if len(seen) % 1000 == 0:
            await asyncio.sleep(0.01)  # slow consumer: the producer must wait, not drop
        if event == "done":
            break
    assert seen == [*range(N), "done"]
    stats = bridge.statistics()
    assert stats.events_dropped == 0
    assert stats.events_buffered_max == 16  # reached the bound, never passed it
    await bridge.aclose()


async def test_emit_nowait_counts_every_event_it_drops() -> None:
    """Delivered + dropped == emitted, with a consumer too slow for the producer."""
    producer = Producer(5_000, lossy=True)
    bridge: TrioBridge[None] = TrioBridge(producer, event_capacity=10)
    await bridge.start()
    delivered = 0
    async for event in bridge.events():
        if event == "done":
            break
        delivered += 1
        if delivered % 10 == 0:
            await asyncio.sleep(0.001)
    stats = bridge.statistics()
    assert stats.events_dropped > 0
    assert delivered + stats.events_dropped == 5_000
    assert stats.events_buffered_max <= 10
    await bridge.aclose()


async def test_emit_nowait_drops_and_counts_when_the_window_is_full() -> None:
    class Lossy:
        async def serve(self, io: ServiceIO) -> None:
            sent = sum(io.emit_nowait(i) for i in range(100))
            io.ready(sent)
            await io.sleep_forever()

        async def handle(self, request: Request[object]) -> object:
            return None

    bridge: TrioBridge[int] = TrioBridge(Lossy(), event_capacity=10)
    assert await bridge.start() == 10
    assert bridge.statistics().events_dropped == 90
    await bridge.aclose()


async def test_calls_return_results_and_remote_errors_concurrently(
    echo: TrioBridge[str],
) -> None:
    slow = asyncio.create_task(echo.call(Sleep(0.2)))
    assert await echo.call(Add(2, 3)) == 5  # not stuck behind the slow call
    with pytest.raises(ValueError, match="bad request"):
        await echo.call(Boom())
    assert await slow == "slept"
    assert echo.running  # a failed call is not a crash
    assert echo.statistics().calls_in_flight == 0


async def test_cancelling_a_call_cancels_its_trio_task_and_frees_its_slot_then(
    echo: TrioBridge[str],
) -> None:
    events = echo.events()
    hangs = [asyncio.create_task(echo.call(Hang())) for _ in range(2)]  # both slots taken
    assert [await asyncio.wait_for(anext(events), 10) for _ in range(2)] == [("started",)] * 2
    assert echo.statistics().calls_in_flight == 2
    hangs[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await hangs[0]
    # The trio task saw the cancellation: it ran its `finally`.
    assert await asyncio.wait_for(anext(events), 10) == ("stopped", "cancelled")
    # Its slot is free again (the other still holds one): a new call gets through.
    assert await asyncio.wait_for(echo.call(Add(1, 1)), 10) == 2
    stats = echo.statistics()
    assert stats.calls_cancelled == 1 and stats.calls_in_flight == 1
    hangs[1].cancel()
    assert await asyncio.wait_for(anext(events), 10) == ("stopped", "cancelled")


async def test_crash_while_running_surfaces_on_asyncio_side() -> None:
    bridge: TrioBridge[None] = TrioBridge(Crashy("running"))
    await bridge.start()
    pending = asyncio.create_task(bridge.call(Hang()))
    await asyncio.sleep(0.05)
    await bridge.send("trigger")
    with pytest.raises(BridgeCrashed) as info:
        await asyncio.wait_for(bridge.wait_closed(), 10)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "exploded while running" in str(info.value.__cause__)
    with pytest.raises(BridgeCrashed):
        await pending
    with pytest.raises(BridgeCrashed):
        await bridge.call(Add(1, 1))
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
    pending = asyncio.create_task(bridge.call(Sleep(60)))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(bridge.aclose(), 5)
    with pytest.raises(BridgeClosed):
        await pending
    assert _bridge_threads() == []
    await bridge.aclose()
    with pytest.raises(BridgeClosed):
        await bridge.call(Add(1, 2))
    with pytest.raises(BridgeClosed):
        await bridge.send(1)


async def test_use_before_start_is_a_clear_error() -> None:
    bridge: TrioBridge[str] = TrioBridge(Echo())
    with pytest.raises(BridgeClosed, match="not started"):
        await bridge.call(Add(1, 2))
    with pytest.raises(ValueError, match="capacities"):
        TrioBridge(Echo(), inbox_capacity=0)
    with pytest.raises(ValueError, match="capacities"):
        TrioBridge(Echo(), max_asks_in_flight=0)


class Asker:
    """Asks the asyncio side for each inbox message and emits the answers."""

    async def serve(self, io: ServiceIO) -> None:
        io.ready(None)
        while True:
            msg = await io.receive()
            io.start_soon(self._ask, io, msg)

    async def _ask(self, io: ServiceIO, msg: object) -> None:
        question: Ask[int] = Slow() if msg == "slow" else Double(int(str(msg)))
        try:
            await io.emit(("ok", msg, await io.ask(question, limit_s=0.5)))
        except Exception as exc:
            await io.emit(("error", msg, type(exc).__name__, str(exc)))

    async def handle(self, request: Request[object]) -> object:
        return None


async def test_trio_side_can_ask_the_asyncio_side() -> None:
    bridge: TrioBridge[None] = TrioBridge(Asker())

    async def responder(question: Ask[object]) -> object:
        assert isinstance(question, Double)
        if question.value == 13:
            raise ValueError("responder refused")
        return question.value * 2

    bridge.set_responder(responder)
    await bridge.start()
    events = bridge.events()
    got = []
    for msg in (21, 13, 5):
        await bridge.send(msg)
        got.append(await asyncio.wait_for(anext(events), 10))
    assert got[0] == ("ok", 21, 42)
    assert got[1] == ("error", 13, "ValueError", "responder refused")
    assert got[2] == ("ok", 5, 10)
    assert bridge.statistics().asks_started == 3
    await bridge.aclose()
    assert _bridge_threads() == []


async def test_a_timed_out_ask_cancels_the_asyncio_work_and_holds_its_slot_until_it_ends() -> None:
    """With one ask slot: the slow ask times out on the trio side, its asyncio work is
    cancelled, but the work refuses to stop at once (like a thread that must finish). The slot
    stays taken, so the next ask waits, until the work has really ended."""
    bridge: TrioBridge[None] = TrioBridge(Asker(), max_asks_in_flight=1)
    log: list[str] = []
    release = asyncio.Event()

    async def responder(question: Ask[object]) -> object:
        if isinstance(question, Slow):
            log.append("slow started")
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                log.append("slow cancelled")
                while not release.is_set():  # cannot stop yet, however often it is told
                    with contextlib.suppress(asyncio.CancelledError):
                        await release.wait()
                log.append("slow ended")
                raise
            return 0
        assert isinstance(question, Double)
        log.append("double started")
        return question.value * 2

    bridge.set_responder(responder)
    await bridge.start()
    events = bridge.events()
    await bridge.send("slow")
    assert await asyncio.wait_for(anext(events), 10) == (
        "error",
        "slow",
        "TimeoutError",
        "ask Slow timed out after 0.5 s",
    )
    assert log == ["slow started", "slow cancelled"]
    stats = bridge.statistics()
    assert stats.asks_timed_out == 1 and stats.asks_in_flight == 1
    await bridge.send(4)
    await _until(lambda: bridge.statistics().asks_waiting == 1)  # the ask for 4 waits for a slot
    assert log == ["slow started", "slow cancelled"]  # it has not reached the responder
    release.set()
    assert await asyncio.wait_for(anext(events), 10) == ("ok", 4, 8)
    assert log == ["slow started", "slow cancelled", "slow ended", "double started"]
    stats = bridge.statistics()
    assert stats.asks_in_flight == 0 and stats.asks_cancelled == 1
    await bridge.aclose()


async def test_the_asyncio_side_enforces_the_ask_deadline_itself() -> None:
    """Even if the trio side's cancel never came, the asyncio work stops at `limit_s`."""
    seen: list[str] = []

    class Patient:
        async def serve(self, io: ServiceIO) -> None:
            io.ready(None)
            await io.receive()
            # Bypass the trio-side deadline: a very long one, so only asyncio's can act.
            io._bridge._post(io._bridge._start_ask, 10**6, Slow(), 0.2, None)
            await io.sleep_forever()

        async def handle(self, request: Request[object]) -> object:
            return None

    bridge: TrioBridge[None] = TrioBridge(Patient())
    done = asyncio.Event()

    async def responder(question: Ask[object]) -> object:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("cancelled")
            done.set()
            raise
        return 0

    bridge.set_responder(responder)
    await bridge.start()
    await bridge.send("go")
    await asyncio.wait_for(done.wait(), 10)
    assert seen == ["cancelled"]
    assert bridge.statistics().asks_cancelled == 1
    await bridge.aclose()


async def test_ask_blocking_waits_for_the_answer_and_is_bounded() -> None:
    class BlockingAsker:
        async def serve(self, io: ServiceIO) -> None:
            io.ready(None)
            while True:
                msg = await io.receive()
                try:
                    value: object = io.ask_blocking(Double(int(str(msg))), limit_s=0.3)
                except TimeoutError as exc:
                    value = f"timeout: {exc}"
                await io.emit(value)

        async def handle(self, request: Request[object]) -> object:
            return None

    async def responder(question: Ask[object]) -> object:
        assert isinstance(question, Double)
        if question.value < 0:
            await asyncio.sleep(60)
        return question.value * 2

    bridge: TrioBridge[None] = TrioBridge(BlockingAsker())
    bridge.set_responder(responder)
    await bridge.start()
    events = bridge.events()
    await bridge.send(21)
    assert await asyncio.wait_for(anext(events), 10) == 42
    await bridge.send(-1)
    assert await asyncio.wait_for(anext(events), 10) == "timeout: ask Double timed out after 0.3 s"
    stats = bridge.statistics()
    assert stats.asks_timed_out == 1
    await bridge.aclose()
    assert _bridge_threads() == []
