"""WebRTC meshes (docs/benchmarks.md, "Meshes"): two `flux-node run` processes with WebRTC on
(ICE on loopback: `FLUX_TEST_LOOPBACK_ICE=1` in their environment, the same aioice patch here),
a public world with 16 seats, eight `fluxnode.client.Visitor`s in one instance (four per node)
and a ninth that joins and leaves to switch the instance between relay and mesh.

Figures, each over `--runs` runs (median, min-max), phases alternated run by run:

1. mesh set-up: the ninth leaves; from the first `MeshPlan` of mode mesh any of the eight gets
   until all 28 data channels are open on both ends (goal < 1 s); also from the last plan;
2. transform round trip: visitor X moves to a marked position, Y moves to the same mark when it
   sees it, X times until it sees Y's echo; in the mesh (X on node a, Y on node b, direct), and
   relayed (the ninth present: relay mode) with X and Y on one node, and on two nodes. The
   relayed figures include the nodes' 10 Hz tick (0-100 ms per node crossed);
3. CPU seconds of the two node processes (/proc/PID/stat) over `--window` seconds while the
   eight move at 10 Hz, in the mesh vs relayed (the ninth present and still).

    .venv/bin/python bench/bench_mesh.py --runs 5
    .venv/bin/python bench/bench_mesh.py --runs 1 --pings 10 --window 2     # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aioice.ice
import sessions_cluster as sc
from eth_account import Account
from harness import Bench, Stats
from sessions_load import cpu_seconds

from fluxnode.client import PeerMoved, Visitor

CONFIG = "[webrtc]\nenabled = true\nice_servers = []\n"
PLAYERS = 16
WAIT = 60.0


class Seen:
    """A visitor whose PeerMoved events are handed to `on_move` as they come."""

    def __init__(self, v: Visitor) -> None:
        self.v = v
        self.on_move: Callable[[PeerMoved, float], None] | None = None
        self.task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        with contextlib.suppress(Exception):
            async for event in self.v.events():
                if isinstance(event, PeerMoved) and self.on_move is not None:
                    self.on_move(event, time.perf_counter())

    async def close(self) -> None:
        await self.v.close()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def until(check: Callable[[], bool], what: str, within: float = WAIT) -> None:
    end = time.monotonic() + within
    while not check():
        if time.monotonic() > end:
            raise TimeoutError(f"gave up waiting for {what}")
        await asyncio.sleep(0.005)


async def seat(url: str, world: str, instance: str | None) -> Seen:
    """A visitor at `url` in `instance` (None: wherever); rejoins until the node places it
    there (a node places in a remote instance once the directory told it of that one)."""
    v = await Visitor.connect(url, Account.create().key.hex(), world_id=world, timeout=20.0)
    end = time.monotonic() + WAIT
    while instance is not None and v.joined is not None and v.joined.instance_id != instance:
        if time.monotonic() > end:
            raise TimeoutError(f"{url} never placed a visitor in {instance}")
        await v.leave()
        await asyncio.sleep(0.3)
        await v.join(world)
    return Seen(v)


def meshed(crowd: list[Seen]) -> bool:
    ids = {s.v.visitor for s in crowd}
    return all(s.v.mesh_peers == ids - {s.v.visitor} for s in crowd)


def relaying(crowd: list[Seen]) -> bool:
    return all(s.v.mesh.plan is not None and s.v.mesh.plan.mode == "relay"
               and not s.v.mesh_peers for s in crowd)  # fmt: skip


class World:
    def __init__(self, crowd: list[Seen], url_a: str, world: str) -> None:
        self.crowd, self.url_a, self.world = crowd, url_a, world
        self.ninth: Seen | None = None

    async def relay(self) -> None:
        if self.ninth is None:
            self.ninth = await seat(self.url_a, self.world, self.crowd[0].v.joined.instance_id)  # type: ignore[union-attr]
        await until(lambda: relaying(self.crowd), "relay mode")

    async def mesh(self) -> tuple[float, float]:
        """Back to a mesh: seconds from the first and from the last mesh plan to all open."""
        if self.ninth is not None:
            await self.ninth.close()
            self.ninth = None
        loop = asyncio.get_running_loop()

        def plans() -> list[float]:
            return [s.v.mesh.plan_at for s in self.crowd if s.v.mesh.plan is not None
                    and s.v.mesh.plan.mode == "mesh" and s.v.mesh.plan_at is not None]  # fmt: skip

        await until(lambda: meshed(self.crowd), "a full mesh")
        done = loop.time()
        at = plans()
        return done - min(at), done - max(at)


async def round_trips(x: Seen, y: Seen, pings: int, direct: bool) -> list[float]:
    """Milliseconds from X's marked move until X sees Y at the same mark (5 pings a second)."""
    sent: dict[int, float] = {}
    rtts: list[float] = []
    echoed: set[int] = set()
    echoes: set[asyncio.Future[None]] = set()
    xb, yb = x.v.position, y.v.position
    assert xb is not None and yb is not None

    def mark(e: PeerMoved) -> int | None:
        if e.transform is None or e.direct != direct:
            return None
        return round((e.transform.position[1] - 1.0) * 4096)

    def at_y(e: PeerMoved, now: float) -> None:
        k = mark(e)
        if e.visitor == x.v.visitor and k is not None and k in sent and k not in echoed:
            echoed.add(k)
            echo = asyncio.ensure_future(y.v.move((yb[0], 1.0 + k / 4096, yb[2])))
            echoes.add(echo)
            echo.add_done_callback(echoes.discard)

    def at_x(e: PeerMoved, now: float) -> None:
        k = mark(e)
        if e.visitor == y.v.visitor and k in sent and len(rtts) < len(sent):
            rtts.append((now - sent.pop(k)) * 1000)  # type: ignore[arg-type]

    x.on_move, y.on_move = at_x, at_y
    try:
        for k in range(1, pings + 1):
            sent[k] = time.perf_counter()
            await x.v.move((xb[0], 1.0 + k / 4096, xb[2]))
            await asyncio.sleep(0.2)
        await until(lambda: not sent, "the last echoes", within=5.0)
    except TimeoutError:
        pass  # lost on the unreliable channel: counted below as missing
    finally:
        x.on_move = y.on_move = None
        await x.v.move(xb)
        await y.v.move(yb)
    return rtts


