"""The asyncio <-> trio bridge: the ONE module of Flux node that imports trio.

py-libp2p is written for trio; aiohttp, aiortc and web3 are asyncio. Rather than mixing loops
(trio-asyncio needs patches for web3), a `TrioBridge` runs a service under `trio.run` in one
dedicated thread and talks to the asyncio side with plain messages only:

* `call(request)`      request/response: a frozen `Request[R]` in, an `R` (or an exception) out,
                       run concurrently on the trio side. Cancelling the awaiting asyncio task
                       cancels the trio task that serves it; its slot is freed when that task ends;
* `send(msg)`          an ordered one-way inbox to the service, with credit-based backpressure;
* `events()`           an ordered one-way outbox from the service, with credit-based
                       backpressure (`emit`) or drop-and-count (`emit_nowait`);
* `ServiceIO.ask()`    the reverse request/response: the trio side asks the asyncio-side
                       responder (`set_responder`) a frozen `Ask[R]`, e.g. "is this gossip
                       message valid?" or "give me block X". The deadline holds on both sides: the
                       trio asker gives up at `limit_s`, and the asyncio work is cancelled then
                       (or at its own `limit_s`, whichever comes first). An ask's slot (at most
                       `max_asks_in_flight`) is freed only when the asyncio side reports that its
                       work has ended, so the bound covers work still running after a timeout.
* `ServiceIO.ask_blocking()` the same ask for library hooks that are synchronous (py-libp2p's
                       DHT validators): the trio thread waits for the answer, bounded by `limit_s`.

Every queue is bounded: a sender waits for credit (or drops and counts), never grows a queue
without limit and never blocks the other loop. `statistics()` shows queue depths, the high-water
mark of buffered events, asks and calls in flight, timeouts, cancellations and every drop.

Services receive a `ServiceIO` and use it for everything trio-specific (sleep, timeouts, spawning),
so this stays the only module that touches trio. An exception inside the service stops the bridge
and surfaces on the asyncio side as `BridgeCrashed` from every pending and later call.

Moving the libp2p side into its own process. Nothing that crosses holds a callable, a loop token
or a store handle: requests, results, asks, answers and events are frozen dataclasses of plain
data (see `fluxnode.p2p.messages`), so the change is one of transport only. The asyncio half
(`BridgeEndpoint` in `bridge_core`: ids, credits, deadlines, counters) stays as it is; a second
subclass beside `TrioBridge` would supply its four transport hooks:
1. `_post_trio` (and, in the child, `ServiceIO`'s `_post`), today `TrioToken.run_sync_soon` and
   `call_soon_threadsafe`, write framed, serialised messages on a pipe or socket pair, each
   naming its callback and call/ask id (the ids already exist); a reader task on each side turns
   frames back into the same callbacks;
2. exceptions cross as (error code, message) and are rebuilt from the error tree's code registry;
   foreign ones become `BridgeCrashed`/`PeerError` at the boundary;
3. `ask_blocking` waits on the pipe instead of a `concurrent.futures.Future`;
4. `_launch` spawns the process, which runs this module's trio side (`ServiceIO`, `_trio_main`)
   with `HostService` unchanged; `_request_stop` sends a stop message; `_join` waits for the
   process (and kills it by PID past a grace period) instead of joining a thread.
`HostClient.__init__` would build that transport instead of a `TrioBridge`; its typed methods,
and everything in `node/` that calls them, stay the same.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import trio

from fluxnode.core.errors import BridgeClosed
from fluxnode.p2p.bridge_core import (
    Ask,
    BridgeEndpoint,
    BridgeService,
    BridgeStats,
    Request,
    Responder,
)

R = TypeVar("R")
ReadyT = TypeVar("ReadyT")


class OneShotEvent(Protocol):
    """An event that is set once and wakes every task waiting on it (a `trio.Event`)."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> None: ...


@dataclass
class _PendingAsk:
    done: trio.Event
    #: Set for `ask_blocking`: the asyncio side fills it directly, the trio thread is blocked.
    waiter: concurrent.futures.Future[tuple[bool, object]] | None
    result: tuple[bool, object] | None = None


