"""The gateway's `/session` WebSocket: bytes in order both ways, limits, slow clients dropped."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import WSMsgType

from fluxnode.core.errors import NotFound
from fluxnode.core.session.gate import SessionPeer, SessionSink
from fluxnode.core.session.wire import MAX_FRAME
from fluxnode.gateway import make_gateway_app
from fluxnode.gateway.session_ws import SEND_QUEUE
from tests.unit.gateway_helpers import FakeNode, serve


class EchoGate:
    """Answers every frame with b"re:" + frame; `flood` sends more than a client can queue."""

    def __init__(self) -> None:
        self.sinks: list[SessionSink] = []
        self.received: list[bytes] = []
        self.closed = asyncio.Event()

    async def open_session(self, sink: SessionSink, remote: str) -> SessionPeer:
        self.sinks.append(sink)
        sink.send(b"hello " + remote.encode())
        gate = self

        class Peer:
            async def receive(self, data: bytes) -> None:
                gate.received.append(data)
                if data == b"flood":
                    results = [sink.send(b"x" * 1000) for _ in range(SEND_QUEUE * 4)]
                    gate.flood_results = results
                elif data == b"bye":
                    sink.send(b"last words")
                    sink.close(1000, "bye")
                else:
                    sink.send(b"re:" + data)

            async def closed(self) -> None:
                gate.closed.set()

        return Peer()

    async def world_manifest(self, world_id: str) -> bytes:
        if world_id != "0xabc/hello":
            raise NotFound(f"no world {world_id}")
        return b'{"name": "Hello"}'


async def test_frames_flow_both_ways_in_order_and_close_is_reported() -> None:
    gate = EchoGate()
    app = make_gateway_app(FakeNode(), sessions=gate)
    async with serve(app) as port, aiohttp.ClientSession() as http:
        async with http.ws_connect(f"http://127.0.0.1:{port}/session") as ws:
            first = await ws.receive()
            assert first.type is WSMsgType.BINARY and first.data == b"hello 127.0.0.1"
            for i in range(50):
                await ws.send_bytes(b"%d" % i)
            got = [(await ws.receive()).data for _ in range(50)]
            assert got == [b"re:%d" % i for i in range(50)]
            await ws.send_bytes(b"bye")
            assert (await ws.receive()).data == b"last words"  # queued frames go out first
            closing = await ws.receive()
            assert closing.type is WSMsgType.CLOSE and closing.data == 1000
        await asyncio.wait_for(gate.closed.wait(), 5)


async def test_text_messages_close_the_connection() -> None:
    gate = EchoGate()
    app = make_gateway_app(FakeNode(), sessions=gate)
    async with serve(app) as port, aiohttp.ClientSession() as http:
        async with http.ws_connect(f"http://127.0.0.1:{port}/session") as ws:
            await ws.receive()
            await ws.send_str("hello")
            msg = await ws.receive()
            assert msg.type is WSMsgType.CLOSE and msg.data == 1003
        await asyncio.wait_for(gate.closed.wait(), 5)
    assert gate.received == []


async def test_a_message_over_the_frame_limit_closes_without_reaching_the_node() -> None:
    gate = EchoGate()
    app = make_gateway_app(FakeNode(), sessions=gate)
    async with serve(app) as port, aiohttp.ClientSession() as http:
        async with http.ws_connect(f"http://127.0.0.1:{port}/session") as ws:
            await ws.receive()
            await ws.send_bytes(b"y" * (MAX_FRAME + 1))
            msg = await ws.receive()
            assert msg.type is WSMsgType.CLOSE and msg.data == 1009  # message too big
        await asyncio.wait_for(gate.closed.wait(), 5)
    assert gate.received == []


async def test_a_client_that_does_not_read_is_dropped_not_buffered() -> None:
    gate = EchoGate()
    app = make_gateway_app(FakeNode(), sessions=gate)
    url = "http://127.0.0.1:{}/session"
    async with (
        serve(app) as port,
        aiohttp.ClientSession() as http,
        http.ws_connect(url.format(port)) as ws,
    ):
        await ws.receive()
        await ws.send_bytes(b"flood")
        await asyncio.wait_for(gate.closed.wait(), 5)
        # The node was told "too slow" (False) instead of being made to wait.
        results = gate.flood_results
        assert results[0] is True and results[-1] is False
        assert results.count(True) <= SEND_QUEUE
        frames = []
        while (msg := await ws.receive()).type is WSMsgType.BINARY:
            frames.append(msg.data)
        assert msg.type is WSMsgType.CLOSE and msg.data == 1008
        assert "too slow" in msg.extra
        assert len(frames) < SEND_QUEUE * 4


async def test_a_burst_from_a_client_that_reads_is_answered_in_full() -> None:
    # Messages already buffered are read without the event loop switching tasks; the writer
    # must still get to drain the answers, or a client that reads promptly is dropped as slow.
    gate = EchoGate()
    app = make_gateway_app(FakeNode(), sessions=gate)
    url = "http://127.0.0.1:{}/session"
    async with (
        serve(app) as port,
        aiohttp.ClientSession() as http,
        http.ws_connect(url.format(port)) as ws,
    ):
        await ws.receive()
        burst = SEND_QUEUE * 3
        for i in range(burst):
            await ws.send_bytes(b"%d" % i)
        got = []
        for _ in range(burst):
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.type is WSMsgType.BINARY, (len(got), msg)
            got.append(msg.data)
        assert got == [b"re:%d" % i for i in range(burst)]


async def test_the_manifest_route_takes_world_ids_with_a_slash_and_404s_unknown_ones() -> None:
    app = make_gateway_app(FakeNode(), sessions=EchoGate())
    async with serve(app) as port, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{port}/api/worlds"
        async with http.get(f"{base}/0xabc/hello/manifest") as ok:
            assert ok.status == 200 and await ok.read() == b'{"name": "Hello"}'
            assert ok.content_type == "application/json"
        async with http.get(f"{base}/0xabc/nope/manifest") as missing:
            assert missing.status == 404
            assert (await missing.json())["error"]["code"] == "not_found"


class _HeldSocket:
    """A WebSocket whose sends complete only when the test lets them."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def send_bytes(self, data: bytes) -> None:
        self.started.set()
        await self.gate.wait()
        self.sent.append(data)

    async def close(self, code: int, message: bytes) -> None:
        self.closed = (code, message)


