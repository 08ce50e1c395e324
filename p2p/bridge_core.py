"""The bridge without its transport: message bases, the service protocol, statistics, and
`BridgeEndpoint`, the asyncio side (call and ask ids, credits, deadlines, counters).

`fluxnode.p2p.bridge` adds the transport (a trio thread) and the trio side; it is the only module
that imports trio. See its docstring for the protocol and for moving the libp2p side into
another process, which would replace the transport and keep everything here.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from fluxnode.core.errors import BridgeClosed, BridgeCrashed

if TYPE_CHECKING:
    from fluxnode.p2p.bridge import ServiceIO

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
ReadyT = TypeVar("ReadyT")
ReadyT_co = TypeVar("ReadyT_co", covariant=True)


class Request(Generic[R_co]):
    """Base of a call's message (asyncio -> trio); `R_co` is the type of its answer."""

    __slots__ = ()


class Ask(Generic[R_co]):
    """Base of an ask's message (trio -> asyncio); `R_co` is the type of its answer."""

    __slots__ = ()


#: The asyncio side's answerer of asks.
Responder = Callable[[Ask[Any]], Awaitable[object]]


class BridgeService(Protocol[ReadyT_co]):
    """What runs on the trio side of a bridge."""

    async def serve(self, io: ServiceIO) -> None:
        """Run until cancelled. Must call `io.ready(value)` once it is able to serve."""

    async def handle(self, request: Request[Any]) -> object:
        """Answer one `TrioBridge.call`. Raising sends the exception back to the caller."""


@dataclass(frozen=True)
class BridgeStats:
    calls_started: int
    #: Calls whose trio task has not ended yet (each holds one of `max_calls_in_flight`).
    calls_in_flight: int
    #: Calls whose asyncio awaiter was cancelled; the cancellation was sent to the trio side.
    calls_cancelled: int
    sent: int
    #: Inbox messages sent and not yet taken by the service.
    inbox_depth: int
    received_events: int
    #: Events delivered to the asyncio side and not yet taken by `events()`.
    events_buffered: int
    #: Highest `events_buffered` seen; never above `event_capacity`.
    events_buffered_max: int
    #: Events `emit_nowait` dropped because the window was full.
    events_dropped: int
    #: Events or answers posted to an asyncio loop that had already closed.
    posts_lost: int
    asks_started: int
    #: Asks holding a slot: the asyncio side has not reported their end yet.
    asks_in_flight: int
    #: Asks waiting for a free slot.
    asks_waiting: int
    #: Asks the trio side gave up on at their deadline (their asyncio work is cancelled).
    asks_timed_out: int
    #: Asks whose asyncio work was cancelled (trio deadline, asyncio deadline or shutdown).
    asks_cancelled: int


