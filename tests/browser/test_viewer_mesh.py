"""The viewer's mesh (gateway/viewer/mesh.js, Chromium's own RTCPeerConnection) against the
Python visitor's (`fluxnode.client.mesh`, aiortc): the two real implementations, with the test
carrying the signalling frames between them as the home node would (`Signal` peer rewritten to
the sender). They form a direct `flux-transforms` channel and move each other's avatars peer to
peer (the Python side's `PeerMoved` is `direct`), and voice flows both ways: the page's fake
microphone reaches the Python visitor as audio frames, the Python tone reaches the page
(inbound-rtp packetsReceived), and each side's mute stops its own packets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fluxnode.client.events import Event, PeerMoved
from fluxnode.client.mesh import Mesh
from fluxnode.core.session import frames as fr
from fluxnode.core.session.presence import Transform
from tests.browser.conftest import PageLog
from tests.browser.mesh_page import Wire, audio_counts, eventually, until_counts

pytestmark = [pytest.mark.slow, pytest.mark.interop]

FULL = fr.LINK_DATA | fr.LINK_AUDIO


class Pair:
    """A page mesh and a Python mesh, the test playing the node between them."""

    def __init__(self, w: Wire, page_id: str, py_id: str) -> None:
        self.w, self.page_id, self.py_id = w, page_id, py_id
        self.events: list[Event] = []
        self.page_status: list[tuple[str, ...]] = []
        self.py_status: list[tuple[str, ...]] = []
        self.node_transforms = 0
        self.py = Mesh(self._from_py, self.events.append, lambda: [page_id],
                       lambda v: "0xpage", voice=True)  # fmt: skip
        self._pump = asyncio.ensure_future(self._from_page())

    async def _from_py(self, frame: fr.Frame) -> None:
        if isinstance(frame, fr.Signal):
            await self.w.give(fr.Signal(self.py_id, frame.kind, frame.payload))
        elif isinstance(frame, fr.MeshStatus):
            self.py_status.append(frame.connected)

    async def _from_page(self) -> None:
        while True:
            frame = await self.w.out.get()
            if isinstance(frame, fr.Signal):
                assert frame.peer == self.py_id
                await self.py.receive(fr.Signal(self.page_id, frame.kind, frame.payload))
            elif isinstance(frame, fr.MeshStatus):
                self.page_status.append(frame.connected)

    async def node_send(self, frame: fr.Frame) -> None:
        assert isinstance(frame, Transform)
        self.node_transforms += 1

    async def start(self) -> None:
        def flags(me: str, peer: str) -> int:
            return FULL | (fr.LINK_OFFER if me < peer else 0)

        await self.py.receive(fr.RtcConfig(()))
        await self.w.give(fr.RtcConfig(()))
        await self.w.give(fr.MeshPlan(1, "mesh", {self.py_id: flags(self.page_id, self.py_id)}, ()))
        await self.py.receive(
            fr.MeshPlan(1, "mesh", {self.page_id: flags(self.py_id, self.page_id)}, ())
        )

    async def close(self) -> None:
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        await self.py.close()


@pytest.fixture(params=["page-offers", "python-offers"])
async def pair(request: Any, page_wire: tuple[Wire, PageLog]) -> AsyncIterator[Pair]:
    w, _ = page_wire
    # The smaller visitor id makes the offer.
    ids = ("a-page", "b-python") if request.param == "page-offers" else ("b-page", "a-python")
    p = Pair(w, *ids)
    try:
        await p.start()
        yield p
    finally:
        await p.close()


async def test_page_and_python_visitor_move_each_other_directly(
    pair: Pair, page_wire: tuple[Wire, PageLog]
) -> None:
    w, log = page_wire
    page_id, py_id = pair.page_id, pair.py_id
    await w.page.wait_for_function(
        "(p) => window.t.mesh.snapshot().connected.includes(p)", arg=py_id
    )
    await eventually(lambda: pair.py.connected() == {page_id})
    link = (await w.snapshot())["links"][py_id]
    print(f"data channel open after {link['openMs']:.0f} ms (page offers: {link['offerer']})")
    assert pair.page_status[-1] == (py_id,) and pair.py_status[-1] == (page_id,)
    assert pair.py.all_direct() and (await w.snapshot())["allDirect"] is True

    # Python -> page: a direct transform (the node got the first of the second only).
    for x in (1.0, 2.0):
        await pair.py.move(Transform((x, 0.0, 3.0), (0.0, 0.0, 0.0, 1.0), "walk"), pair.node_send)
    assert pair.node_transforms == 1 and pair.py.stats["node_transforms_skipped"] == 1
    got = await w.page.wait_for_function(
        "() => window.t.got.length >= 2 && window.t.got.map((g) => [g.peer, g.transform.position])"
    )
    assert await got.json_value() == [[py_id, [1, 0, 3]], [py_id, [2, 0, 3]]], str(log)

    # Page -> Python: the PeerMoved is marked direct (no node relayed it).
    sent = await w.page.evaluate(
        "window.t.mesh.sendTransform(window.t.F.transform([-1.25, 0, 2], [0, 0, 0, 1], 'walk'))"
    )
    assert sent == 1
    await eventually(lambda: any(isinstance(e, PeerMoved) for e in pair.events))
    moved = [e for e in pair.events if isinstance(e, PeerMoved)]
    assert moved == [PeerMoved(page_id, "0xpage", Transform((-1.25, 0, 2), (0, 0, 0, 1), "walk"),
                               direct=True)]  # fmt: skip


async def test_voice_between_page_and_python_visitor(
    pair: Pair, page_wire: tuple[Wire, PageLog]
) -> None:
    w, log = page_wire
    page_id, py_id = pair.page_id, pair.py_id
    assert pair.py.voice is not None
    voice = pair.py.voice
    await w.page.wait_for_function(
        "(p) => window.t.mesh.snapshot().connected.includes(p)", arg=py_id
    )
    # Voice goes on in the page after the link is up: the track joins without renegotiating.
    await w.page.evaluate("window.t.mesh.setVoice(true)")
    await eventually(lambda: voice.frames[page_id] >= 50)
    counts = await until_counts(w, py_id, lambda c: c["received"] >= 50 and c["sent"] >= 50)
    print(f"voice: page sent {counts['sent']}, received {counts['received']} packets; "
          f"python heard {voice.frames[page_id]} frames")  # fmt: skip
    assert (await w.snapshot())["links"][py_id]["speaking"] is True, str(log)

    # The page mutes: the Python visitor hears nothing more while its tone still reaches the page.
    await w.page.evaluate("window.t.mesh.setMuted(true)")
    heard = voice.frames[page_id]
    before = await audio_counts(w, py_id)
    await until_counts(w, py_id, lambda c: c["received"] >= before["received"] + 100)
    assert voice.frames[page_id] - heard <= 3  # what was in flight at the switch
    await w.page.evaluate("window.t.mesh.setMuted(false)")

    # The Python visitor mutes: the page's counter stops while the page's voice still arrives.
    voice.mute()
    await eventually(lambda: voice.frames[page_id] >= heard + 50)
    quiet = await audio_counts(w, py_id)
    await eventually(lambda: voice.frames[page_id] >= heard + 150)
    after = await audio_counts(w, py_id)
    assert after["received"] - quiet["received"] <= 3
