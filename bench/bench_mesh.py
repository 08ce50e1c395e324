"""WebRTC meshes (docs/benchmarks.md, "Meshes"): two `flux-node run` processes with WebRTC on
(ICE on loopback: `FLUX_TEST_LOOPBACK_ICE=1` in their environment, the same aioice patch here),
a public world with 20 seats, eight `fluxnode.client.Visitor`s in one instance (four per node)
and a ninth that joins and leaves to switch the instance between relay and mesh. Each run
starts with eight fresh visitors (new accounts), who take the last run's eight's place while
the ninth is in.

Figures, each over `--runs` runs (median, min-max), phases alternated run by run:

1. mesh set-up, cold: the fresh eight came while nine or more were in (relay mode: visitors
   without voice hold no links), so none of their 28 links exists; the ninth leaves; from the
   first `MeshPlan` of mode mesh any of them gets until all 28 data channels are open on both
   ends (goal < 1 s); also from the last plan;
2. mesh re-formed after relay: the ninth joins the meshed eight and leaves again; relay-mode
   plans keep their links (a mesh link carries audio too), so this is from the first mesh plan
   to all 28 open again with nothing to negotiate;
3. transform round trip: visitor X moves to a marked position, Y moves to the same mark when it
   sees it, X times until it sees Y's echo; in the mesh (X on node a, Y on node b, direct), and
   relayed (the ninth present: relay mode) with X and Y on one node, and on two nodes. The
   relayed figures include the nodes' 10 Hz tick (0-100 ms per node crossed); pings with no
   echo within 5 s of the last are counted lost;
4. CPU seconds of the two node processes (/proc/PID/stat) over `--window` seconds while the
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
from harness import Bench
from sessions_load import cpu_seconds

from fluxnode.client import PeerMoved, Visitor
from fluxnode.client.rtc_link import PeerLink

CONFIG = "[webrtc]\nenabled = true\nice_servers = []\n"
PLAYERS = 20  # the old eight, a ninth and the fresh eight while they change places
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


async def until(check: Callable[[], bool], what: str, within: float = WAIT,
                detail: Callable[[], object] | None = None) -> None:  # fmt: skip
    end = time.monotonic() + within
    while not check():
        if time.monotonic() > end:
            shown = f": {detail()}" if detail is not None else ""
            raise TimeoutError(f"gave up waiting for {what}{shown}")
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


def link_state(link: PeerLink | None) -> object:
    """A link as a failure message shows it."""
    if link is None:
        return None
    return {
        "offerer": link.offerer,
        "data": link.data,
        "connected": link.connected,
        "channel": link.channel.readyState if link.channel else None,
        "problem": link.problem,
    }


def missing(crowd: list[Seen]) -> dict[str, object]:
    """Per visitor whose mesh is not full: its plan's mode, the peers not open and why."""
    ids = {s.v.visitor for s in crowd}
    out: dict[str, object] = {}
    for s in crowd:
        m = s.v.mesh
        lacking = ids - {s.v.visitor} - s.v.mesh_peers
        if lacking:
            out[s.v.visitor[:8]] = {
                "mode": m.plan.mode if m.plan else None,
                "lacking": {
                    p[:8]: (m._flags(p), p in m.failed, link_state(m.links.get(p))) for p in lacking
                },
                "stats": dict(m.stats),
            }
    return out


