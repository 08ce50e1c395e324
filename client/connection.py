"""One WebSocket connection to one node: opening it, signing in, and how it ended.

`Visitor` owns the tasks and the bookkeeping; this module holds what is about one connection
only, so a reconnect (`fluxnode.client.reconnect`) opens a new one the same way as the first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import aiohttp

from fluxnode.core.errors import FrameInvalid, SessionDenied, SessionLost
from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire

#: Close codes after which trying again is pointless: the node refused us on purpose (a ban,
#: an expired entry proof, too many bad frames).
NO_RETRY_CODES: Final = frozenset({aiohttp.WSCloseCode.POLICY_VIOLATION})
#: Close reasons that mean the same: our session key is in use on another connection.
NO_RETRY_REASONS: Final = frozenset({"signed in elsewhere"})
_ENDED: Final = (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


class Link:
    """One WebSocket connection to one node, signed in."""

    def __init__(self, url: str, node_url: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.url = url
        self.node_url = node_url
        self.ws = ws
        self.tasks: list[asyncio.Task[None]] = []
        self.retiring = False  # closed by us (close, redirect, failed rejoin): no Closed event
        self.bad_frames = 0
        #: The reason of a `Denied` the node sent outside a join: it is ending the session.
        self.denied: str | None = None


@dataclass(frozen=True)
class Ending:
    """Why a connection ended, and whether it is worth opening another."""

    reason: str
    retry: bool


def ending_of_close(code: int | None, text: str | None, denied: str | None = None) -> Ending:
    """Why the node closed the connection. `denied`, the reason of the `Denied` it sent first,
    is said in full (a close message holds only 123 bytes) and is never retried."""
    text = denied or (text or "").strip()[:200]
    if code is None or code == aiohttp.WSCloseCode.OK:
        reason = f"the node closed the session: {text}" if text else "the node closed the session"
    else:
        reason = f"the node closed the session (code {code}{': ' + text if text else ''})"
    retry = denied is None and code not in NO_RETRY_CODES and text not in NO_RETRY_REASONS
    return Ending(reason, retry)


async def open_ws(
    http: aiohttp.ClientSession, url: str, seconds: float
) -> aiohttp.ClientWebSocketResponse:
    try:
        return await asyncio.wait_for(
            http.ws_connect(
                url, max_msg_size=wire.MAX_FRAME, timeout=aiohttp.ClientWSTimeout(ws_close=2)
            ),
            seconds,
        )
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise SessionLost(f"cannot open the session at {url}: {describe(exc)}") from None


async def sign_in(
    url: str,
    ws: aiohttp.ClientWebSocketResponse,
    answer: Callable[[fr.Challenge], fr.Hello],
    seconds: float,
    counts: dict[str, int],
) -> fr.SignedIn:
    """Challenge → Hello → SignedIn; `SessionDenied` with the node's reason, else `SessionLost`."""
    challenge = await _handshake_frame(url, ws, "a Challenge", seconds, counts)
    if isinstance(challenge, fr.Denied):
        raise SessionDenied(challenge.reason)
    if not isinstance(challenge, fr.Challenge):
        raise SessionLost(f"{url} sent {type(challenge).__name__} instead of a Challenge")
    await ws.send_bytes(wire.encode(answer(challenge)))
    counts["out"] += 1
    reply = await _handshake_frame(url, ws, "SignedIn or Denied", seconds, counts)
    if isinstance(reply, fr.Denied):
        raise SessionDenied(reply.reason)
    if not isinstance(reply, fr.SignedIn):
        raise SessionLost(f"{url} sent {type(reply).__name__} instead of SignedIn")
    return reply


async def _handshake_frame(
    url: str, ws: aiohttp.ClientWebSocketResponse, wanted: str, seconds: float,
    counts: dict[str, int],
) -> fr.Frame:  # fmt: skip
    try:
        msg = await ws.receive(timeout=seconds)
    except TimeoutError:
        raise SessionLost(f"{url} sent no {wanted} within {seconds:g} s") from None
    if msg.type is not aiohttp.WSMsgType.BINARY:
        raise SessionLost(f"{url} sent {describe_msg(msg)} instead of {wanted}")
    counts["in"] += 1
    try:
        return wire.decode(msg.data)
    except FrameInvalid as exc:
        raise SessionLost(f"{url} sent a bad frame instead of {wanted}: {exc}") from None


async def read_frames(
    link: Link,
    receive: Callable[[fr.Frame], Awaitable[str | None]],
    on_bad: Callable[[str], None],
    max_bad: int,
    counts: dict[str, int],
) -> Ending:
    """Decode each message and hand the frame to `receive` (which names what was wrong with
    it, or None) until the connection ends; what cannot be decoded goes to `on_bad`, and past
    `max_bad` bad ones we end it. Returns why it ended."""
    while True:
        msg = await link.ws.receive()
        if msg.type is aiohttp.WSMsgType.CLOSE:
            return ending_of_close(link.ws.close_code, msg.extra, link.denied)
        if link.denied is not None and msg.type in _ENDED:
            # The node said why it ends the session; how the connection then went is by the way.
            return ending_of_close(link.ws.close_code, None, link.denied)
        if msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            failure = link.ws.exception()
            if failure is not None:
                return Ending(f"the connection failed: {describe(failure)}", True)
            code = link.ws.close_code
            if code is None or code == aiohttp.WSCloseCode.OK:
                return ending_of_close(code, None)
            return Ending(f"the connection to the node was lost (code {code})", True)
        if msg.type is aiohttp.WSMsgType.ERROR:
            return Ending(f"the connection failed: {describe(msg.data)}", True)
        problem = await _receive(msg, receive, counts)
        if problem is not None:
            link.bad_frames += 1
            on_bad(problem)
            if link.bad_frames > max_bad:
                return Ending(f"the node sent more than {max_bad} bad frames", False)


async def _receive(
    msg: aiohttp.WSMessage, receive: Callable[[fr.Frame], Awaitable[str | None]],
    counts: dict[str, int],
) -> str | None:  # fmt: skip
    if msg.type is not aiohttp.WSMsgType.BINARY:
        return f"the node sent {describe_msg(msg)}"
    counts["in"] += 1
    try:
        frame = wire.decode(msg.data)
    except FrameInvalid as exc:
        return f"the node sent a bad frame: {exc}"
    return await receive(frame)


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def describe_msg(msg: aiohttp.WSMessage) -> str:
    if msg.type is aiohttp.WSMsgType.TEXT:
        return "a text message (frames are binary)"
    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
        return "a close (the connection ended)"
    return f"a {msg.type.name} message"