class ServiceIO:
    """The trio side's handle: inbox, outbox, asks, and the trio primitives a service needs."""

    def __init__(self, bridge: TrioBridge[Any], nursery: trio.Nursery, inbox_capacity: int):
        self._bridge = bridge
        self._nursery = nursery
        self._ask_slots = trio.Semaphore(bridge.max_asks_in_flight)
        self._asks: dict[int, _PendingAsk] = {}
        self._ask_ids = itertools.count()
        self._inbox_send, self._inbox_recv = trio.open_memory_channel[object](inbox_capacity)
        self._credits = bridge.event_capacity
        self._credit_returned = trio.Event()
        self._consumed = 0
        self._inbox_capacity = inbox_capacity
        # Counters, read (never written) from the asyncio thread by `statistics()`.
        self.taken = 0
        self.events_dropped = 0
        self.asks_started = 0
        self.asks_in_flight = 0
        self.asks_waiting = 0
        self.asks_timed_out = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def ready(self, value: object) -> None:
        """Tell the asyncio side the service is up; `TrioBridge.start()` returns `value`."""
        self._bridge._post(self._bridge._on_ready, value)

    # -- inbox (asyncio -> trio, ordered) ------------------------------------------------------
    async def receive(self) -> object:
        msg = await self._inbox_recv.receive()
        self._consumed += 1
        self.taken += 1
        # Return credit in batches: one cross-thread wake-up per quarter of the window, or at
        # once when the inbox runs dry so a waiting sender never stalls.
        if (
            self._consumed >= max(1, self._inbox_capacity // 4)
            or self._inbox_recv.statistics().current_buffer_used == 0
        ):
            n, self._consumed = self._consumed, 0
            self._bridge._post(self._bridge._return_send_credit, n)
        return msg

    def _deliver(self, msg: object) -> None:
        # Never overflows: the asyncio side holds at most `inbox_capacity` credits.
        self._inbox_send.send_nowait(msg)

    # -- outbox (trio -> asyncio, ordered) ------------------------------------------------------
    async def emit(self, event: object) -> None:
        """Send an event to the asyncio side, waiting while its window is full."""
        while self._credits == 0:
            self._credit_returned = trio.Event()
            await self._credit_returned.wait()
        self._credits -= 1
        self._bridge._post(self._bridge._on_event, event)

    def emit_nowait(self, event: object) -> bool:
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
    async def ask(self, question: Ask[R], limit_s: float = 10.0) -> R:
        """The asyncio responder's answer to `question`. Its exceptions are re-raised here;
        TimeoutError past `limit_s` (the asyncio work is cancelled then)."""
        self.asks_waiting += 1
        try:
            await self._ask_slots.acquire()
        finally:
            self.asks_waiting -= 1
        # From here the slot belongs to the ask until the asyncio side says it ended.
        ask_id, pending = self._open_ask(question, limit_s, None)
        try:
            with trio.fail_after(limit_s):
                await pending.done.wait()
        except trio.TooSlowError:
            self.asks_timed_out += 1
            self._bridge._post(self._bridge._cancel_ask, ask_id)
            raise TimeoutError(
                f"ask {type(question).__name__} timed out after {limit_s:g} s"
            ) from None
        except BaseException:
            if pending.result is None:  # cancelled here: stop the asyncio work too
                self._bridge._post(self._bridge._cancel_ask, ask_id)
            raise
        assert pending.result is not None
        return cast(R, self._unbox(pending.result))

    def ask_blocking(self, question: Ask[R], limit_s: float = 2.0) -> R:
        """`ask` for synchronous library hooks: blocks the trio thread for at most `limit_s`
        (keep those asks rare and quick). With no free slot it fails at once (TimeoutError)."""
        try:
            self._ask_slots.acquire_nowait()
        except trio.WouldBlock:
            raise TimeoutError(f"ask {type(question).__name__}: no free ask slot") from None
        waiter: concurrent.futures.Future[tuple[bool, object]] = concurrent.futures.Future()
        ask_id, _pending = self._open_ask(question, limit_s, waiter)
        try:
            result = waiter.result(timeout=limit_s)
        except concurrent.futures.TimeoutError:
            self.asks_timed_out += 1
            self._bridge._post(self._bridge._cancel_ask, ask_id)
            raise TimeoutError(
                f"ask {type(question).__name__} timed out after {limit_s:g} s"
            ) from None
        return cast(R, self._unbox(result))

    def _open_ask(
        self,
        question: Ask[Any],
        limit_s: float,
        waiter: concurrent.futures.Future[tuple[bool, object]] | None,
    ) -> tuple[int, _PendingAsk]:
        ask_id = next(self._ask_ids)
        pending = _PendingAsk(trio.Event(), waiter)
        self._asks[ask_id] = pending
        self.asks_started += 1
        self.asks_in_flight += 1
        self._bridge._post(self._bridge._start_ask, ask_id, question, limit_s, waiter)
        return ask_id, pending

    def _ask_finished(self, ask_id: int, ok: bool, value: object) -> None:
        """The asyncio work of an ask has ended (answered, failed or cancelled): free its slot."""
        pending = self._asks.pop(ask_id, None)
        if pending is None:
            return
        self.asks_in_flight -= 1
        self._ask_slots.release()
        pending.result = (ok, value)
        pending.done.set()

    @staticmethod
    def _unbox(result: tuple[bool, object]) -> object:
        ok, value = result
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value

    # -- trio primitives, so services never import trio ---------------------------------------
    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        self._nursery.start_soon(fn, *args)

    @staticmethod
    def now() -> float:
        return trio.current_time()

    @staticmethod
    async def sleep(seconds: float) -> None:
        await trio.sleep(seconds)

    @staticmethod
    def event() -> OneShotEvent:
        """A new one-shot event, so services can wait for each other without polling."""
        return trio.Event()

    @staticmethod
    async def sleep_forever() -> None:
        await trio.sleep_forever()

    @staticmethod
    @contextlib.contextmanager
    def shielded(seconds: float) -> Iterator[None]:
        """Run the block even while being cancelled (shutdown clean-up), for at most `seconds`
        (then it is cancelled after all, silently)."""
        with trio.move_on_after(seconds) as scope:
            scope.shield = True
            yield

    @staticmethod
    @contextlib.contextmanager
    def fail_after(seconds: float) -> Iterator[None]:
        """Raise TimeoutError (the builtin, not trio's) if the block takes longer."""
        try:
            with trio.fail_after(seconds):
                yield
        except trio.TooSlowError as exc:
            raise TimeoutError(f"timed out after {seconds:g} s") from exc


class TrioBridge(BridgeEndpoint[ReadyT]):
    """Runs a `BridgeService` under `trio.run` in one thread; all public methods are asyncio's."""

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
        super().__init__(
            service,
            inbox_capacity=inbox_capacity,
            event_capacity=event_capacity,
            max_calls_in_flight=max_calls_in_flight,
            max_asks_in_flight=max_asks_in_flight,
            name=name,
        )
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._call_scopes: dict[int, trio.CancelScope] = {}  # trio side only

    # -- transport, asyncio side ----------------------------------------------------------------
    def _launch(self) -> None:
        self._thread = threading.Thread(target=self._thread_main, name=self._name, daemon=True)
        self._thread.start()

    def _post_trio(self, fn: Callable[..., object], *args: object) -> None:
        if self._token is None:
            raise BridgeClosed("bridge is not running")
        try:
            self._token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            raise BridgeClosed("bridge is closed") from None

    def _request_stop(self) -> None:
        with contextlib.suppress(BridgeClosed):
            self._post_trio(self._cancel_all)

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    # -- trio side ------------------------------------------------------------------------------
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

    def _start_call(self, call_id: int, request: Request[Any]) -> None:
        assert self._nursery is not None
        # Made here, not in the task, so a cancel that arrives before the task runs still lands.
        scope = trio.CancelScope()
        self._call_scopes[call_id] = scope
        self._nursery.start_soon(self._run_call, call_id, request, scope)

    def _cancel_call(self, call_id: int) -> None:
        scope = self._call_scopes.get(call_id)
        if scope is not None:
            scope.cancel()

    async def _run_call(self, call_id: int, request: Request[Any], scope: trio.CancelScope) -> None:
        result: tuple[bool, object] | None = None
        try:
            with scope:
                result = (True, await self._service.handle(request))
            if result is None:  # our scope caught the caller's cancellation
                result = (False, BridgeClosed("call cancelled"))
        except Exception as exc:
            # A failed request is the caller's business, not a crash of the service.
            result = (False, exc)
        finally:
            self._call_scopes.pop(call_id, None)
            # Also after a cancel: the asyncio side frees the call's slot on this message. A
            # shutdown of the whole service posts nothing: `_on_finished` fails every call.
            if result is not None:
                self._post(self._on_call_done, call_id, *result)


def _unwrap(exc: BaseException) -> BaseException:
    """Strip single-member exception groups that trio nurseries wrap around errors."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


__all__ = [
    "Ask",
    "BridgeService",
    "BridgeStats",
    "Request",
    "Responder",
    "ServiceIO",
    "TrioBridge",
]
