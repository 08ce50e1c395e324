"""Bridge benchmark: asyncio<->trio round trip and one-way throughput, with references.

References, measured in the same run: `loop.run_in_executor` (asyncio's stock way to run work in
another thread) for the round trip, and a bounded `queue.Queue` to a plain thread for one-way
throughput. Prints ratios (ours / reference; < 1 round-trip ratio or > 1 throughput ratio is
better) and peak RSS.

    .venv/bin/python bench/bench_bridge.py [--calls 5000] [--messages 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import resource
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fluxnode.p2p import Ask, Request, ServiceIO, TrioBridge


@dataclass(frozen=True)
class Echo(Request[int]):
    value: int


@dataclass(frozen=True)
class Question(Ask[int]):
    value: int


class Sink:
    def __init__(self, expect: int) -> None:
        self.expect = expect

    async def serve(self, io: ServiceIO) -> None:
        io.ready(None)
        while True:
            msg = await io.receive()
            if msg == "flood":
                for i in range(self.expect):
                    await io.emit(i)
            elif isinstance(msg, tuple) and msg[0] == "ask":
                times = []
                for i in range(msg[1]):
                    t = time.perf_counter()
                    await io.ask(Question(i))
                    times.append(time.perf_counter() - t)
                await io.emit(("asked", times))
            elif msg == self.expect - 1:
                await io.emit("all-received")

    async def handle(self, request: Request[object]) -> object:
        assert isinstance(request, Echo)
        return request.value


def pct(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))]


async def main(calls: int, messages: int) -> None:
    sys.setswitchinterval(0.0005)  # as the node sets it
    bridge: TrioBridge[None] = TrioBridge(Sink(messages), inbox_capacity=1024, event_capacity=1024)

    async def answer(question: Ask[object]) -> object:
        assert isinstance(question, Question)
        return question.value

    bridge.set_responder(answer)
    await bridge.start()
    loop = asyncio.get_running_loop()

    rtt: list[float] = []
    for i in range(calls):
        t = time.perf_counter()
        await bridge.call(Echo(i))
        rtt.append(time.perf_counter() - t)
    pool = ThreadPoolExecutor(1)
    ref_rtt: list[float] = []
    for i in range(calls):
        t = time.perf_counter()
        await loop.run_in_executor(pool, lambda x=i: x)
        ref_rtt.append(time.perf_counter() - t)
    pool.shutdown()

    events = bridge.events()
    t = time.perf_counter()
    for i in range(messages):
        await bridge.send(i)
    assert await anext(events) == "all-received"
    send_rate = messages / (time.perf_counter() - t)

    await bridge.send(("ask", calls))
    reply = await anext(events)
    assert isinstance(reply, tuple) and reply[0] == "asked"
    ask_rtt: list[float] = reply[1]

    await bridge.send("flood")
    t = time.perf_counter()
    for _ in range(messages):
        await anext(events)
    recv_rate = messages / (time.perf_counter() - t)
    await bridge.aclose()

    q: queue.Queue[int] = queue.Queue(maxsize=1024)
    done = threading.Event()

    def consumer() -> None:
        for _ in range(messages):
            q.get()
        done.set()

    th = threading.Thread(target=consumer)
    th.start()
    t = time.perf_counter()
    for i in range(messages):
        q.put(i)
    done.wait()
    ref_rate = messages / (time.perf_counter() - t)
    th.join()

    us = 1e6
    print(
        f"round trip  bridge.call   p50 {pct(rtt, 0.5) * us:7.1f} us  "
        f"p99 {pct(rtt, 0.99) * us:7.1f} us"
        f"  (mean {statistics.fmean(rtt) * us:.1f} us, n={calls})"
    )
    print(
        f"round trip  run_in_executor p50 {pct(ref_rtt, 0.5) * us:7.1f} us  "
        f"p99 {pct(ref_rtt, 0.99) * us:7.1f} us  (reference)"
    )
    print(f"  ratio p50 bridge/reference: {pct(rtt, 0.5) / pct(ref_rtt, 0.5):.2f}x")
    print(
        f"round trip  io.ask (trio->asyncio) p50 {pct(ask_rtt, 0.5) * us:7.1f} us  "
        f"p99 {pct(ask_rtt, 0.99) * us:7.1f} us"
    )
    print(f"one-way asyncio->trio  {send_rate:10,.0f} msg/s")
    print(f"one-way trio->asyncio  {recv_rate:10,.0f} msg/s")
    print(f"one-way queue.Queue    {ref_rate:10,.0f} msg/s  (reference, plain threads)")
    print(
        f"  ratio asyncio->trio / reference: {send_rate / ref_rate:.2f}x; "
        f"trio->asyncio / reference: {recv_rate / ref_rate:.2f}x"
    )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--messages", type=int, default=100_000)
    a = ap.parse_args()
    asyncio.run(main(a.calls, a.messages))
