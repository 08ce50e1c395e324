"""A TEST DOUBLE of the home nodes' WebRTC part, for testing `fluxnode.client.mesh` in-process.

`SignalHub` holds one `Mesh` per visitor id and plays every node at once: a `Signal` a mesh
sends is delivered to its target as the node would (`peer` rewritten to the sender), unless
the test asked to swallow that kind for that pair, or to hold it (delivered, in order, when the
test releases it); `MeshStatus` and `Transform` frames are
recorded per visitor. `plan_for` computes plans the way the protocol's mesh rule does for small
instances (every pair linked, the smaller id offers), so tests only write what differs.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterable

from fluxnode.client.events import Event
from fluxnode.client.mesh import Mesh
from fluxnode.core.session import frames as fr
from fluxnode.core.session.presence import Transform

FULL = fr.LINK_DATA | fr.LINK_AUDIO


def plan_for(me: str, everyone: Iterable[str], epoch: int = 1, flags: int = FULL,
             silenced: tuple[str, ...] = ()) -> fr.MeshPlan:  # fmt: skip
    links = {p: flags | (fr.LINK_OFFER if me < p else 0) for p in everyone if p != me}
    return fr.MeshPlan(epoch, "mesh", links, silenced)


class SignalHub:
    def __init__(self) -> None:
        self.meshes: dict[str, Mesh] = {}
        self.events: dict[str, list[Event]] = collections.defaultdict(list)
        self.status: dict[str, list[tuple[str, ...]]] = collections.defaultdict(list)
        self.transforms: collections.Counter[str] = collections.Counter()
        self.signals: list[tuple[str, fr.Signal]] = []  # (sender, signal as sent)
        self.swallow: set[tuple[str, str, str]] = set()  # (sender, target, kind) not delivered
        self.hold: set[tuple[str, str, str]] = set()  # (sender, target, kind) kept back...
        self.held: list[tuple[str, fr.Signal]] = []  # ...here, until `release`

    def add(self, visitor: str, **options: object) -> Mesh:
        async def send(frame: fr.Frame) -> None:
            await self._from(visitor, frame)

        mesh = Mesh(send, self.events[visitor].append, lambda: self.present(visitor),
                    lambda v: f"addr-{v}", **options)  # type: ignore[arg-type]  # fmt: skip
        self.meshes[visitor] = mesh
        return mesh

    def present(self, visitor: str) -> list[str]:
        return [v for v in self.meshes if v != visitor]

    async def _from(self, visitor: str, frame: fr.Frame) -> None:
        if isinstance(frame, fr.Signal):
            self.signals.append((visitor, frame))
            key = (visitor, frame.peer, frame.kind)
            if key in self.hold:
                self.held.append((visitor, frame))
            elif key not in self.swallow:
                self._deliver(visitor, frame)
        elif isinstance(frame, fr.MeshStatus):
            self.status[visitor].append(frame.connected)
        elif isinstance(frame, Transform):
            self.transforms[visitor] += 1

    def _deliver(self, visitor: str, frame: fr.Signal) -> None:
        target = self.meshes.get(frame.peer)
        if target is not None:
            # Delivered from a task of its own, as a node's frame arrives on the reader.
            asyncio.get_running_loop().create_task(
                target.receive(fr.Signal(visitor, frame.kind, frame.payload))
            )

    def release(self) -> None:
        """Deliver the held signals in the order they were sent, and hold no more."""
        self.hold.clear()
        held, self.held = self.held, []
        for visitor, frame in held:
            self._deliver(visitor, frame)

    async def start(self, ice: tuple[fr.IceServer, ...] = ()) -> None:
        """Every mesh gets `RtcConfig(ice)` and its full-mesh plan."""
        for visitor, mesh in self.meshes.items():
            await mesh.receive(fr.RtcConfig(ice))
            await mesh.receive(plan_for(visitor, self.meshes))

    async def close(self) -> None:
        for mesh in self.meshes.values():
            await mesh.close()


async def until(condition: Callable[[], object], seconds: float = 10.0, step: float = 0.01) -> None:
    """Wait for `condition()` to hold (polling: aiortc's state changes have no one hook)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"still false after {seconds:g} s: {condition}")
        await asyncio.sleep(step)
