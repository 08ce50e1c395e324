"""A raw session client with the node's WebRTC data channel, for the node's channel tests.

`RtcSession` signs in over a node's `/session` WebSocket, joins, and opens the data channel
the way a client would (aiortc, no ICE servers, an offer sent once gathering is complete); a
reader task collects what arrives on the WebSocket and on the channel, and `expect` waits (with
a bound) for a frame on either. Loopback host candidates are forced in this process
(`fluxnode.node.rtc_loopback.force_loopback_ice`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from fluxnode.chain.entry import new_session_key, session_public_key
from fluxnode.client.signin import hello_for, wallet_from
from fluxnode.core.session import frames as fr
from fluxnode.core.session.wire import MAX_FRAME, decode, encode
from fluxnode.node.rtc_loopback import force_loopback_ice
from fluxnode.node.session_entry import visitor_id

force_loopback_ice()

T = TypeVar("T")
LABEL = "flux-transforms"


class RtcSession:
    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http, self.ws = http, ws
        self.key = new_session_key()
        self.visitor = visitor_id(session_public_key(self.key))
        self.ws_frames: list[fr.Frame] = []
        self.dc_frames: list[fr.Frame] = []
        self.ws_closed = asyncio.Event()
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self.pc: RTCPeerConnection | None = None
        self.dc: RTCDataChannel | None = None
        self.dc_closed = asyncio.Event()

    @classmethod
    async def open(cls, url: str) -> RtcSession:
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(url + "/session", max_msg_size=MAX_FRAME)
        except BaseException:
            await http.close()
            raise
        return cls(http, ws)

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type is aiohttp.WSMsgType.BINARY:
                    await self._add(self.ws_frames, decode(msg.data))
        finally:
            self.ws_closed.set()
            async with self._changed:
                self._changed.notify_all()

    async def _add(self, into: list[fr.Frame], frame: fr.Frame) -> None:
        async with self._changed:
            into.append(frame)
            self._changed.notify_all()

    async def expect(
        self,
        kind: type[T],
        match: Callable[[T], bool] = lambda _f: True,
        *,
        on: str = "ws",
        within: float = 10.0,
        since: int = 0,
    ) -> T:
        """The first frame of `kind` matching `match` on `on` ("ws" or "dc") from `since`."""
        frames = self.ws_frames if on == "ws" else self.dc_frames

        def found() -> T | None:
            return next((f for f in frames[since:] if isinstance(f, kind) and match(f)), None)

        try:
            async with asyncio.timeout(within):
                async with self._changed:
                    while (got := found()) is None:
                        await self._changed.wait()
                    return got
        except TimeoutError:
            tail = [repr(f)[:120] for f in frames[-5:]]
            raise AssertionError(
                f"no {kind.__name__} on {on} within {within:g} s: {tail}"
            ) from None

    async def send(self, frame: fr.Frame) -> None:
        await self.ws.send_bytes(encode(frame))

    async def sign_in(self, account_key: str) -> fr.SignedIn:
        challenge = await self.expect(fr.Challenge)
        await self.send(hello_for(wallet_from(account_key), self.key, challenge, time.time()))
        return await self.expect(fr.SignedIn)

    async def sign_in_and_join(self, account_key: str, world_id: str) -> fr.Joined:
        await self.sign_in(account_key)
        await self.send(fr.Join(world_id))
        return await self.expect(fr.Joined)

    async def make_offer(self, *, ordered: bool = False, label: str = LABEL) -> str:
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        dc = self.dc = pc.createDataChannel(label, ordered=ordered, maxRetransmits=0)
        dc.on("message", lambda data: self._on_dc(data))
        dc.on("close", self.dc_closed.set)
        await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate
        return pc.localDescription.sdp

    def _on_dc(self, data: Any) -> None:
        if isinstance(data, bytes):
            asyncio.get_running_loop().create_task(self._add(self.dc_frames, decode(data)))

    async def open_channel(
        self, within: float = 10.0, *, ordered: bool = False, wait_open: bool = True
    ) -> float:
        """Offer, take the answer, wait for the channel to open; seconds it took."""
        started = time.monotonic()
        since = len(self.ws_frames)
        offer = await self.make_offer(ordered=ordered)
        await self.send(fr.Signal(fr.NODE_PEER, "offer", offer))
        answer = await self.expect(
            fr.Signal, lambda s: s.kind == "answer", since=since, within=within
        )
        assert answer.peer == fr.NODE_PEER
        assert self.pc is not None and self.dc is not None
        opened = asyncio.Event()
        self.dc.on("open", opened.set)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer.payload, "answer"))
        if wait_open and self.dc.readyState != "open":
            async with asyncio.timeout(within):
                await opened.wait()
        return time.monotonic() - started

    def dc_send(self, data: bytes | fr.Frame) -> None:
        assert self.dc is not None and self.dc.readyState == "open"
        self.dc.send(data if isinstance(data, bytes) else encode(data))

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        await self.ws.close()
        await self.http.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
