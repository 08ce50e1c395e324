"""The load generator of bench_sessions: many visitors in ONE process, or a WebSocket echo server.

    python bench/sessions_load.py load SPEC_JSON     # prints one JSON line with the figures
    python bench/sessions_load.py echo               # prints its port, echoes until killed

A lean client, not `fluxnode.client.Visitor`: a Visitor turns every transform it receives into
a typed `PeerMoved` event through the strictly checked decoder and its `Replica`; with 100
visitors each seeing 99 others at 10 Hz that is ~100,000 events a second, which one Python
process cannot keep up with, so the figures would measure the client. This one speaks the same
frames (`fluxnode.core.session.wire` for everything it sends and for the handshake, the same
sign-in as Visitor via `fluxnode.client.signin.hello_for`) and acknowledges every ViewerFrame
as the Replica does, but reads ViewerFrames with plain `msgpack`, and only the *observers* (a
chosen subset) look at their contents; the rest read just the frame's seq to acknowledge it.

Latency. Visitor v's k-th transform is sent at time t(v, k) with position
``y = 1 + (k mod 4096) / 4096`` (exact in binary, so it survives msgpack's float64 as is) on a
small circle around v's base; an observer that receives a transform of v reads k back from y and
counts now - t(v, k) the first time it sees that k (a higher k than any it saw of v before: a
full snapshot repeating old positions is not counted). Sender and observer share this process
and its clock, so no clock sync is involved; the figure includes both ends' client work.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgpack
from aiohttp import web

from fluxnode.chain.entry import new_session_key
from fluxnode.chain.keys import WalletKey
from fluxnode.client.links import session_url
from fluxnode.client.signin import hello_for
from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire
from fluxnode.core.session.presence import Transform

RING = 4096
BIN_MS = 0.1  # latency histogram resolution
MAX_MS = 10_000.0
ROT = (0.0, 0.0, 0.0, 1.0)
HANDSHAKE_S = 90.0  # a node busy with 1,000 visitors answers sign-ins slowly
VIEWER_FRAME, ERROR = 11, 8


def clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its threads (from /proc/PID/stat), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / clock_ticks()


def wait_seconds(pid: int) -> float:
    """Time the threads of `pid` spent runnable but waiting for a CPU (/proc/PID/task/*/schedstat):
    how much the machine's other load delayed it."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1e9


def hwm_mib(pid: int | str = "self") -> float:
    """Peak resident set (VmHWM) of a running process, MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Histogram:
    def __init__(self) -> None:
        self.bins = [0] * (int(MAX_MS / BIN_MS) + 1)
        self.n = 0

    def add(self, ms: float) -> None:
        self.bins[min(len(self.bins) - 1, int(ms / BIN_MS))] += 1
        self.n += 1

    def pct(self, q: float) -> float | None:
        if not self.n:
            return None
        want = q * self.n
        seen = 0
        for i, c in enumerate(self.bins):
            seen += c
            if seen >= want:
                return (i + 0.5) * BIN_MS
        return MAX_MS


@dataclass
class Lean:
    index: int
    node: int
    base: tuple[float, float, float]
    observer: bool
    ws: aiohttp.ClientWebSocketResponse | None = None
    visitor: str = ""
    instance: str = ""
    spawn: tuple[float, float, float] = (0.0, 0.0, 0.0)
    joined_at: float = 0.0
    k: int = 0
    sent_t: list[float] = field(default_factory=lambda: [0.0] * RING)
    sent_k: list[int] = field(default_factory=lambda: [-1] * RING)
    last_seen: list[int] = field(default_factory=list)
    bytes_in: int = 0
    frames_in: int = 0
    full_frames: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    phase: float = 0.0


class Load:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.loop = asyncio.get_running_loop()
        self.by_id: dict[str, int] = {}
        self.measuring = False
        self.hist = {"same": Histogram(), "cross": Histogram()}
        self.vs: list[Lean] = []
        self.stop = False
        self.moving = False
        self.error_text: dict[str, str] = {}
        self.readers: list[asyncio.Task[None]] = []

    def positions(self, n: int) -> list[tuple[float, float, float]]:
        rnd = random.Random(7)
        sx, _, sz = self.spec.get("spawn", (0.0, 0.0, 5.0))
        half = float(self.spec["spread_m"]) / 2
        return [
            (sx + rnd.uniform(-half, half), 0.0, sz + rnd.uniform(-half, half)) for _ in range(n)
        ]

    async def sign_in_and_join(self, http: aiohttp.ClientSession, v: Lean) -> None:
        url = session_url(self.spec["nodes"][v.node]["url"])
        ws = await http.ws_connect(url, max_msg_size=wire.MAX_FRAME)
        wallet = WalletKey.from_secret(os.urandom(32))
        key = new_session_key()
        challenge = wire.decode((await ws.receive(timeout=HANDSHAKE_S)).data)
        assert isinstance(challenge, fr.Challenge), challenge
        await ws.send_bytes(wire.encode(hello_for(wallet, key, challenge, time.time())))
        signed = wire.decode((await ws.receive(timeout=HANDSHAKE_S)).data)
        if not isinstance(signed, fr.SignedIn):
            raise SystemExit(f"sign-in refused: {signed}")
        v.visitor = signed.visitor
        await ws.send_bytes(wire.encode(fr.Join(self.spec["world"], None, ())))
        while True:
            msg = await ws.receive(timeout=HANDSHAKE_S)
            if msg.type is not aiohttp.WSMsgType.BINARY:
                raise SystemExit(f"visitor {v.index}: connection ended while joining: {msg}")
            frame = wire.decode(msg.data)
            if isinstance(frame, fr.Joined):
                v.instance, v.spawn = frame.instance_id, frame.spawn.position
                break
            if isinstance(frame, fr.Denied | fr.RedirectTo):
                raise SystemExit(f"visitor {v.index} not admitted: {frame}")
        v.joined_at = self.loop.time()
        v.ws = ws
        self.by_id[v.visitor] = v.index
        self.readers.append(asyncio.create_task(self.reader(v)))

    async def join_all(self, http: aiohttp.ClientSession) -> None:
        # The first visitor on each node in turn, with a pause for the directory gossip (every
        # 2 s), so every node places the rest into the instance the first one opened.
        firsts = {}
        for v in self.vs:
            firsts.setdefault(v.node, v)
        for i, v in enumerate(firsts.values()):
            if i:
                await asyncio.sleep(float(self.spec.get("first_wait_s", 3.0)))
            await self.sign_in_and_join(http, v)
        sem = asyncio.Semaphore(int(self.spec.get("join_concurrency", 16)))

        async def one(v: Lean) -> None:
            async with sem:
                await self.sign_in_and_join(http, v)

        # Node by node: concurrent claims from several nodes race for the same lowest free
        # slots, and a visitor that loses 3 times is put in a new instance (see the docs).
        order = self.spec.get("join_order", "by_node")
        groups = (
            [[v for v in self.vs if v.node == j and v.ws is None] for j in firsts]
            if order == "by_node"
            else [[v for v in self.vs if v.ws is None]]
        )
        for group in groups:
            await asyncio.gather(*(one(v) for v in group))

    async def heartbeats(self) -> None:
        # Joining 1,000 visitors takes longer than the node's 30 s silence limit.
        beat = wire.encode(fr.Heartbeat())
        while not self.moving:
            for v in self.vs:
                if v.ws is not None and not v.ws.closed:
                    await v.ws.send_bytes(beat)
            await asyncio.sleep(5.0)

    def transform(self, v: Lean) -> bytes:
        k = v.k
        v.k += 1
        a = v.phase + 0.3 * k
        if k == 0:  # first move: from the spawn point to the base (allowed after a pause)
            a = v.phase
        pos = (
            v.base[0] + 0.5 * math.cos(a),
            1.0 + (k % RING) / RING,
            v.base[2] + 0.5 * math.sin(a),
        )
        v.sent_k[k % RING] = k
        v.sent_t[k % RING] = self.loop.time()
        return wire.encode(Transform(pos, ROT, "walk"))

    async def mover(self) -> None:
        hz = float(self.spec.get("hz", 10.0))
        slots = 10
        groups = [[v for v in self.vs if v.index % slots == s] for s in range(slots)]
        step = 1.0 / hz / slots
        nxt = self.loop.time()
        tick = 0
        while not self.stop:
            for v in groups[tick % slots]:
                if v.ws is not None and not v.ws.closed:
                    await v.ws.send_bytes(self.transform(v))
            tick += 1
            nxt += step
            delay = nxt - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:
                nxt = self.loop.time()  # fell behind by a second: do not burst to catch up

    async def reader(self, v: Lean) -> None:
        assert v.ws is not None
        same_node = [u.node == v.node for u in self.vs]
        hist_same, hist_cross = self.hist["same"], self.hist["cross"]
        vs = self.vs
        by_id = self.by_id
        async for msg in v.ws:
            if msg.type is not aiohttp.WSMsgType.BINARY:
                break
            data = msg.data
            if self.measuring:
                v.bytes_in += len(data)
                v.frames_in += 1
            if v.observer:
                obj = msgpack.unpackb(data)
                code = obj[0]
                if code != VIEWER_FRAME:
                    if code == ERROR and self.measuring:
                        v.errors[obj[1]] = v.errors.get(obj[1], 0) + 1
                        self.error_text.setdefault(obj[1], obj[2])
                    continue
                seq, base, changed = obj[1], obj[2], obj[3]
                await v.ws.send_bytes(wire.encode(fr.Ack(seq)))
                now = self.loop.time()
                if base is None and self.measuring:
                    v.full_frames += 1
                last = v.last_seen
                for vid, t in changed.items():
                    if t is None:
                        continue
                    ui = by_id.get(vid)
                    if ui is None:
                        continue
                    idx = round((t[0][1] - 1.0) * RING)
                    u = vs[ui]
                    k = u.sent_k[idx]
                    if k <= last[ui]:
                        continue
                    last[ui] = k
                    if self.measuring:
                        ms = (now - u.sent_t[idx]) * 1000
                        (hist_same if same_node[ui] else hist_cross).add(ms)
            else:
                un = msgpack.Unpacker()
                un.feed(data)
                un.read_array_header()
                code = un.unpack()
                if code == VIEWER_FRAME:
                    seq = un.unpack()
                    base = un.unpack()
                    if base is None and self.measuring:
                        v.full_frames += 1
                    await v.ws.send_bytes(wire.encode(fr.Ack(seq)))
                elif code == ERROR and self.measuring:
                    c = un.unpack()
                    v.errors[c] = v.errors.get(c, 0) + 1
                    self.error_text.setdefault(c, un.unpack())

    async def echo_floor(self, url: str, n: int) -> dict[str, float]:
        """Round trips of a 100-byte binary message through an aiohttp echo server, 10 ms apart."""
        lat = []
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            payload = os.urandom(100)
            for _ in range(n):
                t = self.loop.time()
                await ws.send_bytes(payload)
                await ws.receive()
                lat.append((self.loop.time() - t) * 1000)
                await asyncio.sleep(0.01)
        lat.sort()
        return {"p50": lat[len(lat) // 2], "p99": lat[min(len(lat) - 1, int(0.99 * len(lat)))]}

    async def run(self) -> dict[str, Any]:
        spec = self.spec
        n = int(spec["visitors"])
        n_nodes = len(spec["nodes"])
        observers = int(spec.get("observers", n))
        bases = self.positions(n)
        rnd = random.Random(11)
        obs_every = max(1, n // max(1, observers))
        self.vs = [
            Lean(i, i % n_nodes, bases[i], i % obs_every == 0, phase=rnd.uniform(0, 6.28))
            for i in range(n)
        ]
        for v in self.vs:
            v.last_seen = [-1] * n
        result: dict[str, Any] = {}
        if spec.get("echo_url"):
            result["echo"] = await self.echo_floor(spec["echo_url"], int(spec.get("echo_n", 300)))
        conn = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=conn) as http:
            t0 = self.loop.time()
            beats = asyncio.create_task(self.heartbeats())
            await self.join_all(http)
            result["join_s"] = self.loop.time() - t0
            if spec.get("barrier"):  # several load generators: all joined before anyone moves
                print("READY", flush=True)
                await self.loop.run_in_executor(None, sys.stdin.readline)
            instances: dict[str, int] = {}
            for v in self.vs:
                instances[v.instance] = instances.get(v.instance, 0) + 1
            result["instances"] = sorted(instances.values(), reverse=True)
            result["instance_ids"] = instances
            names = {iid: f"i{j}" for j, iid in enumerate(instances)}
            result["instance_by_node"] = [
                sorted({names[v.instance] for v in self.vs if v.node == j}) for j in range(n_nodes)
            ]
            # The first move jumps from the spawn point to the base: wait until the node's
            # speed check (50 m/s since the last accepted transform) allows the longest jump.
            far = max(math.dist(v.spawn, v.base) for v in self.vs)
            await asyncio.sleep(max(far / 50.0 + 0.5, float(spec.get("settle_s", 3.0))))
            self.moving = True
            beats.cancel()
            mover = asyncio.create_task(self.mover())
            await asyncio.sleep(float(spec.get("warmup_s", 3.0)))
            pids = [int(x["pid"]) for x in spec["nodes"]]
            cpu0 = [cpu_seconds(p) for p in pids]
            wait0 = [wait_seconds(p) for p in pids]
            self_wait0 = wait_seconds(os.getpid())
            self_cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            sent0 = sum(v.k for v in self.vs)
            t_start = self.loop.time()
            self.measuring = True
            await asyncio.sleep(float(spec["window_s"]))
            self.measuring = False
            window = self.loop.time() - t_start
            # Connections the node closed before the end (e.g. "too slow: frames not read").
            dropped: dict[str, int] = {}
            for v in self.vs:
                if v.ws is not None and v.ws.closed:
                    code = str(v.ws.close_code)
                    dropped[code] = dropped.get(code, 0) + 1
            result["closed_by_node"] = dropped
            cpu1 = [cpu_seconds(p) for p in pids]
            wait1 = [wait_seconds(p) for p in pids]
            self_wait1 = wait_seconds(os.getpid())
            self_cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            sent = sum(v.k for v in self.vs) - sent0
            self.stop = True
            await mover
            for v in self.vs:
                assert v.ws is not None
                await v.ws.close()
            await asyncio.gather(*self.readers, return_exceptions=True)
        lg_cpu = (self_cpu1.ru_utime + self_cpu1.ru_stime) - (
            self_cpu0.ru_utime + self_cpu0.ru_stime
        )
        errors: dict[str, int] = {}
        for v in self.vs:
            for c, k in v.errors.items():
                errors[c] = errors.get(c, 0) + k
        for name, h in self.hist.items():
            result[name] = {"n": h.n, "p50": h.pct(0.5), "p99": h.pct(0.99)}
        both = Histogram()
        both.bins = [
            a + b for a, b in zip(self.hist["same"].bins, self.hist["cross"].bins, strict=True)
        ]
        both.n = self.hist["same"].n + self.hist["cross"].n
        result["all"] = {"n": both.n, "p50": both.pct(0.5), "p99": both.pct(0.99)}
        result.update(
            window_s=window,
            node_cpu_s=[b - a for a, b in zip(cpu0, cpu1, strict=True)],
            node_wait_s=[b - a for a, b in zip(wait0, wait1, strict=True)],
            loadgen_wait_s=self_wait1 - self_wait0,
            node_hwm_mib=[hwm_mib(p) for p in pids],
            loadgen_cpu_s=lg_cpu,
            loadgen_hwm_mib=hwm_mib(),
            transforms_sent_per_s=sent / window,
            bytes_per_visitor_s=sum(v.bytes_in for v in self.vs) / n / window,
            frames_per_visitor_s=sum(v.frames_in for v in self.vs) / n / window,
            full_frames=sum(v.full_frames for v in self.vs),
            errors=errors,
            error_text=self.error_text,
            observers=sum(v.observer for v in self.vs),
        )
        return result


async def load_main(spec: dict[str, Any]) -> None:
    result = await Load(spec).run()
    print(json.dumps(result), flush=True)


async def echo_main() -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/echo", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    if sys.argv[1] == "echo":
        asyncio.run(echo_main())
    else:
        asyncio.run(load_main(json.loads(sys.argv[2])))
