"""Warm joins and state-op convergence for bench_sessions, with the real client
(`fluxnode.client.Visitor`): what a program visiting a world pays, the wallet's signature of the
entry proof included (one secp256k1 signature on the client, its recovery on the node)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any
from urllib.parse import quote

from fluxnode.client import StateChanged, Visitor


async def _connect(url: str, world: str, manifest: str | None = None) -> Visitor:
    return await Visitor.connect(url, os.urandom(32), world_id=world, manifest=manifest)


async def joins(url: str, world: str, sequential: int, concurrent: int) -> dict[str, Any]:
    """`sequential` sign-in + join one after the other (each kept until the end, so the
    instance stays open), then `concurrent` at once: their wall time gives joins/s."""
    warm = await _connect(url, world)  # the node fetches and caches the manifest here
    lat = []
    kept = []
    try:
        for _ in range(sequential):
            t = time.perf_counter()
            kept.append(await _connect(url, world))
            lat.append((time.perf_counter() - t) * 1000)
        for v in kept:
            await v.close()
        kept = []
        t = time.perf_counter()
        kept = list(await asyncio.gather(*(_connect(url, world) for _ in range(concurrent))))
        wall = time.perf_counter() - t
    finally:
        for v in kept:
            await v.close()
        await warm.close()
    return {"lat_ms": lat, "joins_per_s": concurrent / wall, "concurrent_wall_s": wall}


async def convergence(urls: list[str], world: str, clicks: int) -> dict[str, Any]:
    """A visitor on the first node clicks the door `clicks` times; for each click, the time
    until the visitors on the other nodes see the door's new value (StateChanged)."""
    manifest = f"{urls[0]}/api/worlds/{quote(world, safe='')}/manifest"
    clicker = await _connect(urls[0], world, manifest)
    watchers: list[Visitor] = []
    try:
        for url in urls[1:]:
            await asyncio.sleep(2.5)  # the directory gossip names the instance to the next node
            watchers.append(await _connect(url, world, manifest))
        assert clicker.joined is not None
        instances = {clicker.joined.instance_id} | {
            w.joined.instance_id for w in watchers if w.joined is not None
        }
        await asyncio.sleep(1.0)
        seen: list[dict[str, float]] = [{} for _ in watchers]  # repr(value) -> time seen
        arrived = asyncio.Event()

        async def watch(i: int, w: Visitor) -> None:
            async for event in w.events():
                if isinstance(event, StateChanged) and event.object_id == "door-1":
                    seen[i].setdefault(repr(event.value), time.perf_counter())
                    arrived.set()

        tasks = [asyncio.create_task(watch(i, w)) for i, w in enumerate(watchers)]
        lat: list[list[float]] = [[] for _ in watchers]
        missed = 0
        for _ in range(clicks if len(instances) == 1 else 0):
            for s in seen:
                s.clear()
            t = time.perf_counter()
            op = await clicker.interact("door-1")
            key = repr(op.value)
            while True:
                arrived.clear()  # before the check, so an arrival after it wakes the wait
                left = t + 5 - time.perf_counter()
                if all(key in s for s in seen) or left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), left)
            if all(key in s for s in seen):
                for i, s in enumerate(seen):
                    lat[i].append((s[key] - t) * 1000)
            else:
                missed += 1
            await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
    finally:
        await clicker.close()
        for w in watchers:
            await w.close()
    return {"lat_ms": lat, "instances": len(instances), "missed": missed}
