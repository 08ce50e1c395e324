"""Live sessions across three real `flux-node run` processes on loopback, with a real anvil.

One network (anvil + contracts, land and tickets minted, three nodes with gateways, worlds of
every access kind) is built once for the module (`session_fixtures.start_network`); each test
uses its own worlds and its own visitors, so what one test does cannot satisfy another's
assertions. The node-kill test runs last: it leaves node c dead.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from fluxnode.client import Event, PeerJoined, PeerMoved
from fluxnode.core.errors import JoinDenied
from fluxnode.core.session.join import (
    DENIED_BANNED,
    DENIED_NO_TICKET,
    DENIED_NOT_FRIEND,
    DENIED_PRIVATE,
)
from fluxnode.core.session.state import StateOp, WorldState
from fluxnode.core.world import parse_manifest
from tests.integration.session_fixtures import (
    SMALL_WORLD_PLAYERS,
    Network,
    Watched,
    network,
    rpc,
    visit,
)

pytestmark = pytest.mark.slow

DOOR = ("door-1", "open")
#: Longest a node may take to hear another's directory summary (published every 2 s).
DIRECTORY_WAIT_S = 15.0


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with network(tmp_path_factory.mktemp("sessions")) as built:
        print(f"network set-up: {built.timings}")
        yield built


def stranger() -> LocalAccount:
    return Account.create()  # type: ignore[no-any-return]


async def refused(url: str, account: LocalAccount, world_id: str) -> str:
    """The reason `url` gives `account` for not seating it in `world_id` (fails if seated)."""
    try:
        watched = await visit(url, account, world_id, "refused")
    except JoinDenied as exc:
        return exc.reason
    await watched.close()
    raise AssertionError(f"{account.address} was let into {world_id} at {url}")


async def close_all(visitors: list[Watched]) -> None:
    await asyncio.gather(*(v.close() for v in visitors))


# --- 1. access rules and instances, 30 visitors over 3 nodes ---------------------------------


async def test_thirty_visitors_access_rules_and_instances(net: Network) -> None:
    a, b, c = net.url("a"), net.url("b"), net.url("c")
    w, p = net.worlds, net.people
    seated: list[Watched] = []
    try:
        # plaza: 12 visitors over the three nodes, 4 seats per instance -> at least 3 instances
        plaza_nodes = [a, b, c] * 4
        plaza = await asyncio.gather(
            *(visit(u, stranger(), w["plaza"], f"plaza-{i}") for i, u in enumerate(plaza_nodes))
        )
        seated += plaza
        per_instance = collections.Counter(v.instance for v in plaza)
        assert len(per_instance) >= 3, per_instance
        assert max(per_instance.values()) <= SMALL_WORLD_PLAYERS, per_instance

        # ticketed land world: holders on every node get in; others are told why not
        holders = await asyncio.gather(
            visit(a, p["holder_a"], w["ticketed"], "holder-a"),
            visit(b, p["holder_b"], w["ticketed"], "holder-b"),
            visit(c, p["holder_c"], w["ticketed"], "holder-c"),
            visit(b, p["short_holder"], w["ticketed"], "short-holder"),
        )
        seated += holders
        reasons = await asyncio.gather(
            refused(a, stranger(), w["ticketed"]), refused(c, stranger(), w["ticketed"])
        )
        assert reasons == [DENIED_NO_TICKET] * 2

        # private world: its owner only; friends world: its list only
        seated.append(await visit(b, net.owner, w["vault"], "vault-owner"))
        reasons = await asyncio.gather(
            refused(a, stranger(), w["vault"]), refused(c, stranger(), w["vault"])
        )
        assert reasons == [DENIED_PRIVATE] * 2
        seated += await asyncio.gather(
            *(visit(u, p[f"friend_{i}"], w["club"], f"friend-{i}") for i, u in enumerate([a, b, c]))
        )
        reasons = await asyncio.gather(
            refused(b, stranger(), w["club"]), refused(c, stranger(), w["club"])
        )
        assert reasons == [DENIED_NOT_FRIEND] * 2

        # a banned address gets in nowhere; everyone else does
        reasons = await asyncio.gather(*(refused(u, p["banned"], w["arena"]) for u in (a, b, c)))
        assert reasons == [DENIED_BANNED] * 3
        seated += await asyncio.gather(
            *(visit(u, stranger(), w["arena"], f"arena-{i}") for i, u in enumerate([a, b, c]))
        )
        # 30 visitors: 23 seated, 6 strangers refused, the banned address 3 times
        assert len(seated) == 23

        # the short-lived ticket type expires on chain: after the time jump it lets nobody in,
        # while a long-lived one still does
        for v in holders:
            await v.close()
        seated = [v for v in seated if v not in holders]
        now = int(net.w3.eth.get_block("latest")["timestamp"])
        rpc(net.w3, "evm_increaseTime", net.short_ticket_expires - now + 60)
        rpc(net.w3, "evm_mine")
        await net.await_indexed(int(net.w3.eth.block_number))
        reasons = await asyncio.gather(
            refused(a, p["short_holder"], w["ticketed"]),
            refused(b, p["short_holder"], w["ticketed"]),
        )
        assert reasons == [DENIED_NO_TICKET] * 2
        seated.append(await visit(c, p["holder_a"], w["ticketed"], "holder-a-again"))
    finally:
        await close_all(seated)


# --- 2. presence and shared state across nodes ---------------------------------------------


async def join_instance(
    url: str, account: LocalAccount, world_id: str, label: str, instance: str, **options: Any
) -> Watched:
    """Join `world_id` at `url` in `instance` (hosted elsewhere). Until the node has heard the
    directory summary of that instance it places the visitor in a new one of its own; then the
    visitor leaves and asks again, for at most `DIRECTORY_WAIT_S`."""
    deadline = time.monotonic() + DIRECTORY_WAIT_S
    while True:
        watched = await visit(url, account, world_id, label, **options)
        if watched.instance == instance:
            return watched
        got = watched.instance
        await watched.v.leave()
        await watched.close()
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{label} at {url} kept being placed in {got}, never in {instance}"
            )
        await asyncio.sleep(0.3)


def near(position: Sequence[float], target: Sequence[float]) -> bool:
    return math.dist(position, target) < 1e-3


def moved_to(mover: Watched, target: Sequence[float]) -> Callable[[Event], bool]:
    def match(e: Event) -> bool:
        return (
            isinstance(e, PeerMoved)
            and (e.address or "").lower() == mover.address
            and e.transform is not None
            and near(e.transform.position, target)
        )

    return match


def door_op(v: Watched) -> StateOp | None:
    replica = v.v.replica
    assert replica is not None and replica.state is not None, f"{v.label} has no world state"
    held = [op for op in replica.state.snapshot() if (op.object_id, op.prop) == DOOR]
    return held[0] if held else None


async def test_visitors_on_three_nodes_see_each_other_move_and_agree_on_the_door(
    net: Network,
) -> None:
    hall, manifest = net.worlds["hall"], net.hello_manifest
    va = await visit(net.url("a"), stranger(), hall, "hall-a", manifest=manifest)
    visitors = [va]
    try:
        for name in ("b", "c"):
            label = f"hall-{name}"
            url = net.url(name)
            visitors.append(
                await join_instance(url, stranger(), hall, label, va.instance, manifest=manifest)
            )
        vb = visitors[1]
        for watcher in visitors:  # everyone hears of everyone else
            for other in visitors:
                if other is not watcher:
                    await watcher.wait_for(
                        lambda e, o=other: (
                            isinstance(e, PeerJoined)  # type: ignore[misc]
                            and (e.address or "").lower() == o.address
                        ),
                        f"PeerJoined of {other.label}",
                    )

        # b's visitor and a's visitor step aside; each is seen where it went, on every node
        marks = {v.label: v.mark() for v in visitors}
        targets = {}
        for mover, dx in ((vb, 0.8), (va, -0.8)):
            spawn = mover.v.joined.spawn.position  # type: ignore[union-attr]
            targets[mover.label] = (spawn[0] + dx, spawn[1], spawn[2])
            await mover.v.move(targets[mover.label])
        for mover in (vb, va):
            for watcher in visitors:
                if watcher is not mover:
                    await watcher.wait_for(
                        moved_to(mover, targets[mover.label]),
                        f"PeerMoved of {mover.label} to {targets[mover.label]}",
                        since=marks[watcher.label],
                    )

        # two visitors on different nodes click the door at once: every replica ends up
        # holding the op the merge rule picks (the one a fresh replica keeps of the two)
        op_a, op_b = await asyncio.gather(va.v.interact(DOOR[0]), vb.v.interact(DOOR[0]))
        judge = WorldState(parse_manifest(manifest.read_bytes()), lambda op: True)
        for op in (op_a, op_b):
            judge.receive_op(op, time.time())
        (winner,) = [op for op in judge.snapshot() if (op.object_id, op.prop) == DOOR]
        deadline = time.monotonic() + 20
        while any(door_op(v) != winner for v in visitors):
            if time.monotonic() > deadline:
                held = {v.label: door_op(v) for v in visitors}
                raise AssertionError(f"replicas never agreed on {winner}: {held}")
            await asyncio.sleep(0.05)
        values = {v.label: v.v.replica.state.value(*DOOR) for v in visitors}  # type: ignore[union-attr]
        assert set(values.values()) == {winner.value}, values
    finally:
        await close_all(visitors)
