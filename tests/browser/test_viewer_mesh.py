"""The viewer's mesh (gateway/viewer/mesh.js and mesh_link.js, Chromium's own RTCPeerConnection)
against the Python visitor's (`fluxnode.client.mesh`, aiortc): the two real implementations,
with the test carrying the signalling frames between them as the home node would (`Signal` peer
rewritten to the sender). They form a direct `flux-transforms` channel and move each other's
avatars peer to peer (the Python side's `PeerMoved` is `direct`), and voice flows both ways: the
page's fake microphone reaches the Python visitor as audio frames, the Python tone reaches the
page (inbound-rtp packetsReceived), and each side's mute stops its own packets.

Then the whole path through a real node (`flux-node run` with `FLUX_TEST_LOOPBACK_ICE=1`): the
viewer page and a `fluxnode.client.Visitor` join one world, the node's `MeshPlan` and relayed
`Signal`s form their link, the avatars move peer to peer (the node leaves the mesh peer out of
the page's viewer frames, and the Python visitor's `PeerMoved` are direct), and the voice
buttons of the page carry the fake microphone to the Python visitor and back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fluxnode.client import Visitor
from fluxnode.client.events import Event, PeerMoved
from fluxnode.client.mesh import Mesh
from fluxnode.core.session import frames as fr
from fluxnode.core.session.presence import Transform
from tests.browser.conftest import PageLog, inject_wallet, new_account, new_page, world_page_url
from tests.browser.mesh_page import Wire, audio_counts, eventually, until_counts
from tests.browser.test_viewer_live import open_world, until
from tests.conftest import NodeFactory, clean_env
from tests.helpers import EXAMPLE_WORLD, publish, write_owner_key

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


async def page_counts(page: Any, peer: str) -> dict[str, int]:
    """The viewer page's audio counters on its link to `peer`."""
    link = await page.evaluate(
        "async (p) => { const m = window.fluxViewer.mesh; await m.pollStats();"
        " return m.snapshot().links[p]; }",
        peer,
    )
    return {"sent": link["packetsSent"], "received": link["packetsReceived"]}


async def page_counts_until(page: Any, peer: str, check: Any) -> dict[str, int]:
    async with asyncio.timeout(30):
        while not check(counts := await page_counts(page, peer)):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return counts


async def test_viewer_and_python_visitor_mesh_through_a_node(
    nodes: NodeFactory, tmp_path: Path, mesh_browser: Any, loopback_ice: None
) -> None:
    node = nodes.start("alice", gateway=True, env=clean_env(FLUX_TEST_LOOPBACK_ICE="1"))
    info = await asyncio.to_thread(node.wait_ready)
    gateway = str(info["gateway_url"])
    key_file = tmp_path / "owner.key"
    write_owner_key(key_file)
    world = await asyncio.to_thread(publish, node.data_dir, EXAMPLE_WORLD, key_file)
    py = await Visitor.connect(gateway, new_account().key.hex(), world_id=world["world_id"],
                               manifest=str(EXAMPLE_WORLD / "world.json"), voice=True)  # fmt: skip
    try:
        page, log = await new_page(mesh_browser)
        await inject_wallet(page, new_account())
        url = world_page_url(gateway, world["world_id"], world["cid"])
        await open_world(page, log, url, "#signin-injected")
        me = await page.evaluate("window.fluxViewer.session.replica.visitor")

        # The node's plan and relayed signals form the direct link.
        await page.wait_for_function(
            "(p) => window.fluxViewer.mesh.snapshot().connected.includes(p)", arg=py.visitor
        )
        await eventually(lambda: py.mesh_peers == {me})
        shot = await page.evaluate("window.fluxViewer.mesh.snapshot()")
        link = shot["links"][py.visitor]
        assert shot["mode"] == "mesh" and link["state"] == "connected", str(log)
        print(f"page <-> python through the node: data channel open after {link['openMs']:.0f} ms")

        # The Python visitor moves: the page's avatar follows from the direct channel, while
        # the node's frames to the page leave the mesh peer out.
        position = [1.0, 0.0, 3.0]
        await py.move(tuple(position))  # type: ignore[arg-type]
        await page.wait_for_function(
            """([v, pos]) => {
              const s = window.fluxViewer.session, a = window.fluxViewer.view.avatars.get(v);
              const li = document.querySelector(`#who li[data-visitor="${v}"]`);
              return li?.dataset.direct === "1" && a?.target &&
                     a.target.toArray().every((c, i) => Math.abs(c - pos[i]) < 1e-9) &&
                     s.mesh.stats.directReceived > 0;
            }""",
            arg=[py.visitor, position],
        )
        relayed = await page.evaluate(
            """(v) => { const r = window.fluxViewer.session.replica;
                        return r.states.get(r.latest)?.get(v)?.position ?? null; }""",
            py.visitor,
        )
        assert relayed != position  # the avatar moved with no relayed transform saying so

        # The page walks: its transforms reach the Python visitor directly.
        events: list[Event] = []
        await page.focus("#scene")
        await page.keyboard.down("w")
        walked = await until(py, lambda e: events.append(e) is None and isinstance(e, PeerMoved)
                             and e.visitor == me and e.transform is not None
                             and e.transform.position[2] < 4.5, "the browser walking")  # fmt: skip
        await page.keyboard.up("w")
        assert isinstance(walked, PeerMoved) and walked.direct is True
        # Every step of the walk came directly (the queue also holds the relayed spawn from
        # before the mesh formed).
        steps = [e for e in events if isinstance(e, PeerMoved) and e.visitor == me
                 and e.transform is not None and e.transform.anim == "walk"]  # fmt: skip
        assert steps and all(e.direct for e in steps), [e for e in steps if not e.direct]

        # Voice: the page's button asks for the (fake) microphone; each side hears the other.
        await page.click("#voice-toggle")
        await eventually(lambda: py.audio_frames[me] >= 50)
        counts = await page_counts_until(page, py.visitor, lambda c: c["received"] >= 50)
        print(f"voice through the node's mesh: page sent {counts['sent']}, received "
              f"{counts['received']}; python heard {py.audio_frames[me]} frames")  # fmt: skip
        speaking = page.locator(f'#who li[data-visitor="{py.visitor}"][data-voice="speaking"]')
        await speaking.wait_for()

        # The page's mute button: the Python visitor hears no more while the page still does.
        await page.click("#voice-mute")
        assert await page.get_attribute("#voice-mute", "aria-pressed") == "true"
        heard = py.audio_frames[me]
        before = await page_counts(page, py.visitor)
        await page_counts_until(page, py.visitor,
                                lambda c: c["received"] >= before["received"] + 100)  # fmt: skip
        assert py.audio_frames[me] - heard <= 3
        assert await page.locator("#chat-log li.notice").all_inner_texts() == []
    finally:
        await py.close()
