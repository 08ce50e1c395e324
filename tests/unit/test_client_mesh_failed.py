"""`fluxnode.client.mesh`: a failed link's mark ends after `fail_for`, so a pair whose report
never took effect (the plan still names it) is tried again (real aiortc on loopback, nodes
played by `SignalHub`, the marks' time a test clock)."""

from __future__ import annotations

import pytest

from fluxnode.client.mesh import Mesh
from fluxnode.client.rtc_link import CONNECT_TIMEOUT
from fluxnode.core.session.mesh import FAIL_FOR
from tests.unit.mesh_double import SignalHub, plan_for, until

A, B = "aaa", "bbb"


pytestmark = pytest.mark.usefixtures("loopback_ice")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def failed_once(hub: SignalHub, a: Mesh) -> None:
    """Wait for A's first link to B to fail (its short deadline) and for A's offer and report
    to be out (a late one would reach B once the test stops swallowing them), then give links
    time to connect again (a busy machine may take more than that deadline)."""
    await until(lambda: sorted(f.kind for s, f in hub.signals if s == A) == ["failed", "offer"])
    assert B in a.failed
    a._connect_timeout = CONNECT_TIMEOUT


def offers(hub: SignalHub, sender: str) -> int:
    return sum(1 for s, f in hub.signals if s == sender and f.kind == "offer")


async def test_a_failure_the_node_never_took_ends_and_the_same_plan_is_tried_again(
    hub: SignalHub,
) -> None:
    clock = Clock()
    a = hub.add(A, connect_timeout=0.3, clock=clock)
    b = hub.add(B, clock=clock)
    # B never hears the offer, and the node never takes A's report: plans keep the pair.
    hub.swallow |= {(A, B, "offer"), (A, B, "failed")}
    await hub.start()
    await failed_once(hub, a)
    assert B not in a.links and A not in b.failed
    hub.swallow.clear()
    clock.now += FAIL_FOR - 1
    await a.retry_failed()
    await a.receive(plan_for(A, [A, B], epoch=2))  # the same link named again: not yet
    assert B not in a.links and B in a.failed
    clock.now += 1
    await a.receive(plan_for(A, [A, B], epoch=3))  # the mark ended: tried again
    assert B in a.links and not a.failed
    await until(lambda: a.connected() == {B} and b.connected() == {A})
    assert offers(hub, A) == 2


async def test_without_a_new_plan_the_link_is_tried_again_when_the_mark_ends(
    hub: SignalHub,
) -> None:
    clock = Clock()
    a = hub.add(A, connect_timeout=0.3, clock=clock)
    b = hub.add(B, clock=clock)
    hub.swallow |= {(A, B, "offer"), (A, B, "failed")}
    await hub.start()
    await failed_once(hub, a)
    hub.swallow.clear()
    clock.now += FAIL_FOR
    await a.retry_failed()  # what the mark's timer runs when it ends; no plan came meanwhile
    assert B in a.links
    await until(lambda: a.connected() == {B} and b.connected() == {A})
    assert offers(hub, A) == 2


async def test_the_mark_s_own_timer_retries_the_link(hub: SignalHub) -> None:
    a = hub.add(A, connect_timeout=0.3, fail_for=0.5)
    b = hub.add(B)
    hub.swallow |= {(A, B, "offer"), (A, B, "failed")}
    await hub.start()
    await failed_once(hub, a)
    hub.swallow.clear()
    await until(lambda: a.connected() == {B} and b.connected() == {A})
    assert offers(hub, A) == 2 and a.stats["links_failed"] == 1


async def test_an_offer_while_our_mark_lasts_is_answered_when_it_ends(hub: SignalHub) -> None:
    clock_a, clock_b = Clock(), Clock()
    a = hub.add(A, connect_timeout=0.3, clock=clock_a)
    b = hub.add(B, clock=clock_b)
    # The node never takes the report, but B hears it: both ends mark the pair.
    hub.swallow.add((A, B, "offer"))
    await hub.start()
    await failed_once(hub, a)
    await until(lambda: A in b.failed)
    hub.swallow.clear()
    clock_a.now += FAIL_FOR  # A's mark ends first: it offers while B's still lasts
    await a.retry_failed()
    await until(lambda: bool(b._pending))
    assert b.links == {}
    clock_b.now += FAIL_FOR
    await b.retry_failed()
    await until(lambda: a.connected() == {B} and b.connected() == {A})
