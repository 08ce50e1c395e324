"""The two processes bench_ws starts besides the node: the clients, and the reference server.

    python bench/ws_load.py clients SPEC_JSON   # N WebSocket visitors; see below
    python bench/ws_load.py ref ROOM TICK_HZ    # the reference server; prints its port

Clients (one process, asyncio). ``spec["target"]`` is ``"node"`` (sign in over `/ws` with the
same `Hello` as `fluxnode.client.Visitor`, `Join` the world, acknowledge every `ViewerFrame`
as the client's `Replica` does) or ``"ref"`` (connect; the server names us in its first
message). Connections come from 127.0.0.2, 127.0.0.3, ... (all loopback), `PER_SOURCE` each:
the gateway rate-limits new connections per client IP, and a thousand from one address would
measure that limit instead. After every client is in, the process prints ``READY`` and waits for
``go`` on stdin; then the movers (``movers`` of every ``room`` visitors, in join order) send a
transform at ``hz`` for ``window_s`` seconds while every client reads. Then it prints one JSON
line with the figures and waits for ``bye`` (so the bench reads the server's memory with every
connection still open) before closing.

Latency: as in sessions_load.py, mover m's k-th transform carries ``y = 1 + (k mod 4096)/4096``
and its send time is kept; an observer that receives a newer k of m counts now - t(m, k).
Observers (``observers`` clients, spread evenly) decode whole frames; the rest read only the
sequence number they acknowledge. Senders and observers share this process and its clock.

Reference server: a bare aiohttp WebSocket server with the same shape of work and nothing else:
rooms of ROOM clients in arrival order, each client's latest transform kept, and every tick one
frame per room with the transforms that changed (the `ViewerFrame` layout, no base), sent to
every member. No sign-in, no access checks, no per-viewer deltas or distance tiers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from typing import Any

import aiohttp
import msgpack
from aiohttp import web
from sessions_load import RING, Histogram, hwm_mib

from fluxnode.chain.entry import new_session_key
from fluxnode.chain.keys import WalletKey
from fluxnode.client.signin import hello_for
from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire
from fluxnode.core.session.presence import Transform

VIEWER_FRAME = 11
PER_SOURCE = 40  # connections per source address: under the gateway's per-IP burst of 60
HANDSHAKE_S = 120.0
ROT = (0.0, 0.0, 0.0, 1.0)


class Client:
    def __init__(self, index: int, observer: bool) -> None:
        self.index = index
        self.observer = observer
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.name = ""
        self.spawn = (0.0, 0.0, 5.0)
        self.k = 0
        self.sent_t = [0.0] * RING
        self.sent_k = [-1] * RING


class Clients:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.loop = asyncio.get_running_loop()
        n = int(spec["visitors"])
        every = max(1, n // max(1, int(spec["observers"])))
        self.cs = [Client(i, i % every == 0) for i in range(n)]
        room, movers = int(spec["room"]), int(spec["movers"])
        self.movers = [c for c in self.cs if c.index % room < movers]
        self.by_name: dict[str, Client] = {}
        self.last: dict[tuple[int, int], int] = {}
        self.hist = Histogram()
        self.measuring = False
        self.frames = 0
        self.readers: list[asyncio.Task[None]] = []

    async def connect(self, http: aiohttp.ClientSession, c: Client) -> None:
        ws = await http.ws_connect(self.spec["url"], max_msg_size=wire.MAX_FRAME)
        if self.spec["target"] == "ref":
            c.name = msgpack.unpackb((await ws.receive(timeout=HANDSHAKE_S)).data)[1]
        else:
            await self.sign_in_and_join(ws, c)
        c.ws = ws
        self.by_name[c.name] = c
        self.readers.append(asyncio.create_task(self.read(c)))

    async def sign_in_and_join(self, ws: aiohttp.ClientWebSocketResponse, c: Client) -> None:
        challenge = wire.decode((await ws.receive(timeout=HANDSHAKE_S)).data)
        assert isinstance(challenge, fr.Challenge), challenge
        wallet = WalletKey.from_secret(os.urandom(32))
        hello = hello_for(wallet, new_session_key(), challenge, time.time())
        await ws.send_bytes(wire.encode(hello))
        signed = wire.decode((await ws.receive(timeout=HANDSHAKE_S)).data)
        if not isinstance(signed, fr.SignedIn):
            raise SystemExit(f"sign-in refused: {signed}")
        c.name = signed.visitor
        await ws.send_bytes(wire.encode(fr.Join(self.spec["world"], None, ())))
        while True:
            msg = await ws.receive(timeout=HANDSHAKE_S)
            if msg.type is not aiohttp.WSMsgType.BINARY:
                raise SystemExit(f"visitor {c.index}: connection ended while joining: {msg}")
            frame = wire.decode(msg.data)
            if isinstance(frame, fr.Joined):
                p = frame.spawn.position
                c.spawn = (float(p[0]), float(p[1]), float(p[2]))
                return
            if isinstance(frame, fr.Denied | fr.RedirectTo):
                raise SystemExit(f"visitor {c.index} not admitted: {frame}")

    async def read(self, c: Client) -> None:
        assert c.ws is not None
        ack = self.spec["target"] == "node"
        async for msg in c.ws:
            if msg.type is not aiohttp.WSMsgType.BINARY:
                break
            if self.measuring:
                self.frames += 1
            data = msg.data
            if not c.observer:
                if ack:
                    un = msgpack.Unpacker()
                    un.feed(data)
                    un.read_array_header()
                    if un.unpack() == VIEWER_FRAME:
                        await c.ws.send_bytes(wire.encode(fr.Ack(un.unpack())))
                continue
            obj = msgpack.unpackb(data)
            if obj[0] != VIEWER_FRAME:
                continue
            if ack:
                await c.ws.send_bytes(wire.encode(fr.Ack(obj[1])))
            now = self.loop.time()
            for name, t in obj[3].items():
                m = self.by_name.get(name)
                if m is None or t is None:
                    continue
                idx = round((t[0][1] - 1.0) * RING)
                k = m.sent_k[idx]
                key = (c.index, m.index)
                if k <= self.last.get(key, -1):
                    continue
                self.last[key] = k
                if self.measuring:
                    self.hist.add((now - m.sent_t[idx]) * 1000)

    def transform(self, c: Client) -> bytes:
        k = c.k
        c.k += 1
        x, _, z = c.spawn
        pos = (x + 0.02 * (k % 50), 1.0 + (k % RING) / RING, z)
        c.sent_k[k % RING] = k
        c.sent_t[k % RING] = self.loop.time()
        if self.spec["target"] == "ref":
            return msgpack.packb([list(pos), list(ROT), "walk"])
        return wire.encode(Transform(pos, ROT, "walk"))

    async def move(self, stop: asyncio.Event) -> None:
        hz = float(self.spec["hz"])
        slots = 10  # movers spread over the tick, as real clients are
        groups = [self.movers[s::slots] for s in range(slots)]
        nxt = self.loop.time()
        tick = 0
        while not stop.is_set():
            for c in groups[tick % slots]:
                if c.ws is not None and not c.ws.closed:
                    await c.ws.send_bytes(self.transform(c))
            tick += 1
            nxt += 1.0 / hz / slots
            delay = nxt - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:
                nxt = self.loop.time()

    async def heartbeats(self, stop: asyncio.Event) -> None:
        # The node drops a visitor silent for 30 s; joining a thousand can take longer.
        beat = wire.encode(fr.Heartbeat())
        while not stop.is_set():
            if self.spec["target"] == "node":
                for c in self.cs:
                    if c.ws is not None and not c.ws.closed:
                        await c.ws.send_bytes(beat)
            await asyncio.sleep(5.0)

    async def run(self) -> None:
        spec = self.spec
        sessions = [
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, local_addr=(f"127.0.0.{2 + i}", 0))
            )
            for i in range((len(self.cs) + PER_SOURCE - 1) // PER_SOURCE)
        ]
        stop, moving = asyncio.Event(), asyncio.Event()
        beats = asyncio.create_task(self.heartbeats(stop))
        try:
            t0 = self.loop.time()
            sem = asyncio.Semaphore(int(spec.get("join_concurrency", 16)))

            async def one(c: Client) -> None:
                async with sem:
                    await self.connect(sessions[c.index // PER_SOURCE], c)

            await asyncio.gather(*(one(c) for c in self.cs))
            join_s = self.loop.time() - t0
            print("READY", flush=True)
            await self.loop.run_in_executor(None, sys.stdin.readline)
            mover = asyncio.create_task(self.move(moving))
            await asyncio.sleep(float(spec.get("warmup_s", 2.0)))
            self.measuring = True
            t1 = self.loop.time()
            await asyncio.sleep(float(spec["window_s"]))
            self.measuring = False
            window = self.loop.time() - t1
            moving.set()
            await mover
            closed = sum(1 for c in self.cs if c.ws is None or c.ws.closed)
            h = self.hist
            result = {
                "join_s": join_s,
                "window_s": window,
                "samples": h.n,
                "p50_ms": h.pct(0.5),
                "p99_ms": h.pct(0.99),
                "frames_per_s": self.frames / window,
                "movers": len(self.movers),
                "observers": sum(c.observer for c in self.cs),
                "closed_by_server": closed,
                "clients_hwm_mib": hwm_mib(),
            }
            print(json.dumps(result), flush=True)
            await self.loop.run_in_executor(None, sys.stdin.readline)
        finally:
            stop.set()
            beats.cancel()
            # No closing handshakes: a thousand of them against a busy server only measure it
            # answering them. Closing the sessions drops every connection.
            for task in self.readers:
                task.cancel()
            await asyncio.gather(*self.readers, return_exceptions=True)
            for s in sessions:
                await s.close()


async def clients_main(spec: dict[str, Any]) -> None:
    await Clients(spec).run()


async def ref_main(room: int, tick_hz: float) -> None:
    rooms: list[dict[str, web.WebSocketResponse]] = []
    dirty: list[dict[str, Any]] = []
    seqs: list[int] = []
    count = [0]

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=wire.MAX_FRAME)
        await ws.prepare(request)
        i = count[0]
        count[0] += 1
        r, name = i // room, f"c{i}"
        while len(rooms) <= r:
            rooms.append({})
            dirty.append({})
            seqs.append(0)
        rooms[r][name] = ws
        await ws.send_bytes(msgpack.packb([0, name]))
        try:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.BINARY:
                    dirty[r][name] = msgpack.unpackb(msg.data)
        finally:
            rooms[r].pop(name, None)
        return ws

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        nxt = loop.time()
        while True:
            nxt += 1.0 / tick_hz
            await asyncio.sleep(max(0.0, nxt - loop.time()))
            for r, changed in enumerate(dirty):
                if not changed:
                    continue
                seqs[r] += 1
                frame = msgpack.packb([VIEWER_FRAME, seqs[r], None, changed, [], {}])
                dirty[r] = {}
                for ws in list(rooms[r].values()):
                    if not ws.closed:
                        with contextlib.suppress(ConnectionError):  # a client going away
                            await ws.send_bytes(frame)

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(port, flush=True)
    await ticker()


if __name__ == "__main__":
    if sys.argv[1] == "ref":
        asyncio.run(ref_main(int(sys.argv[2]), float(sys.argv[3])))
    else:
        asyncio.run(clients_main(json.loads(sys.argv[2])))
