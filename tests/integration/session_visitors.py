"""Visitors for the live-session network tests: `Watched` (a `fluxnode.client.Visitor` whose
events a task collects, with bounded waits on them), `flux-node visit --json` runs, `RawSession`
(a hand-driven WebSocket for frames a `Visitor` would never send) and small matchers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from eth_account import Account
from eth_account.signers.local import LocalAccount

from fluxnode.chain.entry import new_session_key, session_public_key
from fluxnode.client import (
    Closed,
    Event,
    PeerJoined,
    PeerLeft,
    PeerMoved,
    Visitor,
    hello_for,
    session_url,
    wallet_from,
)
from fluxnode.core.errors import JoinDenied
from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire
from fluxnode.core.session.state import StateOp
from fluxnode.node.session_entry import visitor_id
from tests.conftest import run_cli

T = TypeVar("T")
DOOR = ("door-1", "open")
CLOSE_POLICY = 1008
#: Longest a node may take to hear another's directory summary (published every 2 s).
DIRECTORY_WAIT_S = 15.0


# --- visitors --------------------------------------------------------------------------------


class Watched:
    """A visitor whose events a task collects; `wait_for` looks at all of them since `since`."""

    def __init__(self, visitor: Visitor, label: str) -> None:
        self.v = visitor
        self.label = label
        self.seen: list[Event] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._drain(), name=f"events {label}")

    @property
    def address(self) -> str:
        return self.v.address.lower()

    @property
    def instance(self) -> str:
        assert self.v.joined is not None, f"{self.label} has not joined"
        return self.v.joined.instance_id

    async def _drain(self) -> None:
        with contextlib.suppress(Exception):
            async for event in self.v.events():
                async with self._changed:
                    self.seen.append(event)
                    self._changed.notify_all()

    def mark(self) -> int:
        return len(self.seen)

    async def wait_for(
        self, match: Callable[[Event], bool], what: str, within: float = 20.0, since: int = 0
    ) -> Event:
        def found() -> Event | None:
            return next((e for e in self.seen[since:] if match(e)), None)

        try:
            async with asyncio.timeout(within):
                async with self._changed:
                    while (event := found()) is None:
                        closed = next((e for e in self.seen[since:] if isinstance(e, Closed)), None)
                        if closed is not None:
                            raise AssertionError(
                                f"{self.label}: session closed ({closed.reason}) before {what}"
                            )
                        await self._changed.wait()
                    return event
        except TimeoutError:
            tail = [repr(e)[:160] for e in self.seen[-6:]]
            raise AssertionError(
                f"{self.label}: no event {what} within {within:g} s (last events: {tail})"
            ) from None

    async def close(self) -> None:
        await self.v.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def visit(
    url: str,
    account: LocalAccount,
    world_id: str,
    label: str,
    *,
    manifest: Path | None = None,
    **options: Any,
) -> Watched:
    """Sign in at `url` as `account`, join `world_id` and start watching its events."""
    v = await Visitor.connect(
        url, account.key.hex(), world_id=world_id, manifest=manifest, timeout=20.0, **options
    )
    return Watched(v, label)


def visit_cli(
    url: str, key: Path, world_id: str, *args: str, timeout: float = 60
) -> tuple[int, list[dict[str, Any]]]:
    """`flux-node visit --json`: its exit code and the JSON events it printed."""
    out = run_cli(
        "visit", world_id, "--node", url, "--key-file", str(key), "--json", *args,
        timeout=timeout,
    )  # fmt: skip
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert "Traceback" not in out.stderr, out.stderr
    return out.returncode, events


# --- a raw client, for frames the `Visitor` would never send -------------------------------


class RawSession:
    """One WebSocket to a node's `/session`, frames encoded by hand (`wire`)."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http = http
        self.ws = ws
        self.key = new_session_key()

    @classmethod
    async def open(cls, url: str) -> RawSession:
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(session_url(url), max_msg_size=wire.MAX_FRAME)
        except BaseException:
            await http.close()
            raise
        return cls(http, ws)

    async def send(self, frame: fr.Frame) -> None:
        await self.ws.send_bytes(wire.encode(frame))

    async def receive(self, within: float = 10.0) -> fr.Frame | aiohttp.WSMessage:
        """The next frame, or the non-binary message (a close) that came instead."""
        msg = await self.ws.receive(timeout=within)
        if msg.type is aiohttp.WSMsgType.BINARY:
            return wire.decode(msg.data)
        return msg

    async def expect(self, kind: type[T], within: float = 10.0) -> T:
        """Skip frames until one of type `kind` (fails on a close or after `within` s)."""
        try:
            async with asyncio.timeout(within):
                while True:
                    got = await self.receive(within)
                    if isinstance(got, kind):
                        return got
                    if isinstance(got, aiohttp.WSMessage):
                        raise AssertionError(f"connection ended ({got}) before a {kind.__name__}")
        except TimeoutError:
            raise AssertionError(f"no {kind.__name__} within {within:g} s") from None

    def hello(self, account: LocalAccount, challenge: fr.Challenge) -> fr.Hello:
        return hello_for(wallet_from(account.key.hex()), self.key, challenge, time.time())

    async def sign_in(self, account: LocalAccount) -> tuple[fr.Hello, fr.SignedIn]:
        hello = self.hello(account, await self.expect(fr.Challenge))
        await self.send(hello)
        return hello, await self.expect(fr.SignedIn)

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()