async def test_a_newer_view_replaces_an_unsent_older_one_in_place() -> None:
    from fluxnode.gateway.session_ws import _Sink

    ws, slow = _HeldSocket(), []
    sink = _Sink(ws, None, lambda why, stuck: slow.append(why))  # type: ignore[arg-type]
    writer = asyncio.create_task(sink.write_loop())
    assert sink.send(b"first")
    await ws.started.wait()  # the writer holds "first"
    assert sink.send_latest(b"view 1") and sink.send(b"chat") and sink.send_latest(b"view 2")
    ws.started.clear()
    ws.gate.set()
    await ws.started.wait()  # the writer took its next frame: view 2
    assert sink.send_latest(b"view 3")  # the writer took view 2: this one queues anew
    sink.close(1000, "bye")
    await writer
    assert ws.sent == [b"first", b"view 2", b"chat", b"view 3"]
    assert slow == []


async def test_a_writer_stuck_on_one_frame_for_the_stall_limit_drops_the_client() -> None:
    from fluxnode.gateway.session_ws import SEND_STALL_S, _Sink

    now = [100.0]
    ws, slow = _HeldSocket(), []
    sink = _Sink(ws, None, lambda why, stuck: slow.append(why), clock=lambda: now[0])  # type: ignore[arg-type]
    writer = asyncio.create_task(sink.write_loop())
    assert sink.send(b"stuck")
    await ws.started.wait()
    now[0] += SEND_STALL_S - 0.1
    assert sink.send_latest(b"view") and slow == []  # a views' worth of waiting is fine
    now[0] += 0.2
    assert not sink.send_latest(b"newer view")
    assert slow == [f"its socket took no frame for {SEND_STALL_S:g} s"]
    assert sink.close_code == 1008
    ws.gate.set()
    await writer
    assert ws.closed[0] == 1008
