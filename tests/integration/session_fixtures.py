"""A live-session network for tests: anvil with the Flux contracts, three `flux-node run`
processes with gateways (bootstrapped together, following the chain with confirmations = 0),
and worlds of every access kind published on the first (visitors: `session_visitors`).

`start_network` builds it all and returns a `Network`; `stop_network` ends every process it
started, by PID (the nodes through `NodeFactory`, anvil through its own `stop`). Every wait is
bounded and names what it waited for when it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from fluxnode.chain.anvil import ANVIL_DEV_KEY_0, AnvilProcess, start_anvil
from fluxnode.chain.deploy import Deployment, deploy_all
from fluxnode.contracts import load_artifact
from fluxnode.node.admin import admin_request
from tests.conftest import NodeFactory, NodeProc, run_cli
from tests.helpers import EXAMPLE_WORLD

ETH = 10**18
LAND_TOKEN = 7
DAY = 86_400
#: Seat count of the world that must spill into a second instance.
SMALL_WORLD_PLAYERS = 4
#: Chain seconds the short-lived ticket type lives after the network is set up.
SHORT_TICKET_S = 3_600
FRIENDS = ("friend_0", "friend_1", "friend_2")


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    response = w3.provider.make_request(cast(Any, method), list(params))
    if "error" in response:
        raise RuntimeError(f"{method}: {response['error']}")
    return response["result"]


def transact(w3: Web3, call: Any, sender: LocalAccount) -> None:
    tx = call.build_transaction(
        {"from": sender.address, "nonce": w3.eth.get_transaction_count(sender.address)}
    )
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.02)
    assert receipt["status"] == 1, receipt


def key_file(path: Path, account: LocalAccount) -> Path:
    path.write_text(account.key.hex())
    path.chmod(0o600)
    return path


def status_of(node: NodeProc) -> dict[str, Any]:
    return asyncio.run(admin_request(node.data_dir, "GET", "/v0/status"))


def worlds_of(node: NodeProc) -> dict[str, str]:
    """world id -> CID, as the node's world directory lists them."""
    listed = asyncio.run(admin_request(node.data_dir, "GET", "/v0/worlds"))["worlds"]
    return {w["world_id"]: w["cid"] for w in listed}


def poll(
    predicate: Callable[[], object],
    what: str,
    timeout: float,
    detail: Callable[[], object] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            shown = f": {detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{shown}")
        time.sleep(0.1)


async def apoll(predicate: Callable[[], Awaitable[bool]], what: str, within: float) -> None:
    """`poll` for a test's event loop."""
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.1)


@dataclass
class Network:
    anvil: AnvilProcess
    w3: Web3
    deployment: Deployment
    factory: NodeFactory
    nodes: dict[str, NodeProc]
    owner: LocalAccount
    tmp: Path
    #: label -> world id (see `start_network` for the labels).
    worlds: dict[str, str] = field(default_factory=dict)
    #: label -> account: ticket holders, friends, the banned address.
    people: dict[str, LocalAccount] = field(default_factory=dict)
    tickets: Contract | None = None
    short_ticket_expires: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def hello_manifest(self) -> Path:
        """The world.json of the hello-world copies (hall, yard, lab, ...)."""
        return self.tmp / "world-hello" / "world.json"

    def url(self, name: str) -> str:
        return str(self.nodes[name].info["gateway_url"])

    def peer_id(self, name: str) -> str:
        return str(self.nodes[name].info["peer_id"])

    def status(self, name: str) -> dict[str, Any]:
        return status_of(self.nodes[name])

    def live(self) -> list[str]:
        return [n for n, p in self.nodes.items() if p.proc.poll() is None]

    def wait_indexed(self, block: int, timeout: float = 30.0) -> None:
        """Until every live node's chain index has reached `block`."""

        def indexed(name: str) -> int:
            return int(self.status(name).get("chain", {}).get("last_indexed_block", -1))

        for name in self.live():
            poll(
                lambda n=name: indexed(n) >= block,  # type: ignore[misc]
                f"node {name} to index block {block}",
                timeout,
                detail=lambda n=name: self.status(n).get("chain"),  # type: ignore[misc]
            )

    async def astatus(self, name: str) -> dict[str, Any]:
        return await admin_request(self.nodes[name].data_dir, "GET", "/v0/status")

    async def await_indexed(self, block: int, within: float = 30.0) -> None:
        """`wait_indexed` for a test's event loop."""
        for name in self.live():

            async def indexed(n: str = name) -> bool:
                chain = (await self.astatus(n)).get("chain", {})
                return int(chain.get("last_indexed_block", -1)) >= block

            await apoll(indexed, f"node {name} to index block {block}", within)

    def logs(self) -> str:
        return "\n".join(f"--- {n} ---\n{p.log()[-4000:]}" for n, p in self.nodes.items())


