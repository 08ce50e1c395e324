"""Voice between two `fluxnode.client.mesh` meshes: the tone, mute, silence, re-offers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fluxnode.client.mesh import Mesh
from fluxnode.core.session import frames as fr
from tests.unit.mesh_double import SignalHub, plan_for, until

A, B = "aaa", "bbb"


pytestmark = pytest.mark.usefixtures("loopback_ice")


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SignalHub, Mesh, Mesh]]:
    hub = SignalHub()
    a, b = hub.add(A, voice=True), hub.add(B, voice=True)
    yield hub, a, b
    await hub.close()


def heard(mesh: Mesh, peer: str) -> int:
    assert mesh.voice is not None
    return mesh.voice.frames[peer]


async def test_each_hears_the_other(pair: tuple[SignalHub, Mesh, Mesh]) -> None:
    hub, a, b = pair
    await hub.start()
    await until(lambda: heard(a, B) > 25 and heard(b, A) > 25)  # half a second of 20 ms frames


async def test_mute_stops_our_audio_and_unmute_starts_it_again(
    pair: tuple[SignalHub, Mesh, Mesh],
) -> None:
    hub, a, b = pair
    await hub.start()
    await until(lambda: heard(b, A) > 5 and heard(a, B) > 5)
    assert a.voice is not None
    a.voice.mute()
    at_mute, b_then = heard(b, A), heard(a, B)
    # A second of B's audio reaches A meanwhile; of A's, at most what was in flight.
    await until(lambda: heard(a, B) > b_then + 50)
    assert heard(b, A) - at_mute <= 5
    a.voice.unmute()
    await until(lambda: heard(b, A) > at_mute + 25)


async def test_audio_of_a_silenced_peer_is_dropped(pair: tuple[SignalHub, Mesh, Mesh]) -> None:
    hub, _, b = pair
    await hub.start()
    await until(lambda: heard(b, A) > 5)
    # B's node silences A; A's own plan still lets it send (a client that ignores its plan).
    await b.receive(plan_for(B, [A, B], epoch=2, flags=fr.LINK_DATA, silenced=(A,)))
    assert b.voice is not None
    before = heard(b, A)
    await until(lambda: b.voice is not None and b.voice.dropped[A] > 25)
    assert heard(b, A) - before <= 1  # a frame being counted as the plan changed, at most
    assert b.connected() == {A}  # the data link stays


async def test_a_link_that_gains_audio_is_offered_again(pair: tuple[SignalHub, Mesh, Mesh]) -> None:
    hub, a, b = pair
    for mesh, me in ((a, A), (b, B)):
        await mesh.receive(fr.RtcConfig(()))
        await mesh.receive(plan_for(me, [A, B], flags=fr.LINK_DATA))
    await until(lambda: a.connected() == {B} and b.connected() == {A})
    first = a.links[B]
    assert not first.audio
    for mesh, me in ((a, A), (b, B)):
        await mesh.receive(plan_for(me, [A, B], epoch=2))
    await until(lambda: heard(a, B) > 10 and heard(b, A) > 10)
    assert a.links[B] is not first and a.links[B].audio
    assert [f.kind for s, f in hub.signals if s == A] == ["offer", "offer"]


async def test_no_voice_means_no_audio_either_way() -> None:
    hub = SignalHub()
    a, b = hub.add(A, voice=True), hub.add(B)  # B takes no part in voice
    try:
        await hub.start()
        await until(lambda: a.connected() == {B} and b.connected() == {A})
        directions = [t.currentDirection for t in a.links[B].pc.getTransceivers()]
        assert directions == ["inactive"]
        assert b.voice is None
    finally:
        await hub.close()
