"""The viewer in headless Chromium entering a TICKETED world on a node that follows a chain.

One set-up for the module: anvil with the Flux contracts, a world owner who creates a ticket
type for their personal world and two wallets (made at run time) that buy one ticket each,
a `flux-node run` with its gateway pointed at anvil (confirmations = 0), and the world
published with `settings.visibility = "ticketed"`. Nothing signs in before the node's chain
index has reached the block of the last purchase.

A ticket holder's page signs in with an injected EIP-1193 wallet, joins, sees a Python
`fluxnode.client` visitor (the other holder) in "who is here" and its avatar move, and opens
the door with a click that the Python visitor receives. A page whose wallet holds no ticket
is shown the node's exact refusal. Both pages leave a screenshot (under $FLUX_TEST_ARTIFACTS
if set, else the test's tmp dir).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from fluxnode.chain.anvil import ANVIL_DEV_KEY_0, start_anvil
from fluxnode.chain.deploy import deploy_all
from fluxnode.client import PeerJoined, StateChanged, Visitor
from fluxnode.contracts import load_artifact
from fluxnode.core.session.join import DENIED_NO_TICKET
from tests.browser.conftest import (
    inject_wallet,
    keep_screenshot,
    new_account,
    new_page,
    open_world,
    until,
    wait_state,
    world_page_url,
)
from tests.conftest import NodeFactory
from tests.helpers import EXAMPLE_WORLD, publish
from tests.integration.session_fixtures import key_file, poll, rpc, status_of, transact

pytestmark = [pytest.mark.slow, pytest.mark.interop]

SLUG = "gala"
ETH = 10**18
DAY = 86_400
#: A loaded machine starts a node, indexes and answers slowly: bounds, not expectations.
SETUP_TIMEOUT_S = 120.0
VISITOR_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class TicketedWorld:
    gateway: str
    world_id: str
    cid: str
    manifest: Path
    #: Two wallets holding a valid ticket: one for the page, one for the Python visitor.
    page_holder: LocalAccount
    py_holder: LocalAccount


def ticketed_copy(folder: Path) -> Path:
    """docs/examples/hello-world with `settings.visibility` set to ticketed."""
    shutil.copytree(EXAMPLE_WORLD, folder)
    manifest = json.loads((folder / "world.json").read_text())
    manifest.pop("$schema", None)  # a relative path that means nothing outside docs/
    manifest["settings"]["visibility"] = "ticketed"
    (folder / "world.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def ticketed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TicketedWorld]:
    tmp = tmp_path_factory.mktemp("ticketed")
    with start_anvil() as anvil:
        factory = NodeFactory(tmp)
        try:
            yield _build(tmp, anvil.rpc_url, factory)
        finally:
            factory.stop_all()


def _build(tmp: Path, rpc_url: str, factory: NodeFactory) -> TicketedWorld:
    w3 = Web3(Web3.HTTPProvider(rpc_url, cache_allowed_requests=True))
    deployer = cast(LocalAccount, Account.from_key(ANVIL_DEV_KEY_0))  # anvil's public dev key
    deployment = deploy_all(w3, deployer, rpc_url=rpc_url)
    owner, page_holder, py_holder = (cast(LocalAccount, Account.create()) for _ in range(3))
    for account in (owner, page_holder, py_holder):
        rpc(w3, "anvil_setBalance", account.address, hex(10 * ETH))
    tickets = w3.eth.contract(
        address=cast(Any, deployment.addresses["FluxTickets"]),
        abi=load_artifact("FluxTickets").abi,
    )
    now = int(w3.eth.get_block("latest")["timestamp"])
    create = tickets.functions.createPersonalTicketType(SLUG, now + 30 * DAY, 0, 10, False)
    transact(w3, create, owner)
    ticket_id = int(tickets.functions.lastTicketId().call())
    for holder in (page_holder, py_holder):
        transact(w3, tickets.functions.buy(ticket_id), holder)
        assert tickets.functions.isValid(holder.address, ticket_id).call() is True
    minted_at = int(w3.eth.block_number)

    data_dir = tmp / "host"
    data_dir.mkdir()
    deployment.write(data_dir / "deployment.json")
    (data_dir / "config.toml").write_text(f'[chain]\nrpc = ["{rpc_url}"]\nconfirmations = 0\n')
    node = factory.start("host", gateway=True)
    info = node.wait_ready(SETUP_TIMEOUT_S)
    folder = ticketed_copy(tmp / "world")
    world = publish(data_dir, folder, key_file(tmp / "owner.key", owner), slug=SLUG)
    assert world["world_id"] == f"{owner.address.lower()}/{SLUG}", world

    def indexed() -> int:
        return int(status_of(node).get("chain", {}).get("last_indexed_block", -1))

    poll(
        lambda: indexed() >= minted_at,
        f"the node's chain index to reach block {minted_at} (the tickets)",
        SETUP_TIMEOUT_S,
        detail=lambda: status_of(node).get("chain"),
    )
    return TicketedWorld(
        gateway=str(info["gateway_url"]),
        world_id=str(world["world_id"]),
        cid=str(world["cid"]),
        manifest=folder / "world.json",
        page_holder=page_holder,
        py_holder=py_holder,
    )


async def test_ticket_holders_meet_in_a_ticketed_world(
    ticketed: TicketedWorld, browser: Any, artifacts: Path
) -> None:
    w = ticketed
    py = await Visitor.connect(w.gateway, w.py_holder.key.hex(), world_id=w.world_id,
                               manifest=str(w.manifest), timeout=VISITOR_TIMEOUT_S)  # fmt: skip
    try:
        page, log = await new_page(browser)
        await inject_wallet(page, w.page_holder)
        await open_world(
            page, log, world_page_url(w.gateway, w.world_id, w.cid), "#signin-injected"
        )
        assert "block(s) verified" in await page.inner_text("#verified")
        me = await page.evaluate("window.fluxViewer.session.replica.visitor")
        assert await page.evaluate("window.fluxViewer.session.replica.address") == (
            w.page_holder.address.lower()
        )

        # Each holder sees the other.
        joined = await until(py, lambda e: isinstance(e, PeerJoined) and e.visitor == me,
                             "PeerJoined of the browser")  # fmt: skip
        assert isinstance(joined, PeerJoined) and joined.address == w.page_holder.address.lower()
        row = page.locator(f'#who li[data-visitor="{py.visitor}"]')
        await row.wait_for()
        assert await row.get_attribute("data-address") == w.py_holder.address.lower()

        # The Python visitor moves: the page's list and its avatar in the scene follow.
        position = (1.5, 0.0, 2.5)
        await py.move(position)
        await page.wait_for_function(
            """([v, shown, pos]) => {
              const li = document.querySelector(`#who li[data-visitor="${v}"]`);
              const a = window.fluxViewer.view.avatars.get(v);
              return li?.dataset.position === shown && a?.target &&
                     a.target.toArray().every((c, i) => Math.abs(c - pos[i]) < 1e-9);
            }""",
            arg=[py.visitor, ",".join(f"{c:.2f}" for c in position), list(position)],
        )

        # A click on the door: the Python visitor receives the state change.
        point = await page.evaluate("window.fluxViewer.view.screenPoint('door-1')")
        await page.mouse.click(point["x"], point["y"])
        change = await until(py, lambda e: isinstance(e, StateChanged) and e.object_id == "door-1",
                             "the door's state change")  # fmt: skip
        assert change == StateChanged("door-1", "open", True, w.page_holder.address.lower())
        assert py.replica is not None and py.replica.state is not None
        assert py.replica.state.value("door-1", "open") is True

        assert await page.inner_text("#who-count") == "2"
        # The node refused none of the page's frames (each refusal is a notice in the log).
        assert await page.locator("#chat-log li.notice").all_inner_texts() == []
        shot = await keep_screenshot(page, artifacts, "viewer-ticketed")
        assert shot.stat().st_size > 10_000
    finally:
        await py.close()


async def test_a_wallet_without_a_ticket_is_told_why(
    ticketed: TicketedWorld, browser: Any, artifacts: Path
) -> None:
    w = ticketed
    page, log = await new_page(browser)
    await inject_wallet(page, new_account())  # made just now: it holds no ticket
    await page.goto(world_page_url(w.gateway, w.world_id, w.cid))
    await wait_state(page, "signin", log=log)
    await page.click("#signin-injected")
    assert await wait_state(page, "denied", "joined", "error", log=log) == "denied"
    assert await page.get_attribute("#error", "data-kind") == "denied"
    assert await page.inner_text("#error") == DENIED_NO_TICKET
    await keep_screenshot(page, artifacts, "viewer-ticketed-denied")