# --- helpers ---------------------------------------------------------------------------------


def stranger() -> LocalAccount:
    return Account.create()  # type: ignore[no-any-return]


async def refused(url: str, account: LocalAccount, world_id: str) -> str:
    """The reason `url` gives `account` for not seating it in `world_id` (fails if seated)."""
    try:
        watched = await visit(url, account, world_id, "refused")
    except JoinDenied as exc:
        return exc.reason
    await watched.close()
    raise AssertionError(f"{account.address} was let into {world_id} at {url}")


def now_ms() -> int:
    return int(time.time() * 1000)


def raw_visitor_id(raw: RawSession) -> str:
    return visitor_id(session_public_key(raw.key))


async def close_all(visitors: list[Watched]) -> None:
    await asyncio.gather(*(v.close() for v in visitors))


async def join_instance(
    url: str, account: LocalAccount, world_id: str, label: str, instance: str, **options: Any
) -> Watched:
    """Join `world_id` at `url` in `instance` (hosted elsewhere). Until the node has heard the
    directory summary of that instance it places the visitor in a new one of its own; then the
    visitor leaves and asks again, for at most `DIRECTORY_WAIT_S`."""
    deadline = time.monotonic() + DIRECTORY_WAIT_S
    while True:
        watched = await visit(url, account, world_id, label, **options)
        if watched.instance == instance:
            return watched
        got = watched.instance
        await watched.v.leave()
        await watched.close()
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{label} at {url} kept being placed in {got}, never in {instance}"
            )
        await asyncio.sleep(0.3)


def near(position: Sequence[float], target: Sequence[float]) -> bool:
    return math.dist(position, target) < 1e-3


def moved_to(mover: Watched, target: Sequence[float]) -> Callable[[Event], bool]:
    def match(e: Event) -> bool:
        return (
            isinstance(e, PeerMoved)
            and (e.address or "").lower() == mover.address
            and e.transform is not None
            and near(e.transform.position, target)
        )

    return match


def door_op(v: Watched) -> StateOp | None:
    replica = v.v.replica
    assert replica is not None and replica.state is not None, f"{v.label} has no world state"
    held = [op for op in replica.state.snapshot() if (op.object_id, op.prop) == DOOR]
    return held[0] if held else None


async def refused_hello(url: str, make: Callable[[RawSession, fr.Challenge], fr.Hello]) -> str:
    """Send the Hello `make` builds for a fresh connection's Challenge; the Denied reason, after
    checking that the node then closed the connection with a policy-violation code."""
    raw = await RawSession.open(url)
    try:
        await raw.send(make(raw, await raw.expect(fr.Challenge)))
        denied = await raw.expect(fr.Denied)
        end = await raw.receive()
        assert isinstance(end, aiohttp.WSMessage), f"still open after {denied}: {end}"
        assert raw.ws.close_code == CLOSE_POLICY, (raw.ws.close_code, end)
        return denied.reason
    finally:
        await raw.close()


def is_peer(kind: type[PeerJoined] | type[PeerLeft], address: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, kind) and (e.address or "").lower() == address