class BridgeEndpoint(Generic[ReadyT]):
    """The asyncio side of a bridge: ids, credits, deadlines, counters. All its public methods
    are called from asyncio. A transport subclass (`TrioBridge`) supplies `_launch`,
    `_post_trio`, `_request_stop` and `_join`, and answers `_start_call`/`_cancel_call`."""

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
        if min(inbox_capacity, event_capacity, max_calls_in_flight, max_asks_in_flight) < 1:
            raise ValueError("bridge capacities must be >= 1")
        self._service = service
        self.max_asks_in_flight = max_asks_in_flight
        self._responder: Responder | None = None
        self._ask_tasks: dict[int, asyncio.Task[None]] = {}
        self.inbox_capacity = inbox_capacity
        self.event_capacity = event_capacity
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._launched = False
        self._io: ServiceIO | None = None
        self._ready: asyncio.Future[ReadyT] | None = None
        self._finished: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._closing = False
        self._calls: dict[int, asyncio.Future[object]] = {}
        self._call_ids = itertools.count()
        self._call_slots = asyncio.Semaphore(max_calls_in_flight)
        self._send_credits = inbox_capacity
        self._send_credit_event = asyncio.Event()
        self._events: collections.deque[object] = collections.deque()
        self._events_waiting = asyncio.Event()
        self._events_taken = 0
        self._stats = collections.Counter[str]()
        self._posts_lost = 0

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> ReadyT:
        """Start the other side; return the service's ready value or raise BridgeCrashed."""
        if self._launched:
            raise BridgeClosed("bridge already started")
        self._loop = asyncio.get_running_loop()
        self._ready = self._loop.create_future()
        self._finished = self._loop.create_future()
        self._launched = True
        self._launch()
        try:
            return await asyncio.shield(self._ready)
        except asyncio.CancelledError:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Cancel the service, wait for the other side to end and join it. Idempotent."""
        if not self._launched or self._finished is None:
            return
        self._closing = True
        # First, so a trio thread blocked in `ask_blocking` gets its answer and can stop.
        for task in list(self._ask_tasks.values()):
            task.cancel()
        if not self._finished.done():
            self._request_stop()
        # Waiting on a future set by the trio thread keeps the event loop free; joining after
        # that is instant. Shielded so a cancelled caller still leaves no thread behind.
        await asyncio.shield(self._finished)
        self._join()
        for task in list(self._ask_tasks.values()):
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
        io, s = self._io, self._stats
        return BridgeStats(
            calls_started=s["calls_started"],
            calls_in_flight=len(self._calls),
            calls_cancelled=s["calls_cancelled"],
            sent=s["sent"],
            inbox_depth=s["sent"] - (io.taken if io else 0),
            received_events=s["received"],
            events_buffered=len(self._events),
            events_buffered_max=s["events_buffered_max"],
            events_dropped=io.events_dropped if io else 0,
            posts_lost=self._posts_lost,
            asks_started=io.asks_started if io else 0,
            asks_in_flight=io.asks_in_flight if io else 0,
            asks_waiting=io.asks_waiting if io else 0,
            asks_timed_out=(io.asks_timed_out if io else 0) + s["asks_timed_out"],
            asks_cancelled=s["asks_cancelled"],
        )

    def set_responder(self, responder: Responder) -> None:
        """Answer the trio side's `ServiceIO.ask(question)` with `await responder(question)`."""
        self._responder = responder

    # -- asyncio-facing operations ------------------------------------------------------------
    async def call(self, request: Request[R]) -> R:
        """Run `service.handle(request)` on the trio side and return its result."""
        await self._call_slots.acquire()
        # The slot is released by `_on_call_done` when the trio task has really ended.
        try:
            self._check_running()
            assert self._loop is not None
            call_id = next(self._call_ids)
            fut: asyncio.Future[object] = self._loop.create_future()
            self._post_trio(self._start_call, call_id, request)
        except BaseException:
            self._call_slots.release()
            raise
        self._calls[call_id] = fut  # before any answer: those arrive as later loop callbacks
        self._stats["calls_started"] += 1
        try:
            return cast(R, await fut)
        except asyncio.CancelledError:
            if call_id in self._calls:  # the trio side is still at it: stop it
                self._stats["calls_cancelled"] += 1
                with contextlib.suppress(BridgeClosed):
                    self._post_trio(self._cancel_call, call_id)
            raise

    async def send(self, msg: object) -> None:
        """Put `msg` in the service's ordered inbox, waiting while the inbox is full."""
        while self._send_credits == 0:
            self._check_running()
            self._send_credit_event.clear()
            # Also set when the bridge finishes, so a full inbox never strands the sender.
            await self._send_credit_event.wait()
        self._check_running()
        self._send_credits -= 1
        self._stats["sent"] += 1
        assert self._io is not None
        self._post_trio(self._io._deliver, msg)

    async def events(self) -> AsyncIterator[object]:
        """Yield the service's events in order; ends when the bridge closes cleanly."""
        while True:
            while self._events:
                event = self._events.popleft()
                self._events_taken += 1
                if self._events_taken >= max(1, self.event_capacity // 4) or not self._events:
                    n, self._events_taken = self._events_taken, 0
                    if self._io is not None and not self._finished_future().done():
                        with contextlib.suppress(BridgeClosed):
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

    # -- what a transport supplies ---------------------------------------------------------------
    def _launch(self) -> None:
        """Start the other side; it calls `_on_ready` once, and `_on_finished` when it ends."""
        raise NotImplementedError

    def _post_trio(self, fn: Callable[..., object], *args: object) -> None:
        """Run `fn(*args)` on the other side soon; BridgeClosed if it has ended."""
        raise NotImplementedError

    def _request_stop(self) -> None:
        """Ask the other side to cancel its service (it then calls `_on_finished`)."""
        raise NotImplementedError

    def _join(self) -> None:
        """Release the other side's resources once it has finished."""
        raise NotImplementedError

    def _start_call(self, call_id: int, request: Request[Any]) -> None:
        """(Other side.) Run `service.handle(request)`; post `_on_call_done` when it ends."""
        raise NotImplementedError

    def _cancel_call(self, call_id: int) -> None:
        """(Other side.) Cancel the task serving `call_id`, if it still runs."""
        raise NotImplementedError

    # -- internals --------------------------------------------------------------------------------

    def _post(self, fn: Callable[..., object], *args: object) -> None:
        """Schedule `fn(*args)` on the asyncio loop from the other side's thread."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop already closed: nobody is listening
            self._posts_lost += 1  # only ever written by the other side's thread

    def _on_ready(self, value: ReadyT) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(value)

    def _start_ask(
        self,
        ask_id: int,
        question: Ask[Any],
        limit_s: float,
        waiter: concurrent.futures.Future[tuple[bool, object]] | None,
    ) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self._answer(ask_id, question, limit_s, waiter))
        self._ask_tasks[ask_id] = task  # owned here, cancelled by `_cancel_ask` and `aclose`
        task.add_done_callback(lambda _t: self._ask_tasks.pop(ask_id, None))

    def _cancel_ask(self, ask_id: int) -> None:
        task = self._ask_tasks.get(ask_id)
        if task is not None:
            task.cancel()

    async def _answer(
        self,
        ask_id: int,
        question: Ask[Any],
        limit_s: float,
        waiter: concurrent.futures.Future[tuple[bool, object]] | None,
    ) -> None:
        name = type(question).__name__
        result: tuple[bool, object] = (False, TimeoutError(f"ask {name} was cancelled"))
        try:
            if self._responder is None or self._closing:
                raise BridgeClosed(f"no responder for {name}")
            # The deadline holds here too: the asyncio work stops when the asker gives up.
            async with asyncio.timeout(limit_s):
                result = (True, await self._responder(question))
        except TimeoutError:
            # The work was cancelled by its deadline; whichever side's deadline fires first
            # counts the timeout (here, or the trio side's `ask`), so each counts once.
            self._stats["asks_cancelled"] += 1
            self._stats["asks_timed_out"] += 1
            result = (False, TimeoutError(f"ask {name} timed out after {limit_s:g} s"))
        except asyncio.CancelledError:
            self._stats["asks_cancelled"] += 1
            raise
        except Exception as exc:
            result = (False, exc)
        finally:
            # Runs once the responder's work has ended (answered, failed or cancelled): only
            # then does the trio side free the ask's slot.
            if waiter is not None and not waiter.done():
                waiter.set_result(result)
            if self._io is not None:
                with contextlib.suppress(BridgeClosed):
                    self._post_trio(self._io._ask_finished, ask_id, *result)

    def _on_event(self, event: object) -> None:
        self._stats["received"] += 1
        self._events.append(event)
        if len(self._events) > self._stats["events_buffered_max"]:
            self._stats["events_buffered_max"] = len(self._events)
        self._events_waiting.set()

    def _return_send_credit(self, n: int) -> None:
        self._send_credits += n
        self._send_credit_event.set()

    def _on_call_done(self, call_id: int, ok: bool, value: object) -> None:
        fut = self._calls.pop(call_id, None)
        if fut is None:
            return
        self._call_slots.release()
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            assert isinstance(value, BaseException)
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
        for call_id in list(self._calls):
            if self._error is not None:
                exc: BaseException = BridgeCrashed(f"trio side failed: {self._error!r}")
                exc.__cause__ = self._error
            else:
                exc = BridgeClosed("bridge closed before the call completed")
            self._on_call_done(call_id, False, exc)

    # -- internals: trio side -----------------------------------------------------------------
