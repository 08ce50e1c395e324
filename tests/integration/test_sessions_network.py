"""Live sessions across three real `flux-node run` processes on loopback, with a real anvil.

One network (anvil + contracts, land and tickets minted, three nodes with gateways, worlds of
every access kind) is built once for the module (`session_fixtures.start_network`); each test
uses its own worlds and its own visitors, so what one test does cannot satisfy another's
assertions. The node-kill test runs last: it leaves node c dead.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from fluxnode.client import PeerJoined, PeerLeft, PeerMoved, StateChanged
from fluxnode.core.errors import JoinDenied
from fluxnode.core.session.join import (
    DENIED_BANNED,
    DENIED_NO_TICKET,
    DENIED_NOT_FRIEND,
    DENIED_PRIVATE,
)
from tests.integration.session_fixtures import (
    SMALL_WORLD_PLAYERS,
    Network,
    Watched,
    network,
    rpc,
    visit,
)

pytestmark = pytest.mark.slow


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


_ = (PeerJoined, PeerLeft, PeerMoved, StateChanged, Path)