async def node_cpu(crowd: list[Seen], pids: list[int], window: float) -> float:
    """CPU seconds of the nodes while the crowd moves at 10 Hz for `window` seconds."""
    before = sum(cpu_seconds(p) for p in pids)
    end = time.monotonic() + window
    k = 0
    while time.monotonic() < end:
        k += 1
        for s in crowd:
            p = s.v.position
            assert p is not None
            await s.v.move((p[0] + (0.02 if k % 2 else -0.02), p[1], p[2]))
        await asyncio.sleep(0.1)
    return sum(cpu_seconds(p) for p in pids) - before


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def measure(bench: Bench, args: argparse.Namespace, nodes: list[sc.Node], world: str) -> None:
    a, b = nodes
    first = await seat(a.url, world, None)
    instance = first.v.joined.instance_id  # type: ignore[union-attr]
    crowd = [first] + [await seat(a.url, world, instance) for _ in range(3)]
    crowd += [await seat(b.url, world, instance) for _ in range(4)]
    w = World(crowd, a.url, world)
    x, y_same, y_other = crowd[0], crowd[1], crowd[4]
    out: dict[str, list[float]] = {k: [] for k in (
        "setup_first", "setup_last", "mesh_p50", "mesh_p99", "one_p50", "one_p99", "two_p50",
        "two_p99", "cpu_mesh", "cpu_relay", "lost")}  # fmt: skip
    pids = [n.pid for n in nodes]
    try:
        for run in range(args.runs):
            for phase in ("mesh", "relay") if run % 2 == 0 else ("relay", "mesh"):
                if phase == "mesh":
                    if w.ninth is None:  # the first run: make the relay it forms from
                        await w.relay()
                    first_s, last_s = await w.mesh()
                    out["setup_first"].append(first_s)
                    out["setup_last"].append(last_s)
                    rtt = await round_trips(x, y_other, args.pings, direct=True)
                    out["mesh_p50"].append(statistics.median(rtt))
                    out["mesh_p99"].append(pct(rtt, 0.99))
                    out["lost"].append(args.pings - len(rtt))
                    out["cpu_mesh"].append(await node_cpu(crowd, pids, args.window))
                else:
                    await w.relay()
                    for key, y in (("one", y_same), ("two", y_other)):
                        rtt = await round_trips(x, y, args.pings, direct=False)
                        out[f"{key}_p50"].append(statistics.median(rtt))
                        out[f"{key}_p99"].append(pct(rtt, 0.99))
                    out["cpu_relay"].append(await node_cpu(crowd, pids, args.window))
            bench.check_time(f"run {run + 1}")
    finally:
        for s in [*crowd, *([w.ninth] if w.ninth else [])]:
            await s.close()
    noisy = "noisy: other helpers running" if args.noisy else ""
    bench.figures(f"mesh set-up from the first plan, 8 visitors {noisy}", out["setup_first"],
                  "s", goal="< 1 s", fmt=".3f")  # fmt: skip
    bench.figures("mesh set-up from the last plan", out["setup_last"], "s", fmt=".3f")
    for key, name in (("mesh", "mesh, direct (a<->b)"), ("one", "relayed, one node"),
                      ("two", "relayed, two nodes")):  # fmt: skip
        bench.figures(f"transform RTT p50, {name}", out[f"{key}_p50"], "ms", fmt=".1f")
        bench.figures(f"transform RTT p99, {name}", out[f"{key}_p99"], "ms", fmt=".1f")
    label = f"node CPU over {args.window:g} s, 8 moving at 10 Hz"
    bench.compare(label, "mesh", out["cpu_mesh"], "relay", out["cpu_relay"], "CPU s",
                  higher_is_better=False, fmt=".2f")  # fmt: skip
    bench.record("pings lost in the mesh (unreliable channel)", values=out["lost"])
    print(f"mesh set-up first plan {Stats(out['setup_first']).text('.3f')} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pings", type=int, default=50)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--noisy", action="store_true", help="label figures: other load running")
    args = parser.parse_args()
    os.environ["FLUX_TEST_LOOPBACK_ICE"] = "1"  # the nodes inherit it: loopback ICE there
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    with Bench("bench_mesh", args.timeout, runs=args.runs) as bench:
        with tempfile.TemporaryDirectory(prefix="bench-mesh-") as tmp:
            t = Path(tmp)
            bench.scratch.append(t)
            nodes = sc.cluster(bench, t, "ab", config=CONFIG)
            world = sc.publish_world(bench, t, nodes[0], PLAYERS)
            sc.wait_for_world(bench, nodes, world)
            asyncio.run(measure(bench, args, nodes, world))
        bench.finish()


if __name__ == "__main__":
    main()
