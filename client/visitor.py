"""`Visitor`: one visitor's live session with a home node, over aiohttp's WebSocket client.

Frames are the session protocol's (docs/session-protocol.md), encoded by
`fluxnode.core.session.wire`. The peer, state and chat bookkeeping is the sans-IO `Replica`;
this module moves bytes, keeps time and owns two tasks per connection: the reader (decodes
frames, hands them to the replica, answers its acks and resyncs) and the heartbeat (a
`Heartbeat` when nothing was sent for ~5 s, since a visitor silent for 30 s is dropped).

Events go to a bounded queue (`max_events`): a program that stops reading loses the oldest
news, counted in `statistics()`, instead of growing memory without end; the `Closed` event
always gets in. A node that sends garbage gets an `Error("frame_invalid", ...)` event per bad
frame and, past `MAX_BAD_FRAMES`, the connection is closed; never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Final

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fluxnode.chain.entry import new_session_key
from fluxnode.client.events import Closed, Event
from fluxnode.client.events import Error as ErrorEvent
from fluxnode.client.links import session_url
from fluxnode.client.manifest import ManifestSource, load_manifest
from fluxnode.client.replica import Replica
from fluxnode.client.signin import DEFAULT_LIFETIME, AccountKey, hello_for, wallet_from
from fluxnode.core.errors import (
    FrameInvalid,
    JoinDenied,
    SessionDenied,
    SessionLost,
    SiweUsageError,
    TransformRejected,
)
from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire
from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.presence import Transform, ViewerFrame
from fluxnode.core.session.state import StateOp
from fluxnode.core.world import WorldManifest

MAX_BAD_FRAMES: Final = 20
HEARTBEAT_INTERVAL: Final = 5.0
MAX_EVENTS: Final = 1024
#: Frames the replica takes; every other node frame is handled here or is a protocol error.
_REPLICA_FRAMES: Final = (ViewerFrame, fr.StateSnapshot, StateOp, ChatMessage)
JoinAnswer = fr.Joined | fr.Denied | fr.RedirectTo


@dataclass(frozen=True)
class VisitorStats:
    frames_received: int
    frames_sent: int
    bad_frames: int
    events_dropped: int
    resyncs: int
    ops_rejected: int
    redirects: int


class _Link:
    """One WebSocket connection to one node, signed in."""

    def __init__(self, url: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.url = url
        self.ws = ws
        self.tasks: list[asyncio.Task[None]] = []
        self.retiring = False  # closed by us to follow a redirect: no Closed event
        self.bad_frames = 0


class Visitor:
    """A signed-in visitor. Make one with `await Visitor.connect(...)`; see the module doc."""

    def __init__(
        self,
        node_url: str,
        account_key: AccountKey,
        *,
        session_key: Ed25519PrivateKey | None = None,
        clock: Callable[[], float] = time.time,
        lifetime: timedelta = DEFAULT_LIFETIME,
        timeout: float = 10.0,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        max_events: int = MAX_EVENTS,
        http: aiohttp.ClientSession | None = None,
    ) -> None:
        session_url(node_url)  # a bad URL fails here, before any I/O
        self.node_url = node_url
        self._wallet = wallet_from(account_key)
        self._key = session_key or new_session_key()
        self._clock = clock
        self._lifetime = lifetime
        self._timeout = timeout
        self._heartbeat_interval = heartbeat_interval
        self._http = http
        self._own_http = http is None
        self._events: asyncio.Queue[Event] = asyncio.Queue(max_events)
        self._link: _Link | None = None
        self._send_lock = asyncio.Lock()
        self._last_sent = 0.0
        self._join_waiter: asyncio.Future[JoinAnswer] | None = None
        self._pending_manifest: WorldManifest | None = None
        self._closed: str | None = None
        self._finished = False
        self.replica: Replica | None = None
        self.signed_in: fr.SignedIn | None = None
        self.joined: fr.Joined | None = None
        self._stats = {"in": 0, "out": 0, "bad": 0, "dropped": 0, "redirects": 0}

    # --- connecting --------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        node_url: str,
        account_key: AccountKey,
        *,
        world_id: str | None = None,
        manifest: ManifestSource | None = None,
        **options: object,
    ) -> Visitor:
        """Open the session and sign in (`SessionDenied`, `SessionLost`); with `world_id`,
        join it too (`JoinDenied`). `options` are `Visitor`'s keyword arguments."""
        v = cls(node_url, account_key, **options)  # type: ignore[arg-type]
        try:
            await v._open(node_url)
            if world_id is not None:
                await v.join(world_id, manifest=manifest)
        except BaseException:
            await v.close()
            raise
        return v

    async def __aenter__(self) -> Visitor:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def visitor(self) -> str:
        assert self.signed_in is not None
        return self.signed_in.visitor

    @property
    def address(self) -> str:
        assert self.signed_in is not None
        return self.signed_in.address

    async def _open(self, node_url: str) -> None:
        url = session_url(node_url)
        if self._http is None:
            self._http = aiohttp.ClientSession()
        try:
            ws = await self._http.ws_connect(
                url, max_msg_size=wire.MAX_FRAME, timeout=aiohttp.ClientWSTimeout(ws_close=2)
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SessionLost(f"cannot open the session at {url}: {_describe(exc)}") from None
        try:
            signed_in = await self._sign_in(url, ws)
        except BaseException:
            await ws.close()
            raise
        if self.replica is None:
            self.replica = Replica(signed_in.visitor, signed_in.address, self._key)
        elif signed_in.visitor != self.replica.visitor:
            await ws.close()
            raise SessionLost(f"{url} named our session key {signed_in.visitor}, not ours")
        self.signed_in = signed_in
        self.node_url = node_url
        link = self._link = _Link(url, ws)
        self._last_sent = asyncio.get_running_loop().time()
        link.tasks = [
            asyncio.create_task(self._read(link), name=f"visitor-read {url}"),
            asyncio.create_task(self._heartbeat(link), name=f"visitor-heartbeat {url}"),
        ]

    async def _sign_in(self, url: str, ws: aiohttp.ClientWebSocketResponse) -> fr.SignedIn:
        challenge = await self._handshake_frame(url, ws, "a Challenge")
        if isinstance(challenge, fr.Denied):
            raise SessionDenied(challenge.reason)
        if not isinstance(challenge, fr.Challenge):
            raise SessionLost(f"{url} sent {type(challenge).__name__} instead of a Challenge")
        try:
            hello = hello_for(self._wallet, self._key, challenge, self._clock(), self._lifetime)
        except SiweUsageError as exc:
            raise SessionLost(f"{url} sent an unusable challenge: {exc}") from None
        await ws.send_bytes(wire.encode(hello))
        self._stats["out"] += 1
        answer = await self._handshake_frame(url, ws, "SignedIn or Denied")
        if isinstance(answer, fr.Denied):
            raise SessionDenied(answer.reason)
        if not isinstance(answer, fr.SignedIn):
            raise SessionLost(f"{url} sent {type(answer).__name__} instead of SignedIn")
        return answer

    async def _handshake_frame(
        self, url: str, ws: aiohttp.ClientWebSocketResponse, wanted: str
    ) -> fr.Frame:
        try:
            msg = await ws.receive(timeout=self._timeout)
        except TimeoutError:
            raise SessionLost(f"{url} sent no {wanted} within {self._timeout:g} s") from None
        if msg.type is not aiohttp.WSMsgType.BINARY:
            raise SessionLost(f"{url} sent {_describe_msg(msg)} instead of {wanted}")
        self._stats["in"] += 1
        try:
            return wire.decode(msg.data)
        except FrameInvalid as exc:
            raise SessionLost(f"{url} sent a bad frame instead of {wanted}: {exc}") from None

    # --- joining -----------------------------------------------------------------------------

    async def join(self, world_id: str, *, manifest: ManifestSource | None = None) -> fr.Joined:
        """Enter `world_id`: `Joined`, or `JoinDenied` with the node's reason. A `RedirectTo`
        is followed once (sign in at the node it names, join there); a second one is denied.
        `manifest` (object, file or URL) lets `interact` plan ops; see `client.manifest`."""
        if manifest is not None:
            self._pending_manifest = await load_manifest(manifest, session=self._http)
        answer = await self._ask_join(world_id)
        if isinstance(answer, fr.RedirectTo):
            self._stats["redirects"] += 1
            await self._follow(answer)
            answer = await self._ask_join(world_id)
            if isinstance(answer, fr.RedirectTo):
                raise JoinDenied(f"denied: redirected again, to node {answer.node}")
        if isinstance(answer, fr.Denied):
            raise JoinDenied(answer.reason)
        return answer

    async def _ask_join(self, world_id: str) -> JoinAnswer:
        if self._join_waiter is not None and not self._join_waiter.done():
            raise SessionLost("a join is already under way")
        waiter = self._join_waiter = asyncio.get_running_loop().create_future()
        await self._send(fr.Join(world_id))
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), self._timeout)
        except TimeoutError:
            raise SessionLost(f"the node did not answer Join within {self._timeout:g} s") from None
        finally:
            self._join_waiter = None

    async def _follow(self, redirect: fr.RedirectTo) -> None:
        if not redirect.addresses:
            raise JoinDenied(f"denied: redirected to node {redirect.node}, which has no address")
        old = self._link
        if old is not None:
            old.retiring = True
            await self._drop(old)
        problems = []
        for address in redirect.addresses:
            try:
                await self._open(address)
                return
            except SessionLost as exc:
                problems.append(str(exc))
        self._finish(f"redirect to node {redirect.node} failed")
        raise SessionLost("; ".join(problems) or "no usable address in the redirect")

    async def leave(self) -> None:
        await self._send(fr.Leave())
        self.joined = None

    # --- acting ------------------------------------------------------------------------------

    async def move(
        self,
        position: Sequence[float],
        rotation: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
        anim: str = "walk",
    ) -> None:
        """Send our avatar's transform (callers keep to 10 Hz; the node refuses more)."""
        try:
            pos = tuple(float(c) for c in position)
            rot = tuple(float(c) for c in rotation)
        except (TypeError, ValueError):
            raise TransformRejected("position and rotation must be numbers") from None
        if len(pos) != 3 or len(rot) != 4:
            raise TransformRejected("position is 3 numbers and rotation 4 (a quaternion)")
        await self._send(Transform(pos, rot, anim))

    async def interact(self, object_id: str, trigger: str = "onClick") -> StateOp:
        """Plan `trigger` on `object_id` on our replica, sign it and send it (see `Replica`)."""
        replica = self._need_replica()
        op, events = replica.interaction(object_id, trigger, self._clock())
        await self._send(op)
        for event in events:
            self._emit(event)
        return op

    async def say(self, text: str) -> ChatMessage:
        message = self._need_replica().chat_message(text, self._clock())
        await self._send(message)
        return message

    async def report(self, subject: str | None, reason: str) -> None:
        if self.joined is None:
            raise SessionLost("join a world before reporting someone in it")
        await self._send(fr.Report(self.joined.world_id, subject, reason))

    def _need_replica(self) -> Replica:
        if self.replica is None:
            raise SessionLost("the visitor is not signed in")
        return self.replica

    # --- events and shutdown -----------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        """Events as they come; `Closed` is the last one."""
        while not self._finished:
            yield await self.next_event()

    async def next_event(self) -> Event:
        """The next event; after `Closed` has been returned, `SessionLost`."""
        if self._finished:
            raise SessionLost(f"the session is closed ({self._closed})")
        event = await self._events.get()
        if isinstance(event, Closed):
            self._finished = True
        return event

    async def close(self, reason: str = "closed by the visitor") -> None:
        link, self._link = self._link, None
        if link is not None:
            link.retiring = True
            await self._drop(link)
        self._finish(reason)
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    def statistics(self) -> VisitorStats:
        counts = self.replica.counts if self.replica is not None else {}
        s = self._stats
        return VisitorStats(
            frames_received=s["in"],
            frames_sent=s["out"],
            bad_frames=s["bad"],
            events_dropped=s["dropped"],
            resyncs=counts.get("frames_without_base", 0),
            ops_rejected=counts.get("ops_rejected", 0),
            redirects=s["redirects"],
        )

    def _emit(self, event: Event) -> None:
        if self._closed is not None:
            return
        if isinstance(event, Closed):
            self._closed = event.reason
            if self._events.full():
                self._events.get_nowait()
                self._stats["dropped"] += 1
        elif self._events.full():
            self._stats["dropped"] += 1
            return
        self._events.put_nowait(event)

    def _finish(self, reason: str) -> None:
        self._emit(Closed(reason))
        waiter = self._join_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(SessionLost(f"the session closed: {reason}"))

    async def _drop(self, link: _Link) -> None:
        current = asyncio.current_task()
        # Close before cancelling the reader: aiohttp gives up the closing handshake when a
        # pending receive is cancelled, and a socket closed with unread data is reset, which
        # can discard our last frames (a Leave) before the node has read them.
        await link.ws.close()
        for task in link.tasks:
            if task is not current:
                task.cancel()
        for task in link.tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # --- the connection's tasks --------------------------------------------------------------

    async def _send(self, frame: fr.Frame) -> None:
        link = self._link
        if link is None or link.ws.closed:
            raise SessionLost(f"the session is closed ({self._closed or 'not connected'})")
        data = wire.encode(frame)
        async with self._send_lock:
            try:
                await link.ws.send_bytes(data)
            except (aiohttp.ClientError, ConnectionError) as exc:
                raise SessionLost(f"cannot send to {link.url}: {_describe(exc)}") from None
        self._stats["out"] += 1
        self._last_sent = asyncio.get_running_loop().time()

    async def _heartbeat(self, link: _Link) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(SessionLost):
            while not link.ws.closed:
                wait = self._last_sent + self._heartbeat_interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                await self._send(fr.Heartbeat())

    async def _read(self, link: _Link) -> None:
        reason = "the node closed the session"
        try:
            async for msg in link.ws:
                if msg.type is aiohttp.WSMsgType.ERROR:
                    reason = f"the connection failed: {_describe(msg.data)}"
                    break
                problem = await self._receive(msg)
                if problem is not None:
                    self._stats["bad"] += 1
                    link.bad_frames += 1
                    self._emit(ErrorEvent("frame_invalid", problem))
                    if link.bad_frames > MAX_BAD_FRAMES:
                        reason = f"the node sent more than {MAX_BAD_FRAMES} bad frames"
                        break
            else:
                code = link.ws.close_code
                if code is not None and code != aiohttp.WSCloseCode.OK:
                    reason = f"the node closed the session (code {code})"
                failure = link.ws.exception()
                if failure is not None:
                    reason = f"the connection failed: {_describe(failure)}"
        except SessionLost as lost:  # an answer (ack, resync) could not be sent
            reason = str(lost)
        if not link.retiring:
            self._finish(reason)
            if self._link is link:
                self._link = None
            await self._drop(link)

    async def _receive(self, msg: aiohttp.WSMessage) -> str | None:
        if msg.type is not aiohttp.WSMsgType.BINARY:
            return f"the node sent {_describe_msg(msg)}"
        self._stats["in"] += 1
        try:
            frame = wire.decode(msg.data)
        except FrameInvalid as exc:
            return f"the node sent a bad frame: {exc}"
        return await self._dispatch(frame)

    async def _dispatch(self, frame: fr.Frame) -> str | None:
        """Handle one decoded frame; the problem when it is not one a node may send us."""
        replica = self.replica
        assert replica is not None
        if isinstance(frame, _REPLICA_FRAMES):
            for event in replica.receive(frame, self._clock()):
                self._emit(event)
            for answer in replica.frames_to_send():
                await self._send(answer)
            return None
        if isinstance(frame, fr.Error):
            self._emit(ErrorEvent(frame.code, frame.message))
            return None
        if isinstance(frame, fr.Joined | fr.Denied | fr.RedirectTo):
            waiter = self._join_waiter
            if waiter is not None and not waiter.done():
                if isinstance(frame, fr.Joined):
                    # Before the join resumes: the snapshot right behind this frame belongs to
                    # the new instance.
                    replica.joined(frame.instance_id, self._pending_manifest)
                    self.joined = frame
                waiter.set_result(frame)
                return None
            if isinstance(frame, fr.Denied):
                self._emit(ErrorEvent("denied", frame.reason))
                return None
        return f"the node sent an unexpected {type(frame).__name__} frame"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _describe_msg(msg: aiohttp.WSMessage) -> str:
    if msg.type is aiohttp.WSMsgType.TEXT:
        return "a text message (frames are binary)"
    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
        return "a close (the connection ended)"
    return f"a {msg.type.name} message"
