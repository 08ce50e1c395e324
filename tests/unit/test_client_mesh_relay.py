"""`fluxnode.client.mesh` between relay and mesh plans (real aiortc on loopback, nodes played
by `SignalHub`): links made for a relay plan become mesh links when the instance shrinks."""

from __future__ import annotations

import pytest

from fluxnode.client.mesh import Mesh
from fluxnode.core.session import frames as fr
from tests.unit.mesh_double import SignalHub, plan_for, until

A, B = "aaa", "bbb"


pytestmark = pytest.mark.usefixtures("loopback_ice")


def relay_plan(me: str, everyone: list[str], epoch: int = 1) -> fr.MeshPlan:
    """Proximity voice only: every pair has an audio link, none carries transforms."""
    plan = plan_for(me, everyone, epoch, flags=fr.LINK_AUDIO)
    return fr.MeshPlan(plan.epoch, "relay", plan.links, ())


def failures(hub: SignalHub) -> list[tuple[str, str]]:
    return [(s, f.peer) for s, f in hub.signals if f.kind == "failed"]


async def test_a_late_answer_to_the_replaced_offer_does_not_fail_the_mesh_link(
    hub: SignalHub,
) -> None:
    a, b = hub.add(A, voice=True), hub.add(B, voice=True)
    hub.hold.add((B, A, "answer"))
    for v, m in ((A, a), (B, b)):
        await m.receive(fr.RtcConfig(()))
        await m.receive(relay_plan(v, [A, B]))
    await until(lambda: len(hub.held) == 1)  # B answered the audio-only offer; A has not it yet
    # The instance shrank: mesh plans. A re-offers with a data channel before the old answer
    # reached it, and that answer comes first.
    await b.receive(plan_for(B, [A, B], epoch=2))
    await a.receive(plan_for(A, [A, B], epoch=2))
    await until(lambda: len(hub.held) == 2)
    hub.release()
    await until(lambda: (a.connected() == {B} and b.connected() == {A}) or bool(failures(hub)))
    assert failures(hub) == []
    assert a.stats["stale_answers"] == 1


async def test_without_voice_no_link_is_offered_for_audio_alone(hub: SignalHub) -> None:
    # Such a link would hold nothing to connect: it would time out and be reported failed,
    # and the nodes would keep the pair relayed for a minute, mesh plan or not.
    a, b = hub.add(A, connect_timeout=0.5), hub.add(B, connect_timeout=0.5)
    for v, m in ((A, a), (B, b)):
        await m.receive(fr.RtcConfig(()))
        await m.receive(relay_plan(v, [A, B]))
    assert a.links == {} and b.links == {}
    assert [f for _, f in hub.signals] == []
    for v, m in ((A, a), (B, b)):
        await m.receive(plan_for(v, [A, B], epoch=2))
    await until(lambda: a.connected() == {B} and b.connected() == {A})
    assert failures(hub) == []


async def test_relay_and_mesh_plans_in_turn_keep_the_data_links(hub: SignalHub) -> None:
    meshes: dict[str, Mesh] = {v: hub.add(v) for v in (A, B, "ccc")}
    everyone = sorted(meshes)
    await hub.start()
    epoch = 1
    for _ in range(4):
        await until(lambda: all(m.connected() == set(everyone) - {v} for v, m in meshes.items()))
        for v, m in meshes.items():
            await m.receive(relay_plan(v, everyone, epoch + 1))
        assert all(m.connected() == set() for m in meshes.values())  # transforms relay now
        for v, m in meshes.items():
            await m.receive(plan_for(v, everyone, epoch + 2))
        epoch += 2
    await until(lambda: all(m.connected() == set(everyone) - {v} for v, m in meshes.items()))
    assert failures(hub) == []
    assert sum(m.stats["links_opened"] for m in meshes.values()) == 6  # the first three pairs
