"""The decisions of `flux-node devnet`, as data: options, each node's config, the dev wallets
file, which leftover processes are ours, when replication is done, and what to print.

No processes, sockets or clocks here (`fluxnode.node.devnet` does the I/O), so every rule is
checked by plain unit tests.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxnode.chain.keys import WalletKey
from fluxnode.core.errors import ConfigError

MAX_NODES = 16
DEFAULT_NODES = 3
DEFAULT_PORT = 8011
DEFAULT_CHAIN_PORT = 8545
HOST = "127.0.0.1"
#: The land parcel the owner gets; its world is the ticketed sample world.
LAND_TOKEN = 1
PUBLIC_SLUG = "plaza"
#: Dev wallets, by role: the owner holds the land, the visitor a ticket, the stranger nothing.
ROLES = ("owner", "visitor", "stranger")
WALLETS_FILE = "wallets.json"
STATE_FILE = "devnet.json"
SAMPLE_WORLDS = Path(__file__).resolve().parent / "sample_worlds"


@dataclass(frozen=True)
class DevnetOptions:
    """`flux-node devnet`'s flags, checked. Port 0 = any free port."""

    nodes: int
    dir: Path
    port: int
    chain_port: int
    anvil: Path | None = None

    @classmethod
    def from_args(
        cls, nodes: int, dir: str, port: int, chain_port: int, anvil: str | None
    ) -> DevnetOptions:
        if not 1 <= nodes <= MAX_NODES:
            raise ConfigError("--nodes", f"must be 1..{MAX_NODES}, got {nodes}")
        if not 0 <= port <= 65535 - MAX_NODES:
            raise ConfigError("--port", f"bad port {port}")
        if not 0 <= chain_port <= 65535:
            raise ConfigError("--chain-port", f"bad port {chain_port}")
        if port and chain_port and port <= chain_port < port + nodes:
            raise ConfigError("--chain-port", f"{chain_port} collides with a gateway port")
        if anvil is not None and not Path(anvil).is_file():
            raise ConfigError("--anvil", f"no anvil binary at {anvil}")
        return cls(nodes, Path(dir).absolute(), port, chain_port, Path(anvil) if anvil else None)

    def names(self) -> list[str]:
        return [f"node{i}" for i in range(1, self.nodes + 1)]

    def gateway_ports(self) -> list[int]:
        """Node i (from 0) serves its gateway on `port + i`, or on any free port for 0."""
        return [self.port + i if self.port else 0 for i in range(self.nodes)]

    def fixed_ports(self) -> list[tuple[str, int]]:
        """(flag, port) of every port that must be free before anything starts."""
        out = [("--port", p) for p in self.gateway_ports() if p]
        return out + ([("--chain-port", self.chain_port)] if self.chain_port else [])

    def node_dir(self, name: str) -> Path:
        return self.dir / "nodes" / name


def node_config(rpc_url: str, gateway_port: int, nodes: int, *, listen_port: int = 0) -> str:
    """config.toml of one devnet node: loopback only, on the devnet chain (no confirmation
    depth: anvil does not reorganise), and `auto` hosting with every node as a replica, so each
    world reaches all of them."""
    return (
        "# Written by `flux-node devnet` at every start; edits are lost.\n"
        "[network]\n"
        f'listen = ["/ip4/{HOST}/tcp/{listen_port}"]\n'
        "[gateway]\n"
        f'listen = "{HOST}:{gateway_port}"\n'
        "[chain]\n"
        f'rpc = ["{rpc_url}"]\n'
        "confirmations = 0\n"
        "[hosting]\n"
        'mode = "auto"\n'
        f"replication = {nodes}\n"
        "interval = 1.0\n"
        "grace = 30.0\n"
    )