class World:
    """The instance: its eight (`crowd`) and, while it is in relay mode, a ninth."""

    def __init__(self, nodes: list[sc.Node], world: str) -> None:
        self.nodes, self.world = nodes, world
        self.crowd: list[Seen] = []
        self.instance: str | None = None
        self.ninth: Seen | None = None

    async def seat_eight(self) -> list[Seen]:
        """Eight fresh visitors, four on each node, in the instance (the first makes it)."""
        a, b = self.nodes
        fresh = []
        for i in range(8):
            fresh.append(await seat((a if i < 4 else b).url, self.world, self.instance))
            if self.instance is None:
                self.instance = fresh[0].v.joined.instance_id  # type: ignore[union-attr]
        return fresh

    async def fresh_crowd(self) -> None:
        """Eight fresh visitors take the crowd's place while nine or more are in (relay mode:
        visitors without voice hold no links then), so when the ninth leaves none of their 28
        links exists yet: a cold set-up."""
        await self.relay()
        fresh = await self.seat_eight()
        for s in self.crowd:
            await s.close()
        self.crowd = fresh
        await until(lambda: relaying(self.crowd), "relay mode with the fresh eight")
        assert not any(s.v.mesh.links for s in self.crowd), "links made in relay mode"

    async def relay(self) -> None:
        if self.ninth is None:
            self.ninth = await seat(self.nodes[0].url, self.world, self.instance)
        if self.crowd:
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

        await until(lambda: meshed(self.crowd), "a full mesh", detail=lambda: missing(self.crowd))
        done = loop.time()
        at = plans()
        return done - min(at), done - max(at)

    async def close(self) -> None:
        for s in [*self.crowd, *([self.ninth] if self.ninth else [])]:
            await s.close()


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
        if e.visitor == y.v.visitor and k is not None and k in sent:
            rtts.append((now - sent.pop(k)) * 1000)

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
    w = World(nodes, world)
    keys = ("cold_first", "cold_last", "reform_first", "cpu_mesh", "cpu_relay")
    keys += tuple(f"{k}_{q}" for k in ("mesh", "one", "two") for q in ("p50", "p99"))
    out: dict[str, list[float]] = {k: [] for k in (*keys, "lost_mesh", "lost_one", "lost_two")}
    pids = [n.pid for n in nodes]

    async def in_mesh() -> None:
        x, y = w.crowd[0], w.crowd[4]  # on node a and on node b
        rtt = await round_trips(x, y, args.pings, direct=True)
        out["mesh_p50"].append(statistics.median(rtt) if rtt else float("nan"))
        out["mesh_p99"].append(pct(rtt, 0.99))
        out["lost_mesh"].append(args.pings - len(rtt))
        out["cpu_mesh"].append(await node_cpu(w.crowd, pids, args.window))

    async def in_relay() -> None:
        await w.relay()
        x = w.crowd[0]
        for key, y in (("one", w.crowd[1]), ("two", w.crowd[4])):
            rtt = await round_trips(x, y, args.pings, direct=False)
            out[f"{key}_p50"].append(statistics.median(rtt) if rtt else float("nan"))
            out[f"{key}_p99"].append(pct(rtt, 0.99))
            out[f"lost_{key}"].append(args.pings - len(rtt))
        out["cpu_relay"].append(await node_cpu(w.crowd, pids, args.window))

    try:
        w.crowd = await w.seat_eight()  # the first fresh crowd needs nine in before it
        for run in range(args.runs):
            await w.fresh_crowd()
            first_s, last_s = await w.mesh()
            out["cold_first"].append(first_s)
            out["cold_last"].append(last_s)
            for phase in ("mesh", "relay") if run % 2 == 0 else ("relay", "mesh"):
                if phase == "mesh":
                    await in_mesh()
                else:
                    await in_relay()
                    out["reform_first"].append((await w.mesh())[0])
            bench.check_time(f"run {run + 1}")
    finally:
        await w.close()
    if args.noisy:
        bench.notes["noise"] = "noisy: other helpers running"
        print("figures below are noisy: other helpers running")
    bench.figures("mesh set-up, cold (8 fresh visitors, 28 new links), from the first plan",
                  out["cold_first"], "s", goal="< 1 s", fmt=".3f")  # fmt: skip
    bench.figures("mesh set-up, cold, from the last plan", out["cold_last"], "s", fmt=".3f")
    bench.figures("mesh re-formed after relay (links held), from the first plan",
                  out["reform_first"], "s", fmt=".3f")  # fmt: skip
    for key, name in (("mesh", "mesh, direct (a<->b)"), ("one", "relayed, one node"),
                      ("two", "relayed, two nodes")):  # fmt: skip
        bench.figures(f"transform RTT p50, {name}", out[f"{key}_p50"], "ms", fmt=".1f")
        bench.figures(f"transform RTT p99, {name}", out[f"{key}_p99"], "ms", fmt=".1f")
    label = f"node CPU over {args.window:g} s, 8 moving at 10 Hz"
    bench.compare(label, "mesh", out["cpu_mesh"], "relay", out["cpu_relay"], "CPU s",
                  higher_is_better=False, fmt=".2f")  # fmt: skip
    lost = {k: [int(n) for n in out[f"lost_{k}"]] for k in ("mesh", "one", "two")}
    print(f"pings lost of {args.pings} a run: direct {lost['mesh']}, relayed on one node "
          f"{lost['one']}, on two {lost['two']}")  # fmt: skip
    bench.record("pings lost (of --pings a run)", pings=args.pings, values=lost["mesh"],
                 relayed_one=lost["one"], relayed_two=lost["two"])  # fmt: skip


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