def _fund(w3: Web3, *accounts: LocalAccount) -> None:
    for account in accounts:
        rpc(w3, "anvil_setBalance", account.address, hex(10 * ETH))


def _world_folder(tmp: Path, name: str, max_players: int) -> Path:
    folder = tmp / f"world-{name}"
    shutil.copytree(EXAMPLE_WORLD, folder)
    manifest = json.loads((folder / "world.json").read_text())
    manifest["settings"]["maxPlayers"] = max_players
    manifest.pop("$schema", None)
    (folder / "world.json").write_text(json.dumps(manifest))
    return folder


def _publish(
    data_dir: Path, folder: Path, key: Path, where: list[str], *extra: str
) -> dict[str, Any]:
    argv = ["publish", "--data-dir", str(data_dir), str(folder), *where, "--key-file", str(key)]
    out = run_cli(*argv, *extra)
    assert out.returncode == 0, f"publish {where}: {out.stderr}"
    return dict(json.loads(out.stdout))


def start_network(tmp: Path) -> Network:
    """Anvil, contracts, land and tickets, three nodes, and the worlds (labels):

    - ``ticketed``: land:7, ticketed; ``holder_*`` hold a long-lived ticket, ``short_holder``
      one whose type expires `SHORT_TICKET_S` chain seconds from now;
    - ``plaza``: public, `SMALL_WORLD_PLAYERS` seats per instance;
    - ``vault``: private (its owner only); ``club``: friends, ``friend_*`` on its list;
    - ``arena``: public, ``banned`` banned by its owner with `flux-node world ban`;
    - ``hall``, ``yard``, ``lab``: public hello-world copies for the other scenarios.
    """
    started = time.monotonic()
    anvil = start_anvil()
    factory = NodeFactory(tmp)
    try:
        return _build(tmp, anvil, factory, started)
    except BaseException:
        factory.stop_all()
        anvil.stop()
        raise


