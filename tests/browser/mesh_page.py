"""Driving gateway/viewer/mesh.js (and its links, mesh_link.js) in a page from a test: the
page's outgoing frames (the bytes it would put on its WebSocket) are decoded here by
`fluxnode.core.session.wire`, strictly, and frames encoded here are fed to the page's mesh, so
the test plays the node."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire

WAIT_S = 20.0

SETUP = """async () => {
  const F = await import("/viewer/frames.js");
  const { Mesh } = await import("/viewer/mesh.js");
  // Failure marks follow `window.t.clock` (ms), which only a test moves.
  const mesh = new Mesh({ send: (b) => window.fluxTestOut(Array.from(b)), connectTimeoutMs: 8000,
    now: () => window.t.clock });
  window.t = { F, mesh, got: [], clock: 0 };
  mesh.addEventListener("transform", (e) => window.t.got.push(e.detail));
}"""


class Wire:
    """The page's outgoing frames, decoded; and a way to hand it frames."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.out: asyncio.Queue[fr.Frame] = asyncio.Queue()

    async def install(self) -> None:
        await self.page.expose_function(
            "fluxTestOut", lambda b: self.out.put_nowait(wire.decode(bytes(b)))
        )
        await self.page.evaluate(SETUP)

    async def give(self, frame: fr.Frame) -> None:
        await self.page.evaluate(
            "(b) => window.t.mesh.receive(window.t.F.decode(new Uint8Array(b)))",
            list(wire.encode(frame)),
        )

    async def next(self, kind: type) -> Any:
        async with asyncio.timeout(WAIT_S):
            while True:
                frame = await self.out.get()
                if isinstance(frame, kind):
                    return frame

    async def snapshot(self) -> dict[str, Any]:
        shot: dict[str, Any] = await self.page.evaluate("window.t.mesh.snapshot()")
        return shot


async def eventually(check: Callable[[], bool]) -> None:
    """Wait (at most WAIT_S) until `check()` holds: for counters aiortc's callbacks bump."""
    async with asyncio.timeout(WAIT_S):
        for _ in itertools.count():
            if check():
                return
            await asyncio.sleep(0.02)


async def audio_counts(w: Wire, peer: str) -> dict[str, int]:
    """The page's RTP audio counters on its link to `peer` (fresh from getStats)."""
    await w.page.evaluate("window.t.mesh.pollStats()")
    link = (await w.snapshot())["links"][peer]
    return {"sent": link["packetsSent"], "received": link["packetsReceived"]}


async def until_counts(
    w: Wire, peer: str, check: Callable[[dict[str, int]], bool]
) -> dict[str, int]:
    async with asyncio.timeout(WAIT_S):
        for _ in itertools.count():
            if check(counts := await audio_counts(w, peer)):
                break
            await asyncio.sleep(0.1)
    return counts
