"""`Visitor`: one visitor's live session with a home node, over aiohttp's WebSocket client.

Frames are the session protocol's (docs/session-protocol.md, `fluxnode.core.session.wire`).
Peers, state and chat are the sans-IO `Replica`'s, WebRTC is `fluxnode.client.mesh`'s; this
module moves bytes, keeps time and owns two tasks per connection: the reader (decodes frames,
answers acks and resyncs) and the heartbeat (a `Heartbeat` after ~5 s unsent; 30 s drops us).

Events go to a bounded queue (`max_events`, `client.event_queue`): a program that stops
reading loses news, counted in `statistics()`; the `Closed` event always gets in. A node that
sends garbage gets an `Error("frame_invalid", ...)` event per bad frame and, past
`MAX_BAD_FRAMES`, the connection is closed; never a traceback.

With `reconnect=Reconnect(...)` a dropped connection is not the end: the visitor signs in again
(same session key) and rejoins, see `fluxnode.client.reconnect`; a `Reconnected` event says
where. `close()` sends `Leave` first when in a world, so the others see us go at once rather
than when the node's 30 s silence limit expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Final

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fluxnode.chain.entry import new_session_key
from fluxnode.client.connection import Ending, Link, describe, open_ws, read_frames, sign_in
from fluxnode.client.event_queue import EventQueue
from fluxnode.client.events import Closed, Event, Reconnected, VisitorStats
from fluxnode.client.events import Error as ErrorEvent
from fluxnode.client.links import session_url
from fluxnode.client.manifest import ManifestSource, load_manifest, node_manifest
from fluxnode.client.reconnect import Reconnect, reconnect
from fluxnode.client.replica import Replica, transform_of
from fluxnode.client.signin import DEFAULT_LIFETIME, AccountKey, hello_for, wallet_from
from fluxnode.client.visitor_rtc import RtcControls
from fluxnode.core.errors import JoinDenied, SessionLost, SiweUsageError
from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire
from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.presence import ViewerFrame
from fluxnode.core.session.state import StateOp
from fluxnode.core.world import WorldManifest

MAX_BAD_FRAMES: Final = 20
HEARTBEAT_INTERVAL: Final = 5.0
MAX_EVENTS: Final = 1024
#: Frames the replica takes; every other node frame is handled here or is a protocol error.
_REPLICA_FRAMES: Final = (ViewerFrame, fr.StateSnapshot, StateOp, ChatMessage)
JoinAnswer = fr.Joined | fr.Denied | fr.RedirectTo


class Visitor(RtcControls):
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
        reconnect: Reconnect | None = None,
        voice: bool = False,
        node_channel: bool = False,
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
        self._policy = reconnect
        self._queue = EventQueue(max_events)
        self._link: Link | None = None
        self._send_lock = asyncio.Lock()
        self._last_sent = 0.0
        self._join_waiter: asyncio.Future[JoinAnswer] | None = None
        self._snapshot_for: str | None = None  # Joined's instance: its snapshot answers the join
        self._manifests: dict[str, WorldManifest] = {}  # by world id
        self._joining: str | None = None
        self._world: str | None = None  # the world to rejoin after a drop
        self._position: tuple[float, float, float] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self.replica: Replica | None = None
        self.signed_in: fr.SignedIn | None = None
        self.joined: fr.Joined | None = None
        self._stats = {"in": 0, "out": 0, "bad": 0, "redirects": 0, "reconnects": 0}
        self.mesh = self._new_mesh(voice=voice, node_channel=node_channel)

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
            await v.close(leave=False)
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

    @property
    def position(self) -> tuple[float, float, float] | None:
        """Where we stand: the last position we sent, else where `Joined` put us (the spawn
        point, or where we were when a reconnect kept the seat); None outside a world."""
        return self._position

    @property
    def closed_reason(self) -> str | None:
        """Why the session ended, once it has (the reason of the `Closed` event)."""
        return self._queue.closed

    @property
    def reconnecting(self) -> bool:
        return self._reconnector is not None

    async def _open(self, node_url: str) -> None:
        url = session_url(node_url)
        if self._http is None:
            self._http = aiohttp.ClientSession()
        ws = await open_ws(self._http, url, self._timeout)
        try:
            signed_in = await sign_in(url, ws, self._hello, self._timeout, self._stats)
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
        link = self._link = Link(url, node_url, ws)
        self._last_sent = asyncio.get_running_loop().time()
        link.tasks = [
            asyncio.create_task(self._read(link), name=f"visitor-read {url}"),
            asyncio.create_task(self._heartbeat(link), name=f"visitor-heartbeat {url}"),
        ]

    def _hello(self, challenge: fr.Challenge) -> fr.Hello:
        try:
            return hello_for(self._wallet, self._key, challenge, self._clock(), self._lifetime)
        except SiweUsageError as exc:
            raise SessionLost(f"the node sent an unusable challenge: {exc}") from None

    # --- joining -----------------------------------------------------------------------------

    async def join(self, world_id: str, *, manifest: ManifestSource | None = None) -> fr.Joined:
        """Enter `world_id`: `Joined`, once the `StateSnapshot` behind it is applied (an
        `interact` right after plans on the world's state), or `JoinDenied` with the node's
        reason. A `RedirectTo` is followed once (sign in where it names, rejoin); a second
        one is denied.
        `manifest` (object, file or URL) lets `interact` plan ops; without one, `interact`
        fetches it from the node (`GET /api/worlds/{id}/manifest`) when first needed."""
        if manifest is not None:
            self._manifests[world_id] = await load_manifest(manifest, session=self._http)
        self._joining = world_id
        answer = await self._ask_join(world_id)
        if isinstance(answer, fr.RedirectTo):
            self._stats["redirects"] += 1
            await self._follow(answer)
            answer = await self._ask_join(world_id)
            if isinstance(answer, fr.RedirectTo):
                raise JoinDenied(f"denied: redirected again, to node {answer.node}")
        if isinstance(answer, fr.Denied):
            raise JoinDenied(answer.reason)
        self._world = world_id
        return answer

    async def _ask_join(self, world_id: str) -> JoinAnswer:
        if self._join_waiter is not None and not self._join_waiter.done():
            raise SessionLost("a join is already under way")
        waiter = self._join_waiter = asyncio.get_running_loop().create_future()
        self._snapshot_for = None
        await self._send(fr.Join(world_id))
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), self._timeout)
        except TimeoutError:
            what = "StateSnapshot after Joined" if self._snapshot_for else "answer to Join"
            raise SessionLost(f"the node sent no {what} within {self._timeout:g} s") from None
        finally:
            self._join_waiter = None
            self._snapshot_for = None

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
        if self._reconnector is None:  # a reconnect tries its next node instead
            self._finish(f"redirect to node {redirect.node} failed")
        raise SessionLost("; ".join(problems) or "no usable address in the redirect")

    async def leave(self) -> None:
        """Leave the world (the others see us go at once); we stay signed in."""
        await self._send(fr.Leave())
        await self.mesh.reset()
        self.joined = None
        self._world = None
        self._position = None

    # --- acting ------------------------------------------------------------------------------

    async def move(
        self,
        position: Sequence[float],
        rotation: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
        anim: str = "walk",
    ) -> None:
        """Send our avatar's transform (callers keep to 10 Hz and move on from `position`;
        the node refuses more, and steps faster than its speed limit)."""
        transform = transform_of(position, rotation, anim)
        await self.mesh.move(transform, self._send)
        self._position = transform.position

    async def interact(self, object_id: str, trigger: str = "onClick") -> StateOp:
        """Plan `trigger` on `object_id` on our replica, sign it and send it (see `Replica`).
        Without a manifest yet, the node's copy is fetched first (`NoManifest` if it has none)."""
        replica = self._need_replica()
        if replica.state is None and self.joined is not None:
            await self._fetch_manifest(replica, self.joined.world_id)
        op, events = replica.interaction(object_id, trigger, self._clock())
        await self._send(op)
        for event in events:
            self._emit(event)
        return op

    async def _fetch_manifest(self, replica: Replica, world_id: str) -> None:
        manifest = await node_manifest(
            self.node_url, world_id, session=self._http, seconds=self._timeout
        )
        self._manifests[world_id] = manifest
        if self.joined is not None and self.joined.world_id == world_id and replica.state is None:
            replica.set_manifest(manifest, self._clock())

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
        while not self._queue.finished:
            yield await self._queue.get()

    async def next_event(self) -> Event:
        """The next event; after `Closed` has been returned, `SessionLost`."""
        return await self._queue.get()

    async def close(self, reason: str = "closed by the visitor", *, leave: bool = True) -> None:
        """End the session: `Leave` first when in a world (unless `leave` is False), then
        close the connection; a reconnect under way is stopped. `Closed(reason)` is the last
        event. Safe to call more than once."""
        reconnector, self._reconnector = self._reconnector, None
        if reconnector is not None and reconnector is not asyncio.current_task():
            reconnector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconnector
        link, self._link = self._link, None
        if link is not None:
            if leave and self.joined is not None and not link.ws.closed:
                with contextlib.suppress(SessionLost):
                    await self._send_on(link, fr.Leave())
            link.retiring = True
            await self._drop(link)
        await self.mesh.close()
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
            events_dropped=self._queue.dropped,
            resyncs=counts.get("frames_without_base", 0),
            ops_rejected=counts.get("ops_rejected", 0),
            redirects=s["redirects"],
            reconnects=s["reconnects"],
        )

    def _emit(self, event: Event) -> None:
        self._queue.put(event)

    def _finish(self, reason: str) -> None:
        self._emit(Closed(reason))
        self._fail_join(reason)

    def _fail_join(self, reason: str) -> None:
        waiter = self._join_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(SessionLost(f"the session closed: {reason}"))

    async def _drop(self, link: Link) -> None:
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

    # --- reconnecting ------------------------------------------------------------------------

    async def _reconnect(self, policy: Reconnect, lost: str) -> None:
        try:
            event = await reconnect(self, policy, self.node_url, self._world, lost)
            if isinstance(event, Reconnected):
                self._stats["reconnects"] += 1
                self._emit(event)
            else:
                self._finish(event)
        finally:
            if self._reconnector is asyncio.current_task():
                self._reconnector = None

    async def open_link(self, url: str) -> None:
        await self._open(url)

    async def retire_link(self) -> None:
        if (link := self._link) is not None:
            self._link = None
            link.retiring = True
            await self._drop(link)

    # --- the connection's tasks --------------------------------------------------------------

    async def _send(self, frame: fr.Frame) -> None:
        link = self._link
        if link is None or link.ws.closed:
            state = "reconnecting" if self._reconnector else (self._queue.closed or "not connected")
            raise SessionLost(f"the session is closed ({state})")
        if not self.mesh.via_channel(frame):
            await self._send_on(link, frame)

    async def _send_on(self, link: Link, frame: fr.Frame) -> None:
        data = wire.encode(frame)
        async with self._send_lock:
            try:
                await link.ws.send_bytes(data)
            except (aiohttp.ClientError, ConnectionError) as exc:
                raise SessionLost(f"cannot send to {link.url}: {describe(exc)}") from None
        self._stats["out"] += 1
        self._last_sent = asyncio.get_running_loop().time()

    async def _heartbeat(self, link: Link) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(SessionLost):
            while not link.ws.closed:
                wait = self._last_sent + self._heartbeat_interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                await self._send_on(link, fr.Heartbeat())

    async def _read(self, link: Link) -> None:
        try:
            ending = await read_frames(
                link, self._dispatch, self._bad_frame, MAX_BAD_FRAMES, self._stats
            )
        except SessionLost as lost:  # an answer (ack, resync) could not be sent
            ending = Ending(str(lost), True)
        if link.retiring:
            return
        if self._link is link:
            self._link = None
        await self._drop(link)
        policy = self._policy
        if self._reconnector is not None:  # a rejoin under way lost its new connection
            self._fail_join(ending.reason)
        elif policy is not None and ending.retry and self._queue.closed is None:
            self._fail_join(ending.reason)
            self._reconnector = asyncio.create_task(
                self._reconnect(policy, ending.reason), name="visitor-reconnect"
            )
        else:
            self._finish(ending.reason)

    def _bad_frame(self, problem: str) -> None:
        self._stats["bad"] += 1
        self._emit(ErrorEvent("frame_invalid", problem))

    async def _dispatch(self, frame: fr.Frame) -> str | None:
        """Handle one decoded frame; the problem when it is not one a node may send us."""
        replica = self.replica
        assert replica is not None
        if isinstance(frame, _REPLICA_FRAMES):
            for event in replica.receive(frame, self._clock()):
                self._emit(event)
            for answer in replica.frames_to_send():
                await self._send(answer)
            waiter = self._join_waiter
            due = isinstance(frame, fr.StateSnapshot) and frame.instance == self._snapshot_for
            if due and waiter and not waiter.done() and self.joined:
                waiter.set_result(self.joined)
            return None
        if isinstance(frame, fr.Error):
            self._emit(ErrorEvent(frame.code, frame.message))
            return None
        if await self._rtc_frame(frame):
            return None
        if isinstance(frame, fr.Joined | fr.Denied | fr.RedirectTo):
            waiter = self._join_waiter
            if waiter is not None and not waiter.done():
                if isinstance(frame, fr.Joined):
                    # The snapshot right behind belongs to this instance; it answers the join.
                    manifest = self._manifests.get(frame.world_id)
                    for event in replica.joined(frame.instance_id, manifest):
                        self._emit(event)
                    self.joined = frame
                    p = frame.spawn.position
                    self._position = (float(p[0]), float(p[1]), float(p[2]))
                    self._snapshot_for = frame.instance_id
                else:
                    waiter.set_result(frame)
                return None
            if isinstance(frame, fr.Denied):  # the node ends the session: say why in `Closed`
                self._emit(ErrorEvent("denied", frame.reason))
                if self._link is not None:
                    self._link.denied = frame.reason
                return None
        return f"the node sent an unexpected {type(frame).__name__} frame"
