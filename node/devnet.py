"""`flux-node devnet`: a whole Flux network on this machine, for a newcomer's first minute.

It starts anvil with the contracts deployed, seeds it (dev wallets, a land parcel for the owner,
a ticket for the visitor), runs N `flux-node run` processes on 127.0.0.1 bootstrapped off the
first, publishes the bundled sample worlds through the first (the ticketed gallery on the land,
a public plaza), waits until every node pins both and has indexed the chain, prints where to
look, and then supervises until SIGINT/SIGTERM.

Processes: every child runs in a process group of its own, so a terminal's Ctrl-C reaches only
this supervisor, which stops the nodes (SIGTERM to each group, SIGKILL after a grace period)
and then anvil, also when start-up fails halfway. Their PIDs are written to DIR/pids.json as
they start; a later run stops what a killed supervisor left behind (after checking each PID's
command line, so a reused PID is never signalled).

State: each start resets the devnet (the chain is a fresh anvil, so node data dirs and logs
from an earlier run are removed) but reuses DIR/wallets.json, so the dev wallets a newcomer
imported into a browser wallet stay valid. The rules (config, wallets file, summary) live in
`fluxnode.node.devnet_plan`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from fluxnode.atomicfile import atomic_write
from fluxnode.core.errors import ConfigError, DevnetError, FluxError
from fluxnode.node import devnet_plan as plan
from fluxnode.node.devnet_plan import DevnetOptions, ReadyInfo, Wallets
from fluxnode.node.devnet_procs import (
    Child,
    Children,
    check_port_free,
    child_env,
    free_port,
    one_line,
    reap_leftovers,
    say,
)

NODE_READY_S = 90.0
REPLICATED_S = 120.0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "devnet",
        help="run a local network: anvil, N nodes and two sample worlds (Ctrl-C stops it)",
    )
    p.add_argument("--nodes", type=int, default=plan.DEFAULT_NODES, help="hosting nodes (1..16)")
    p.add_argument("--dir", default=".flux-devnet", help="state directory (default ./.flux-devnet)")
    p.add_argument(
        "--port",
        type=int,
        default=plan.DEFAULT_PORT,
        help="gateway port of the first node; node i uses PORT+i-1 (0 = any free ports)",
    )
    p.add_argument(
        "--chain-port", type=int, default=plan.DEFAULT_CHAIN_PORT, help="anvil's RPC port (0 = any)"
    )
    p.add_argument("--anvil", metavar="PATH", help="anvil binary (default: the npm-installed one)")
    p.add_argument(
        "--seed",
        metavar="RPC_URL",
        help="only deploy and seed the anvil at RPC_URL, write DIR/deployment.json and "
        "DIR/wallets.json, and exit (docker/compose.yaml runs the rest as services)",
    )


def cmd_devnet(args: argparse.Namespace) -> int:
    if args.seed:
        return cmd_seed(Path(args.dir).absolute(), args.seed)
    opts = DevnetOptions.from_args(args.nodes, args.dir, args.port, args.chain_port, args.anvil)
    exe = _anvil_exe(opts)
    for flag, port in opts.fixed_ports():
        check_port_free(flag, port)
    opts.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    from fluxnode.node.datadir import run_lock

    with run_lock(opts.dir):
        devnet = Devnet(opts, exe)
        return devnet.run()


def _anvil_exe(opts: DevnetOptions) -> Path:
    if opts.anvil is not None:
        return opts.anvil
    from fluxnode.contracts import anvil_binary

    try:
        return anvil_binary()
    except FileNotFoundError:
        raise ConfigError(
            "anvil", "not installed: run scripts/setup-npm.sh contracts (or pass --anvil PATH)"
        ) from None


def seed_chain(rpc_url: str, wallets: Wallets) -> tuple[Any, int]:
    """Deploy the contracts to the anvil at `rpc_url` and seed it for `wallets`; returns the
    Deployment and the block by which all of it is mined."""
    from fluxnode.chain.deploy import deploy_over_http
    from fluxnode.chain.devnet_seed import seed_devnet

    say("deploying the contracts, minting land 1 to the owner and a ticket to the visitor")
    try:
        deployment = deploy_over_http(rpc_url, record_url=True)
        seeded = seed_devnet(
            rpc_url,
            deployment,
            owner_key=wallets.owner.key,
            visitor_key=wallets.visitor.key,
            extra_funded=(wallets.stranger.address,),
            land_token=plan.LAND_TOKEN,
        )
    except FluxError:
        raise
    except Exception as exc:  # web3/requests: name what failed, no traceback
        raise DevnetError(f"setting up the chain at {rpc_url} failed: {one_line(exc)}") from None
    return deployment, seeded.block


def cmd_seed(dir: Path, rpc_url: str) -> int:
    """`--seed RPC_URL`: the chain part alone, for docker/compose.yaml, where anvil and the
    nodes are services: seed that anvil, write DIR/deployment.json and DIR/wallets.json."""
    dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = dir / plan.WALLETS_FILE
    wallets = Wallets.from_json(path.read_text(), str(path)) if path.exists() else None
    wallets = wallets or Wallets.generate()
    out = dir / "deployment.json"
    if out.exists() and _still_seeded(rpc_url, out):
        say(f"{rpc_url} is seeded already (as {out} says): nothing to do")
        return 0
    deployment, _ = seed_chain(rpc_url, wallets)
    deployment.write(out)
    chain_id = deployment.chain_id
    text = wallets.to_json(chain_id=chain_id, rpc_url=rpc_url, land_token=plan.LAND_TOKEN)
    atomic_write(path, text.encode(), mode=0o600)
    print(json.dumps({"deployment": str(dir / "deployment.json"), "wallets": str(path)}))
    return 0


def _still_seeded(rpc_url: str, path: Path) -> bool:
    from fluxnode.chain.deploy import Deployment
    from fluxnode.chain.devnet_seed import is_deployed

    try:
        return is_deployed(rpc_url, Deployment.read(path))
    except Exception:  # an unreadable file or a chain that does not answer: seed afresh
        return False


class Devnet:
    def __init__(self, opts: DevnetOptions, anvil_exe: Path) -> None:
        self.opts = opts
        self.anvil_exe = anvil_exe
        self.children = Children(opts.dir)
        self.anvil: Any = None  # fluxnode.chain.anvil.AnvilProcess once started

    # -- the whole life --------------------------------------------------------------------------
    def run(self) -> int:
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        stopped_by: list[str] = []

        def on_signal(signum: int, frame: FrameType | None) -> None:
            # SIGTERM ends the devnet exactly as Ctrl-C does: unwind whatever step is running.
            stopped_by.append(signal.Signals(signum).name)
            raise KeyboardInterrupt

        for s in previous:
            signal.signal(s, on_signal)
        try:
            info = self._start()
            atomic_write(self.opts.dir / plan.STATE_FILE, info.to_json(os.getpid()).encode())
            print(info.summary(), flush=True)
            self._supervise()
        except KeyboardInterrupt:
            say(f"{(stopped_by or ['SIGINT'])[0]}: stopping every process")
            return 0
        finally:
            # A second Ctrl-C must not cut the clean-up short.
            for s in previous:
                signal.signal(s, signal.SIG_IGN)
            self._stop_all()
            with contextlib.suppress(FileNotFoundError):
                (self.opts.dir / plan.STATE_FILE).unlink()
            for s, handler in previous.items():
                signal.signal(s, handler)
        return 0  # pragma: no cover - _supervise returns only by raising

    def _start(self) -> ReadyInfo:
        opts = self.opts
        reap_leftovers(opts.dir)
        for stale in (opts.dir / "nodes", opts.dir / "logs"):
            shutil.rmtree(stale, ignore_errors=True)
        (opts.dir / "logs").mkdir(mode=0o700)
        wallets = self._wallets()
        rpc_url, chain_id, seeded_block, deployment = self._start_chain(wallets)
        atomic_write(
            opts.dir / plan.WALLETS_FILE,
            wallets.to_json(
                chain_id=chain_id, rpc_url=rpc_url, land_token=plan.LAND_TOKEN
            ).encode(),
            mode=0o600,
        )
        infos = self._start_nodes(rpc_url, deployment)
        worlds = self._publish(wallets)
        self._wait_replicated(worlds, seeded_block, str(infos[0]["gateway_url"]))
        processes = [{"name": c.name, "pid": c.proc.pid} for c in self.children.started]
        return ReadyInfo(
            dir=opts.dir,
            gateway_urls=[str(i["gateway_url"]) for i in infos],
            rpc_url=rpc_url,
            chain_id=chain_id,
            worlds=worlds,
            processes=processes,
        )

    def _supervise(self) -> None:
        """Until a signal: a node that exits is reported and the others keep running (losing a
        node is what replication is for, and stopping one is how a newcomer sees it); the chain
        exiting, or the last node, ends the devnet."""
        while True:
            for child in self.children.newly_exited():
                nodes_alive = sum(
                    c.proc.poll() is None for c in self.children.started if c.name != "anvil"
                )
                if plan.exit_is_fatal(child.name, nodes_alive):
                    raise DevnetError(child.describe_exit())
                say(f"{child.describe_exit()}; the other nodes keep running")
            time.sleep(0.5)

    # -- wallets and chain -----------------------------------------------------------------------
    def _wallets(self) -> Wallets:
        path = self.opts.dir / plan.WALLETS_FILE
        if path.exists():
            say(f"reusing the dev wallets in {path}")
            return Wallets.from_json(path.read_text(), str(path))
        return Wallets.generate()

    def _start_chain(self, wallets: Wallets) -> tuple[str, int, int, Any]:
        from fluxnode.chain.anvil import start_anvil

        say(f"starting anvil on {plan.HOST}:{self.opts.chain_port or 'any port'}")
        self.anvil = start_anvil(
            self.opts.chain_port, binary=self.anvil_exe, own_process_group=True
        )
        self.children.record(
            Child("anvil", self.anvil._proc, [str(self.anvil_exe), str(self.opts.chain_port)])
        )
        rpc_url = str(self.anvil.rpc_url)
        deployment, block = seed_chain(rpc_url, wallets)
        return rpc_url, deployment.chain_id, block, deployment

    # -- nodes -------------------------------------------------------------------------------------
    def _start_nodes(self, rpc_url: str, deployment: Any) -> list[dict[str, Any]]:
        """Start every node at once: node1's identity key and p2p port are chosen here, so the
        others can bootstrap off it before it runs (they redial with backoff until it listens)."""
        from fluxnode.p2p import generate_private_key, peer_id_from_private_key

        opts = self.opts
        names, ports = opts.names(), opts.gateway_ports()
        for name in names:
            d = opts.node_dir(name)
            d.mkdir(parents=True, mode=0o700)
            deployment.write(d / "deployment.json")
        key = generate_private_key()
        atomic_write(opts.node_dir(names[0]) / "identity.key", key, 0o600)
        first_peer = peer_id_from_private_key(key)
        p2p_port = free_port()
        for i, (name, port) in enumerate(zip(names, ports, strict=True)):
            listen = p2p_port if i == 0 else 0
            text = plan.node_config(rpc_url, port, opts.nodes, listen_port=listen)
            (opts.node_dir(name) / "config.toml").write_text(text)
        boot = ["--bootstrap", f"/ip4/{plan.HOST}/tcp/{p2p_port}/p2p/{first_peer}"]
        say(f"starting {len(names)} node{'s' if len(names) > 1 else ''} (logs in {opts.dir}/logs)")
        children = [self._start_node(name, boot if i else []) for i, name in enumerate(names)]
        infos = [self._wait_node_ready(child) for child in children]
        for child in children[1:]:
            self._poll(
                lambda c=child: first_peer in _peer_ids(opts.node_dir(c.name)),  # type: ignore[misc]
                f"{child.name} to connect to node1",
                NODE_READY_S,
            )
        return infos

    def _start_node(self, name: str, extra: list[str]) -> Child:
        d = self.opts.node_dir(name)
        log_path = self.opts.dir / "logs" / f"{name}.log"
        argv = [sys.executable, "-m", "fluxnode", "run", "--data-dir", str(d), *extra]
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env(),
                process_group=0,
            )
        child = Child(name, proc, ["run", "--data-dir", str(d)], log_path)
        self.children.record(child)
        return child

    def _wait_node_ready(self, child: Child) -> dict[str, Any]:
        node_json = self.opts.node_dir(child.name) / "node.json"
        found: dict[str, Any] = {}

        def ready() -> bool:
            if child.proc.poll() is not None:
                raise DevnetError(f"{child.describe_exit()} during start-up")
            with contextlib.suppress(FileNotFoundError, ValueError):
                found.update(json.loads(node_json.read_text()))
            return bool(found.get("addrs")) and bool(found.get("gateway_url"))

        self._poll(ready, f"{child.name} to start", NODE_READY_S)
        return found

    # -- worlds ------------------------------------------------------------------------------------
    def _publish(self, wallets: Wallets) -> dict[str, dict[str, str]]:
        node1 = self.opts.node_dir("node1")
        jobs = {
            "ticketed": ("gallery", ["--land", str(plan.LAND_TOKEN), "--visibility", "ticketed"]),
            "public": ("plaza", ["--slug", plan.PUBLIC_SLUG, "--visibility", "public"]),
        }
        env = child_env()
        env["FLUX_OWNER_KEY"] = "0x" + wallets.owner.key.hex()  # never on argv
        running: dict[str, tuple[Path, subprocess.Popen[str]]] = {}
        try:
            for label, (folder, flags) in jobs.items():
                path = plan.SAMPLE_WORLDS / folder
                say(f"publishing the {label} sample world {folder!r}")
                argv = [sys.executable, "-m", "fluxnode", "publish", "--data-dir", str(node1)]
                proc = subprocess.Popen(
                    [*argv, str(path), *flags],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
                running[label] = (path, proc)
            worlds: dict[str, dict[str, str]] = {}
            for label, (path, proc) in running.items():
                stdout, stderr = proc.communicate(timeout=120)
                if proc.returncode != 0:
                    raise DevnetError(f"publishing {path.name} failed: {one_line(stderr)}")
                answer = json.loads(stdout)
                name = json.loads((path / "world.json").read_text())["name"]
                worlds[label] = {"world_id": answer["world_id"], "cid": answer["cid"], "name": name}
            return worlds
        finally:
            for _, proc in running.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

    def _wait_replicated(
        self, worlds: dict[str, dict[str, str]], block: int, gateway_url: str
    ) -> None:
        """Until every node pins both worlds, lists them and has indexed the seeded chain, and
        the first node's directory shows their names (it reads them from the manifests)."""
        from fluxnode.storage.repo import Repo

        want = {w["cid"] for w in worlds.values()}
        ids = {w["world_id"]: w["cid"] for w in worlds.values()}
        names = self.opts.names()
        repos = {n: Repo(self.opts.node_dir(n)) for n in names}
        say(f"waiting until all {len(names)} nodes host both worlds and have indexed the chain")

        def pinned() -> dict[str, set[str]]:
            return {n: _world_pins(r) for n, r in repos.items()}

        def done() -> bool:
            self.children.check_alive()
            if plan.missing_replicas(pinned(), want):
                return False
            for n in names:
                status = _admin(self.opts.node_dir(n), "/v0/status")
                if int(status.get("chain", {}).get("last_indexed_block", -1)) < block:
                    return False
                listed = _admin(self.opts.node_dir(n), "/v0/worlds")["worlds"]
                if {w["world_id"]: w["cid"] for w in listed if w["world_id"] in ids} != ids:
                    return False
            cards = _http_json(f"{gateway_url}/api/worlds")["worlds"]
            return bool(
                sum(c["world_id"] in ids and c["summary"] == "ok" for c in cards) == len(ids)
            )

        self._poll(
            done,
            "every node to host both worlds",
            REPLICATED_S,
            detail=lambda: f"still missing {plan.missing_replicas(pinned(), want)}",
        )

    # -- processes ---------------------------------------------------------------------------------
    def _poll(
        self,
        predicate: Callable[[], bool],
        what: str,
        timeout: float,
        detail: Callable[[], str] | None = None,
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                shown = f" ({detail()})" if detail is not None else ""
                raise DevnetError(f"timed out after {timeout:g} s waiting for {what}{shown}")
            time.sleep(0.25)

    def _stop_all(self) -> None:
        """Nodes first (they may still talk to the chain while stopping), then anvil."""
        self.children.stop(last="anvil")
        if self.anvil is not None:
            self.anvil.stop()  # joins its output thread (and stops it if it was never recorded)


def _admin(data_dir: Path, path: str) -> dict[str, Any]:
    import asyncio

    from fluxnode.node.admin import admin_request

    return asyncio.run(admin_request(data_dir, "GET", path))


def _http_json(url: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:  # a loopback URL we built
        return dict(json.loads(response.read()))


def _peer_ids(data_dir: Path) -> set[str]:
    return {str(p["peer_id"]) for p in _admin(data_dir, "/v0/status").get("peers", [])}


def _world_pins(repo: Any) -> set[str]:
    return {p.cid for p in repo.pins.list("recursive") if (p.name or "").startswith("world:")}
