"""The viewer's mesh modules (gateway/viewer/mesh.js, mesh_link.js) alone in headless Chromium,
against an aiortc peer in this process: the test carries the frames between them (the page's
WebSocket bytes are decoded here by `fluxnode.core.session.wire`, strictly, and frames encoded
here are fed to the page), so this proves the browser half without a node: plan-driven offers
and answers, the `flux-transforms` channel both ways, MeshStatus, failure reports, and voice
with the fake audio device (mute stops the page's packets)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire
from fluxnode.core.session.mesh import FAIL_FOR
from fluxnode.core.session.presence import Transform
from tests.browser.conftest import PageLog
from tests.browser.mesh_page import WAIT_S, Wire, audio_counts, eventually, until_counts

pytestmark = [pytest.mark.slow, pytest.mark.interop]

PY = "python-visitor"


@dataclass
class PyPeer:
    """The aiortc end: one peer connection, its channel and the audio frames it heard."""

    pc: RTCPeerConnection = field(
        default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[]))
    )
    channel: RTCDataChannel | None = None
    received: list[Transform] = field(default_factory=list)
    audio_frames: int = 0
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pc.on("datachannel", self.use)
        self.pc.on("track", self.track)

    def use(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        channel.on("open", self.opened.set)
        if channel.readyState == "open":
            self.opened.set()

        @channel.on("message")
        def message(data: bytes) -> None:
            frame = wire.decode(data)
            assert isinstance(frame, Transform)
            self.received.append(frame)

    def track(self, track: MediaStreamTrack) -> None:
        async def count() -> None:
            try:
                while True:
                    await track.recv()
                    self.audio_frames += 1
            except MediaStreamError:
                return

        self.tasks.append(asyncio.ensure_future(count()))

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await self.pc.close()


def plan(flags: int, epoch: int = 1, silenced: tuple[str, ...] = ()) -> fr.MeshPlan:
    return fr.MeshPlan(epoch, "mesh", {PY: flags}, silenced)


async def connect(w: Wire, py: PyPeer, *, page_offers: bool, voice: bool) -> None:
    """Form the link with the page as offerer or answerer; returns once both channels open."""
    flags = fr.LINK_DATA | fr.LINK_AUDIO
    await w.give(fr.RtcConfig(()))
    if voice:
        await w.page.evaluate("window.t.mesh.setVoice(true)")
    if page_offers:
        await w.give(plan(flags | fr.LINK_OFFER))
        offer = await w.next(fr.Signal)
        assert (offer.peer, offer.kind) == (PY, "offer") and "m=application" in offer.payload
        await py.pc.setRemoteDescription(RTCSessionDescription(offer.payload, "offer"))
        py.pc.addTrack(AudioStreamTrack())
        await py.pc.setLocalDescription(await py.pc.createAnswer())
        await w.give(fr.Signal(PY, "answer", py.pc.localDescription.sdp))
    else:
        py.use(py.pc.createDataChannel("flux-transforms", ordered=False, maxRetransmits=0))
        py.pc.addTransceiver(AudioStreamTrack(), direction="sendrecv")
        await py.pc.setLocalDescription(await py.pc.createOffer())
        # The offer comes before the page's plan names the link: kept, not answered yet.
        await w.give(fr.Signal(PY, "offer", py.pc.localDescription.sdp))
        shot = await w.snapshot()
        assert shot["links"] == {}
        await w.give(plan(flags))
        answer = await w.next(fr.Signal)
        assert (answer.peer, answer.kind) == (PY, "answer")
        await py.pc.setRemoteDescription(RTCSessionDescription(answer.payload, "answer"))
    status = await w.next(fr.MeshStatus)
    assert status == fr.MeshStatus((PY,))
    async with asyncio.timeout(WAIT_S):
        await py.opened.wait()


@pytest.mark.parametrize("page_offers", [True, False], ids=["page-offers", "page-answers"])
async def test_page_and_aiortc_exchange_transforms_directly(
    page_wire: tuple[Wire, PageLog], page_offers: bool
) -> None:
    w, log = page_wire
    py = PyPeer()
    try:
        await connect(w, py, page_offers=page_offers, voice=False)
        shot = await w.snapshot()
        link = shot["links"][PY]
        assert (link["state"], link["channel"]) == ("connected", "open")
        assert link["offerer"] is page_offers
        assert shot["connected"] == [PY] and shot["allDirect"] is True
        role = "offerer" if page_offers else "answerer"
        print(f"data channel open after {link['openMs']:.0f} ms (page {role})")

        # Page -> Python: the same Transform frame the node would get.
        sent = await w.page.evaluate(
            "window.t.mesh.sendTransform(window.t.F.transform([1.5, 0, -2], [0, 0, 0, 1], 'walk'))"
        )
        assert sent == 1
        await eventually(lambda: bool(py.received))
        assert py.received[0] == Transform((1.5, 0, -2), (0, 0, 0, 1), "walk")

        # Python -> page, and garbage is counted, not taken.
        assert py.channel is not None
        py.channel.send(b"\x92\x0a\x93")  # a truncated transform
        py.channel.send(wire.encode(Transform((3.0, 0.0, 4.0), (0.0, 0.0, 0.0, 1.0), "idle")))
        got = await w.page.wait_for_function("window.t.got.length > 0 && window.t.got")
        assert await got.json_value() == [
            {
                "peer": PY,
                "transform": {"position": [3, 0, 4], "rotation": [0, 0, 0, 1], "anim": "idle"},
            }
        ], str(log)
        assert (await w.snapshot())["stats"]["directBad"] == 1

        # A plan without the link closes it (bye) and says so in MeshStatus.
        await w.give(fr.MeshPlan(2, "relay", {}, ()))
        bye = await w.next(fr.Signal)
        assert (bye.peer, bye.kind) == (PY, "bye")
        assert await w.next(fr.MeshStatus) == fr.MeshStatus(())
        assert (await w.snapshot())["links"] == {}
    finally:
        await py.close()


async def test_a_link_that_cannot_negotiate_is_reported_failed_and_tried_again_later(
    page_wire: tuple[Wire, PageLog],
) -> None:
    w, _ = page_wire
    await w.give(fr.RtcConfig(()))
    await w.give(plan(fr.LINK_DATA | fr.LINK_OFFER))
    offer = await w.next(fr.Signal)
    assert offer.kind == "offer"
    await w.give(fr.Signal(PY, "answer", "v=0\r\nnot an answer\r\n"))
    failed = await w.next(fr.Signal)
    assert (failed.peer, failed.kind) == (PY, "failed")
    shot = await w.snapshot()
    assert shot["links"] == {} and shot["failed"] == [PY]
    # Not tried again while the plan still names it, until the mark ends (the node may never
    # have taken the report); a plan without it forgets the failure.
    await w.give(plan(fr.LINK_DATA | fr.LINK_OFFER, epoch=2))
    assert (await w.snapshot())["links"] == {}
    await w.page.evaluate(f"window.t.clock += {FAIL_FOR * 1000 - 1}; window.t.mesh.retryFailed()")
    assert (await w.snapshot())["links"] == {}
    await w.page.evaluate("window.t.clock += 1; window.t.mesh.retryFailed()")
    again = await w.next(fr.Signal)
    assert (again.peer, again.kind) == (PY, "offer")
    assert (await w.snapshot())["failed"] == []
    await w.give(fr.Signal(PY, "answer", "v=0\r\nnot an answer\r\n"))
    failed = await w.next(fr.Signal)
    assert (failed.peer, failed.kind) == (PY, "failed")
    await w.give(fr.MeshPlan(3, "mesh", {}, ()))
    assert (await w.snapshot())["failed"] == []


@pytest.mark.parametrize("page_offers", [True, False], ids=["page-offers", "page-answers"])
async def test_voice_both_ways_and_mute(page_wire: tuple[Wire, PageLog], page_offers: bool) -> None:
    w, log = page_wire
    py = PyPeer()
    try:
        await connect(w, py, page_offers=page_offers, voice=True)
        # The fake microphone reaches aiortc as decoded audio frames ...
        await eventually(lambda: py.audio_frames >= 50)
        # ... and aiortc's track reaches the page (inbound-rtp packetsReceived grows).
        counts = await until_counts(w, PY, lambda c: c["received"] >= 50 and c["sent"] >= 50)
        print(f"voice: page sent {counts['sent']}, received {counts['received']} packets; "
              f"aiortc decoded {py.audio_frames} frames")  # fmt: skip
        shot = await w.snapshot()
        assert shot["voiceOn"] is True and shot["links"][PY]["speaking"] is True, str(log)

        # Mute: the sender loses its track, so no more packets go while the peer's keep coming.
        await w.page.evaluate("window.t.mesh.setMuted(true)")
        muted = await audio_counts(w, PY)
        after = await until_counts(w, PY, lambda c: c["received"] >= muted["received"] + 100)
        assert after["sent"] - muted["sent"] <= 3  # at most what was in flight at the switch
        await w.page.evaluate("window.t.mesh.setMuted(false)")
        await until_counts(w, PY, lambda c: c["sent"] >= after["sent"] + 25)

        # Silenced peer: its audio is not played and ours stops too (no LINK_AUDIO).
        await w.give(plan(fr.LINK_DATA | (fr.LINK_OFFER if page_offers else 0), epoch=5,
                          silenced=(PY,)))  # fmt: skip
        assert await w.page.evaluate(f"window.t.mesh.voiceOf({json.dumps(PY)})") == "silenced"
        played = await w.page.evaluate(
            f"document.querySelector('#voice-audio audio[data-peer=\"{PY}\"]').muted"
        )
        assert played is True
    finally:
        await py.close()


async def test_a_late_answer_to_the_offer_a_re_offer_replaced_is_ignored(
    page_wire: tuple[Wire, PageLog],
) -> None:
    w, log = page_wire
    old, py = PyPeer(), PyPeer()
    try:
        await w.give(fr.RtcConfig(()))
        await w.give(fr.MeshPlan(1, "relay", {PY: fr.LINK_AUDIO | fr.LINK_OFFER}, ()))
        first = await w.next(fr.Signal)
        assert first.kind == "offer" and "m=application" not in first.payload
        await old.pc.setRemoteDescription(RTCSessionDescription(first.payload, "offer"))
        await old.pc.setLocalDescription(await old.pc.createAnswer())
        # The instance shrank before that answer reached the page: a mesh plan, so the page
        # offers a link with a data channel in its place; the old answer comes after it.
        await w.give(plan(fr.LINK_DATA | fr.LINK_AUDIO | fr.LINK_OFFER, epoch=2))
        second = await w.next(fr.Signal)
        assert second.kind == "offer" and "m=application" in second.payload
        await w.give(fr.Signal(PY, "answer", old.pc.localDescription.sdp))
        await py.pc.setRemoteDescription(RTCSessionDescription(second.payload, "offer"))
        py.pc.addTrack(AudioStreamTrack())
        await py.pc.setLocalDescription(await py.pc.createAnswer())
        await w.give(fr.Signal(PY, "answer", py.pc.localDescription.sdp))
        async with asyncio.timeout(WAIT_S):
            while not isinstance(frame := await w.out.get(), fr.MeshStatus):
                assert not (isinstance(frame, fr.Signal) and frame.kind == "failed"), str(log)
        assert frame == fr.MeshStatus((PY,))
        assert (await w.snapshot())["stats"]["staleAnswers"] == 1
    finally:
        await old.close()
        await py.close()
