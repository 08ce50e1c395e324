"""The asyncio <-> trio bridge: the ONE module of Flux node that imports trio.

py-libp2p is written for trio; aiohttp, aiortc and web3 are asyncio. Rather than mixing loops
(trio-asyncio needs patches for web3), a `TrioBridge` runs a service under `trio.run` in one
dedicated thread and talks to the asyncio side with plain messages only:

* `call(op, arg)`      request/response, run concurrently on the trio side;
* `send(msg)`          an ordered one-way inbox to the service, with credit-based backpressure;
* `events()`           an ordered one-way outbox from the service, with credit-based
                       backpressure (`emit`) or drop-and-count (`emit_nowait`);
* `ServiceIO.ask()`    the reverse request/response: the trio side asks an asyncio-side
                       responder (set with `set_responder`), e.g. to validate a gossip message
                       against the chain before it is relayed. Bounded by a semaphore.

Both directions are bounded: a sender waits for credit (or drops and counts), it never grows a
queue without limit and never blocks the other loop. Because nothing but plain data crosses, the
service can later move to its own process without its callers changing.

Services receive a `ServiceIO` and use it for everything trio-specific (sleep, timeouts, spawning),
so this stays the only module that touches trio. An exception inside the service stops the bridge
and surfaces on the asyncio side as `BridgeCrashed` from every pending and later call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import trio

from fluxnode.core.errors import BridgeClosed, BridgeCrashed

T = TypeVar("T")
ReadyT = TypeVar("ReadyT")
ReadyT_co = TypeVar("ReadyT_co", covariant=True)


class BridgeService(Protocol[ReadyT_co]):
    """What runs on the trio side of a bridge."""

    async def serve(self, io: ServiceIO) -> None:
        """Run until cancelled. Must call `io.ready(value)` once it is able to serve."""

    async def handle(self, op: str, arg: Any) -> Any:
        """Answer one `TrioBridge.call`. Raising sends the exception back to the caller."""


@dataclass(frozen=True)
class BridgeStats:
    calls_started: int
    calls_in_flight: int
    sent: int
    received_events: int
    events_dropped: int


class ServiceIO:
    """The trio-side handle a service gets: inbox, outbox, and the trio primitives it needs."""

    def __init__(self, bridge: TrioBridge[Any], nursery: trio.Nursery, inbox_capacity: int):
        self._bridge = bridge
        self._nursery = nursery
        self._ask_slots = trio.Semaphore(bridge.max_asks_in_flight)
        self._inbox_send, self._inbox_recv = trio.open_memory_channel[Any](inbox_capacity)
        self._credits = bridge.event_capacity
        self._credit_returned = trio.Event()
        self._consumed = 0
        self._inbox_capacity = inbox_capacity
        self.events_dropped = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def ready(self, value: Any) -> None:
        """Tell the asyncio side the service is up; `TrioBridge.start()` returns `value`."""
        self._bridge._post(self._bridge._on_ready, value)

    # -- inbox (asyncio -> trio, ordered) ------------------------------------------------------
    async def receive(self) -> Any:
        msg = await self._inbox_recv.receive()
        self._consumed += 1
        # Return credit in batches: one cross-thread wake-up per quarter of the window, or at
        # once when the inbox runs dry so a waiting sender never stalls.
        if (
            self._consumed >= max(1, self._inbox_capacity // 4)
            or self._inbox_recv.statistics().current_buffer_used == 0
        ):
            n, self._consumed = self._consumed, 0
            self._bridge._post(self._bridge._return_send_credit, n)
        return msg

    def _deliver(self, msg: Any) -> None:
        # Never overflows: the asyncio side holds at most `inbox_capacity` credits.
        self._inbox_send.send_nowait(msg)

    # -- outbox (trio -> asyncio, ordered) ------------------------------------------------------
    async def emit(self, event: Any) -> None:
        """Send an event to the asyncio side, waiting while its window is full."""
        while self._credits == 0:
            self._credit_returned = trio.Event()
            await self._credit_returned.wait()
        self._credits -= 1
        self._bridge._post(self._bridge._on_event, event)

    def emit_nowait(self, event: Any) -> bool:
        """Send if there is room; otherwise drop, count, and return False (for lossy traffic)."""
        if self._credits == 0:
            self.events_dropped += 1
            return False
        self._credits -= 1
        self._bridge._post(self._bridge._on_event, event)
        return True

    def _return_credit(self, n: int) -> None:
        self._credits += n
        self._credit_returned.set()

    # -- asking the asyncio side -----------------------------------------------------------------
    async def ask(self, op: str, arg: Any, limit_s: float = 10.0) -> Any:
        """Run the asyncio responder's `op` and return its answer (exceptions are re-raised,
        TimeoutError if it takes longer than `limit_s`)."""
        async with self._ask_slots:
            done = trio.Event()
            box: list[tuple[bool, Any]] = []

            def deliver(ok: bool, value: Any) -> None:
                box.append((ok, value))
                done.set()

            token = trio.lowlevel.current_trio_token()
            self._bridge._post(self._bridge._start_ask, op, arg, token, deliver)
            with self.fail_after(limit_s):
                await done.wait()
            ok, value = box[0]
            if not ok:
                raise value
            return value

    # -- trio primitives, so services never import trio ---------------------------------------
    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self._nursery.start_soon(fn, *args)

    @staticmethod
    def now() -> float:
        return trio.current_time()

    @staticmethod
    async def sleep(seconds: float) -> None:
        await trio.sleep(seconds)

    @staticmethod
    async def sleep_forever() -> None:
        await trio.sleep_forever()

    @staticmethod
    @contextlib.contextmanager
    def fail_after(seconds: float) -> Iterator[None]:
        """Raise TimeoutError (the builtin, not trio's) if the block takes longer."""
        try:
            with trio.fail_after(seconds):
                yield
        except trio.TooSlowError as exc:
            raise TimeoutError(f"timed out after {seconds:g} s") from exc


class TrioBridge(Generic[ReadyT]):
    """Runs a `BridgeService` in a trio thread; all methods are called from asyncio."""

    def __init__(
        self,
        service: BridgeService[ReadyT],
        *,
        inbox_capacity: int = 256,
        event_capacity: int = 256,
        max_calls_in_flight: int = 64,
        max_asks_in_flight: int = 64,
        name: str = "flux-trio",
    ) -> None:
        if inbox_capacity < 1 or event_capacity < 1 or max_calls_in_flight < 1:
            raise ValueError("bridge capacities must be >= 1")
        self._service = service
        self.max_asks_in_flight = max_asks_in_flight
        self._responder: Callable[[str, Any], Awaitable[Any]] | None = None
        self._ask_tasks: set[asyncio.Task[None]] = set()
        self.inbox_capacity = inbox_capacity
        self.event_capacity = event_capacity
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._io: ServiceIO | None = None
        self._nursery: trio.Nursery | None = None
        self._ready: asyncio.Future[ReadyT] | None = None
        self._finished: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._closing = False
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._call_ids = itertools.count()
        self._call_slots = asyncio.Semaphore(max_calls_in_flight)
        self._send_credits = inbox_capacity
        self._send_credit_event = asyncio.Event()
        self._events: collections.deque[Any] = collections.deque()
        self._events_waiting = asyncio.Event()
        self._events_taken = 0
        self._calls_started = 0
        self._sent = 0
        self._received = 0

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> ReadyT:
        """Start the trio thread; return the service's ready value or raise BridgeCrashed."""
        if self._thread is not None:
            raise BridgeClosed("bridge already started")
        self._loop = asyncio.get_running_loop()
        self._ready = self._loop.create_future()
        self._finished = self._loop.create_future()
        self._thread = threading.Thread(target=self._thread_main, name=self._name, daemon=True)
        self._thread.start()
        try:
            return await asyncio.shield(self._ready)
        except asyncio.CancelledError:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Cancel the service, wait for the trio thread to end and join it. Idempotent."""
        if self._thread is None or self._finished is None:
            return
        self._closing = True
        if not self._finished.done() and self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._cancel_all)
        # Waiting on a future set by the trio thread keeps the event loop free; joining after
        # that is instant. Shielded so a cancelled caller still leaves no thread behind.
        await asyncio.shield(self._finished)
        self._thread.join()
        for task in list(self._ask_tasks):
            task.cancel()
        self._fail_pending()

    async def wait_closed(self) -> None:
        """Return when the bridge stops; raise BridgeCrashed if the service failed."""
        if self._finished is None:
            raise BridgeClosed("bridge not started")
        await asyncio.shield(self._finished)
        self._raise_if_crashed()

    @property
    def running(self) -> bool:
        return self._finished is not None and not self._finished.done() and not self._closing

    def statistics(self) -> BridgeStats:
        return BridgeStats(
            calls_started=self._calls_started,
            calls_in_flight=len(self._calls),
            sent=self._sent,
            received_events=self._received,
            events_dropped=self._io.events_dropped if self._io else 0,
        )

    def set_responder(self, responder: Callable[[str, Any], Awaitable[Any]]) -> None:
        """Answer the trio side's `ServiceIO.ask(op, arg)` with `await responder(op, arg)`."""
        self._responder = responder

    # -- asyncio-facing operations ------------------------------------------------------------
    async def call(self, op: str, arg: Any = None) -> Any:
        """Run `service.handle(op, arg)` on the trio side and return its result."""
        async with self._call_slots:
            self._check_running()
            assert self._loop is not None
            call_id = next(self._call_ids)
            fut: asyncio.Future[Any] = self._loop.create_future()
            self._calls[call_id] = fut
            self._calls_started += 1
            try:
                self._post_trio(self._start_call, call_id, op, arg)
                return await fut
            finally:
                self._calls.pop(call_id, None)

    async def send(self, msg: Any) -> None:
        """Put `msg` in the service's ordered inbox, waiting while the inbox is full."""
        while self._send_credits == 0:
            self._check_running()
            self._send_credit_event.clear()
            # Also set when the bridge finishes, so a full inbox never strands the sender.
            await self._send_credit_event.wait()
        self._check_running()
        self._send_credits -= 1
        self._sent += 1
        assert self._io is not None
        self._post_trio(self._io._deliver, msg)

    async def events(self) -> AsyncIterator[Any]:
        """Yield the service's events in order; ends when the bridge closes cleanly."""
        while True:
            while self._events:
                event = self._events.popleft()
                self._events_taken += 1
                if self._events_taken >= max(1, self.event_capacity // 4) or not self._events:
                    n, self._events_taken = self._events_taken, 0
                    if self._io is not None and not self._finished_future().done():
                        with contextlib.suppress(trio.RunFinishedError):
                            self._post_trio(self._io._return_credit, n)
                yield event
            if self._finished_future().done():
                self._raise_if_crashed()
                return
            self._events_waiting.clear()
            await self._events_waiting.wait()  # also set when the bridge finishes

    # -- internals: asyncio side --------------------------------------------------------------
    def _finished_future(self) -> asyncio.Future[None]:
        if self._finished is None:
            raise BridgeClosed("bridge not started")
        return self._finished

    def _check_running(self) -> None:
        if self._finished is None:
            raise BridgeClosed("bridge not started")
        if self._finished.done():
            self._raise_if_crashed()
            raise BridgeClosed("bridge is closed")
        if self._closing:
            raise BridgeClosed("bridge is closing")

    def _raise_if_crashed(self) -> None:
        if self._error is not None:
            raise BridgeCrashed(f"trio side failed: {self._error!r}") from self._error

    def _post_trio(self, fn: Callable[..., object], *args: Any) -> None:
        assert self._token is not None
        try:
            self._token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            raise BridgeClosed("bridge is closed") from None

    def _post(self, fn: Callable[..., object], *args: Any) -> None:
        """Schedule `fn(*args)` on the asyncio loop from the trio thread."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # loop already closed: nobody is listening
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_ready(self, value: ReadyT) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(value)

    def _start_ask(self, op: str, arg: Any, token: Any, deliver: Callable[..., None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self._answer(op, arg, token, deliver))
        self._ask_tasks.add(task)  # owned here, cancelled in aclose
        task.add_done_callback(self._ask_tasks.discard)

    async def _answer(self, op: str, arg: Any, token: Any, deliver: Callable[..., None]) -> None:
        try:
            if self._responder is None:
                raise BridgeClosed(f"no responder for {op!r}")
            result: tuple[bool, Any] = (True, await self._responder(op, arg))
        except Exception as exc:
            result = (False, exc)
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(deliver, *result)

    def _on_event(self, event: Any) -> None:
        self._received += 1
        self._events.append(event)
        self._events_waiting.set()

    def _return_send_credit(self, n: int) -> None:
        self._send_credits += n
        self._send_credit_event.set()

    def _on_call_done(self, call_id: int, ok: bool, value: Any) -> None:
        fut = self._calls.get(call_id)
        if fut is None or fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def _on_finished(self, error: BaseException | None) -> None:
        self._error = error
        if self._ready is not None and not self._ready.done():
            if error is not None:
                exc = BridgeCrashed(f"trio side failed before ready: {error!r}")
                exc.__cause__ = error
                self._ready.set_exception(exc)
            else:
                self._ready.set_exception(BridgeClosed("service stopped before it was ready"))
            # Mark retrieved: start() may already have given up on it.
            self._ready.exception()
        self._fail_pending()
        self._send_credit_event.set()
        self._events_waiting.set()
        if self._finished is not None and not self._finished.done():
            self._finished.set_result(None)

    def _fail_pending(self) -> None:
        for fut in list(self._calls.values()):
            if not fut.done():
                if self._error is not None:
                    exc: BaseException = BridgeCrashed(f"trio side failed: {self._error!r}")
                    exc.__cause__ = self._error
                else:
                    exc = BridgeClosed("bridge closed before the call completed")
                fut.set_exception(exc)

    # -- internals: trio side -----------------------------------------------------------------
    def _thread_main(self) -> None:
        error: BaseException | None = None
        try:
            trio.run(self._trio_main)
        except BaseException as exc:
            error = _unwrap(exc)
        self._post(self._on_finished, error)

    async def _trio_main(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._io = ServiceIO(self, nursery, self.inbox_capacity)
            self._token = trio.lowlevel.current_trio_token()
            await self._service.serve(self._io)
            # serve() returning means the service is done; stop its helpers too.
            nursery.cancel_scope.cancel()

    def _cancel_all(self) -> None:
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _start_call(self, call_id: int, op: str, arg: Any) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._run_call, call_id, op, arg)

    async def _run_call(self, call_id: int, op: str, arg: Any) -> None:
        try:
            result = await self._service.handle(op, arg)
        except Exception as exc:
            # A failed request is the caller's business, not a crash of the service.
            self._post(self._on_call_done, call_id, False, exc)
        else:
            self._post(self._on_call_done, call_id, True, result)


def _unwrap(exc: BaseException) -> BaseException:
    """Strip single-member exception groups that trio nurseries wrap around errors."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