@dataclass(frozen=True)
class Wallets:
    """The devnet's dev wallets (test keys: worthless anywhere but this chain)."""

    owner: WalletKey
    visitor: WalletKey
    stranger: WalletKey

    @classmethod
    def generate(cls) -> Wallets:
        return cls(*(_new_key() for _ in ROLES))

    def by_role(self) -> dict[str, WalletKey]:
        return {"owner": self.owner, "visitor": self.visitor, "stranger": self.stranger}

    def to_json(self, *, chain_id: int, rpc_url: str, land_token: int) -> str:
        what = {
            "owner": f"owns land {land_token} (the ticketed world) and publishes both worlds",
            "visitor": f"holds a ticket to land:{land_token}",
            "stranger": "holds nothing: the ticketed world refuses it",
        }
        wallets = {
            role: {"address": key.address, "private_key": "0x" + key.key.hex(), "role": what[role]}
            for role, key in self.by_role().items()
        }
        doc = {
            "note": "dev wallets of a local devnet: test keys, never fund them anywhere else",
            "chain_id": chain_id,
            "rpc_url": rpc_url,
            "wallets": wallets,
        }
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> Wallets:
        """The wallets of an earlier run's file; ConfigError naming `where` if it is not one."""
        try:
            doc = json.loads(text)
            keys = [doc["wallets"][role]["private_key"] for role in ROLES]
            return cls(*(WalletKey.from_secret(bytes.fromhex(k.removeprefix("0x"))) for k in keys))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ConfigError(where, f"not a devnet wallets file ({detail}); delete it") from None


def _new_key() -> WalletKey:
    while True:
        try:
            return WalletKey.from_secret(secrets.token_bytes(32))
        except ValueError:  # one in ~2^128: a secret outside the curve's order
            continue


def is_our_leftover(cmdline: Sequence[str], expect: Sequence[str]) -> bool:
    """Whether a process still alive from an earlier run (its /proc cmdline) is the one that run
    started: every word of `expect` (e.g. the node's --data-dir, or anvil's binary and port)
    appears in it. A PID reused by another program never matches, so it is never signalled."""
    return bool(cmdline) and all(word in cmdline for word in expect)


def missing_replicas(pinned: Mapping[str, set[str]], want: set[str]) -> dict[str, list[str]]:
    """node -> the wanted CIDs it does not pin yet (empty when replication is done)."""
    return {node: sorted(want - cids) for node, cids in pinned.items() if want - cids}


def exit_is_fatal(name: str, nodes_alive: int) -> bool:
    """Whether a child exiting after start-up ends the devnet: the chain ("anvil") or the last
    node does; any other node is only reported."""
    return name == "anvil" or nodes_alive == 0


def share_link(gateway_url: str, world_id: str) -> str:
    return f"{gateway_url.rstrip('/')}/w/{world_id}"


@dataclass(frozen=True)
class ReadyInfo:
    """What the devnet prints once everything is up (and writes to DIR/devnet.json)."""

    dir: Path
    gateway_urls: list[str]
    rpc_url: str
    chain_id: int
    worlds: dict[str, dict[str, str]]  # "ticketed"/"public" -> {world_id, cid, name}
    processes: list[dict[str, Any]]  # {name, pid, ...} of every child

    @property
    def gateway_url(self) -> str:
        return self.gateway_urls[0]

    def share_links(self) -> dict[str, str]:
        return {k: share_link(self.gateway_url, w["world_id"]) for k, w in self.worlds.items()}

    def to_json(self, pid: int) -> str:
        doc = {
            "pid": pid,
            "dir": str(self.dir),
            "gateway_url": self.gateway_url,
            "gateway_urls": self.gateway_urls,
            "rpc_url": self.rpc_url,
            "chain_id": self.chain_id,
            "wallets_file": str(self.dir / WALLETS_FILE),
            "worlds": self.worlds,
            "share_links": self.share_links(),
            "processes": self.processes,
        }
        return json.dumps(doc, indent=2) + "\n"

    def summary(self) -> str:
        links = self.share_links()
        t, p = self.worlds["ticketed"], self.worlds["public"]
        others = " ".join(u + "/" for u in self.gateway_urls[1:]) or "(none)"
        nodes = len(self.gateway_urls)
        return "\n".join(
            [
                f"Flux devnet ready: {nodes} node{'s' if nodes != 1 else ''}, "
                f"chain {self.chain_id} at {self.rpc_url}",
                f"  Open        {self.gateway_url}/   (the world directory)",
                f"  Ticketed    {links['ticketed']}   {t['name']}: the visitor's ticket lets in",
                f"  Public      {links['public']}   {p['name']}: anyone",
                f"  Other nodes {others}",
                f"  Wallets     {self.dir / WALLETS_FILE}   (dev keys: owner, visitor, stranger)",
                f"  Logs        {self.dir / 'logs'}/",
                "Ctrl-C stops everything.",
            ]
        )