def _build(tmp: Path, anvil: AnvilProcess, factory: NodeFactory, started: float) -> Network:
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url, cache_allowed_requests=True))
    deployer = cast(LocalAccount, Account.from_key(ANVIL_DEV_KEY_0))
    deployment = deploy_all(w3, deployer, rpc_url=anvil.rpc_url)
    owner = cast(LocalAccount, Account.create())
    people = {
        label: cast(LocalAccount, Account.create())
        for label in ("holder_a", "holder_b", "holder_c", "short_holder", "banned", *FRIENDS)
    }

    def at(name: str) -> Contract:
        address = cast(Any, deployment.addresses[name])
        return cast(Contract, w3.eth.contract(address=address, abi=load_artifact(name).abi))

    land, tickets = at("FluxLand"), at("FluxTickets")
    _fund(w3, owner, *(people[k] for k in people if "holder" in k))
    transact(w3, land.functions.mint(owner.address, LAND_TOKEN), deployer)
    now = int(w3.eth.get_block("latest")["timestamp"])
    short_expires = now + SHORT_TICKET_S
    create = tickets.functions.createLandTicketType
    transact(w3, create(LAND_TOKEN, now + 30 * DAY, 0, 100, False), owner)
    long_id = int(tickets.functions.lastTicketId().call())
    transact(w3, create(LAND_TOKEN, short_expires, 0, 100, False), owner)
    short_id = int(tickets.functions.lastTicketId().call())
    for label in ("holder_a", "holder_b", "holder_c"):
        transact(w3, tickets.functions.buy(long_id), people[label])
    transact(w3, tickets.functions.buy(short_id), people["short_holder"])
    chain_ready = int(w3.eth.block_number)

    names = ("a", "b", "c")
    for name in names:
        d = tmp / name
        d.mkdir()
        deployment.write(d / "deployment.json")
        (d / "config.toml").write_text(f'[chain]\nrpc = ["{anvil.rpc_url}"]\nconfirmations = 0\n')
    nodes = {"a": factory.start("a", gateway=True)}
    a_addr = nodes["a"].wait_ready(60)["addrs"][0]
    nodes["b"] = factory.start("b", "--bootstrap", a_addr, gateway=True)
    b_addr = nodes["b"].wait_ready(60)["addrs"][0]
    nodes["c"] = factory.start("c", "--bootstrap", a_addr, "--bootstrap", b_addr, gateway=True)
    nodes["c"].wait_ready(60)
    net = Network(anvil, w3, deployment, factory, nodes, owner, tmp, people=people)
    net.tickets = tickets
    net.short_ticket_expires = short_expires
    net.timings["nodes_up"] = time.monotonic() - started
    _wait_meshed(net)
    net.timings["meshed"] = time.monotonic() - started

    key = key_file(tmp / "owner.key", owner)
    hello = _world_folder(tmp, "hello", 8)
    small = _world_folder(tmp, "small", SMALL_WORLD_PLAYERS)
    friends = [f"--allow={people[f'friend_{i}'].address}" for i in range(3)]
    jobs: dict[str, tuple[Path, list[str], list[str]]] = {
        "ticketed": (hello, ["--land", str(LAND_TOKEN)], ["--visibility", "ticketed"]),
        "plaza": (small, ["--slug", "plaza"], ["--visibility", "public"]),
        "vault": (hello, ["--slug", "vault"], ["--visibility", "private"]),
        "club": (hello, ["--slug", "club"], ["--visibility", "friends", *friends]),
        "arena": (hello, ["--slug", "arena"], ["--visibility", "public"]),
        "hall": (hello, ["--slug", "hall"], ["--visibility", "public"]),
        "yard": (hello, ["--slug", "yard"], ["--visibility", "public"]),
        "lab": (hello, ["--slug", "lab"], ["--visibility", "public"]),
    }
    a_dir = nodes["a"].data_dir
    with ThreadPoolExecutor(4) as pool:
        answers = dict(
            zip(
                jobs,
                pool.map(lambda j: _publish(a_dir, j[0], key, j[1], *j[2]), jobs.values()),
                strict=True,
            )
        )
    net.worlds = {label: str(a["world_id"]) for label, a in answers.items()}
    banned = run_cli(
        "world", "ban", "--data-dir", str(a_dir), "--key-file", str(key),
        net.worlds["arena"], people["banned"].address,
    )  # fmt: skip
    assert banned.returncode == 0, banned.stderr
    net.timings["published"] = time.monotonic() - started

    want = {net.worlds[label]: str(a["cid"]) for label, a in answers.items()}
    for name in names:
        poll(
            lambda n=name: all(  # type: ignore[misc]
                worlds_of(nodes[n]).get(w) == c for w, c in want.items()
            ),
            f"every world to reach node {name}",
            30,
            detail=lambda n=name: worlds_of(nodes[n]),  # type: ignore[misc]
        )
        poll(
            lambda n=name: status_of(nodes[n])["bans"]["banned"] >= 1,  # type: ignore[misc]
            f"the arena's ban list to reach node {name}",
            30,
            detail=lambda n=name: status_of(nodes[n])["bans"],  # type: ignore[misc]
        )
    net.wait_indexed(chain_ready)
    net.timings["ready"] = time.monotonic() - started
    return net


def _wait_meshed(net: Network) -> None:
    """Until every node has both others as peers (gossip meshes graft on the next heartbeat)."""
    ids = {n: net.peer_id(n) for n in net.nodes}

    def peers(name: str) -> set[str]:
        return {str(p["peer_id"]) for p in net.status(name)["peers"]}

    for name in net.nodes:
        others = {i for n, i in ids.items() if n != name}
        poll(
            lambda n=name, o=others: o <= peers(n),  # type: ignore[misc]
            f"node {name} to connect to the others",
            30,
            detail=lambda n=name: net.status(n)["peers"],  # type: ignore[misc]
        )


def stop_network(net: Network) -> None:
    net.factory.stop_all()
    net.anvil.stop()


@contextlib.contextmanager
def network(tmp: Path) -> Iterator[Network]:
    net = start_network(tmp)
    try:
        yield net
    finally:
        stop_network(net)
