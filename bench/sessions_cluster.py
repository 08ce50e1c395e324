"""Node processes for bench_sessions: `flux-node run` with its gateway on 127.0.0.1:0, a world
published with `flux-node publish` (the example world with maxPlayers raised), and the load
generator (`sessions_load.py`) run as its own process."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from harness import Bench

from fluxnode.node.admin import admin_request

ROOT = Path(__file__).resolve().parents[1]
FLUX = str(Path(sys.executable).with_name("flux-node"))
EXAMPLE = ROOT / "docs" / "examples" / "hello-world"
LOAD = str(Path(__file__).with_name("sessions_load.py"))


@dataclass
class Node:
    name: str
    data_dir: Path
    proc: subprocess.Popen[Any]
    info: dict[str, Any]

    @property
    def url(self) -> str:
        return str(self.info["gateway_url"])

    @property
    def pid(self) -> int:
        return self.proc.pid


def start_node(bench: Bench, d: Path, *, config: str = "", bootstrap: str | None = None) -> Node:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.toml").write_text(config)
    argv = [FLUX, "run", "--data-dir", str(d), "--listen", "/ip4/127.0.0.1/tcp/0"]
    argv += ["--gateway", "127.0.0.1:0"]
    if bootstrap:
        argv += ["--bootstrap", bootstrap]
    with (d.parent / f"{d.name}.log").open("w") as log:
        proc = bench.track(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"node {d.name} exited {proc.returncode}; see {d.parent}")
        try:
            info = json.loads((d / "node.json").read_text())
            return Node(d.name, d, proc, info)
        except (FileNotFoundError, ValueError):
            bench.check_time(f"node {d.name} to start")
            time.sleep(0.05)


def cluster(bench: Bench, t: Path, names: str, config: str = "") -> list[Node]:
    first = start_node(bench, t / names[0], config=config)
    rest = [
        start_node(bench, t / n, config=config, bootstrap=first.info["addrs"][0]) for n in names[1:]
    ]
    return [first, *rest]


def publish_world(bench: Bench, t: Path, node: Node, max_players: int) -> str:
    """Publish the example world (its door, maxPlayers raised) from `node`; the world id."""
    world = t / "world"
    shutil.copytree(EXAMPLE, world)
    manifest = json.loads((world / "world.json").read_text())
    manifest["settings"]["maxPlayers"] = max_players
    (world / "world.json").write_text(json.dumps(manifest, indent=2))
    owner = Account.create()
    key = t / "owner.key"
    key.write_text(owner.key.hex())
    key.chmod(0o600)
    argv = [FLUX, "publish", "--data-dir", str(node.data_dir), str(world), "--slug", "bench"]
    subprocess.run(
        [*argv, "--key-file", str(key)], capture_output=True, text=True, check=True, timeout=300
    )
    return f"{owner.address.lower()}/bench"


def wait_for_world(bench: Bench, nodes: list[Node], world_id: str) -> None:
    async def knows(node: Node) -> bool:
        worlds = (await admin_request(node.data_dir, "GET", "/v0/worlds"))["worlds"]
        return any(w.get("world_id") == world_id for w in worlds)

    for node in nodes:
        while not asyncio.run(knows(node)):
            bench.check_time(f"{node.name} to learn world {world_id}")
            time.sleep(0.2)


def run_loads(bench: Bench, specs: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
    """Load-generator processes, one per spec, their measuring windows started together; the
    JSON figures of each."""
    barrier = len(specs) > 1
    procs = [
        bench.track(
            subprocess.Popen(
                [sys.executable, LOAD, "load", json.dumps({**spec, "barrier": barrier})],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        for spec in specs
    ]
    deadline = time.monotonic() + timeout
    try:
        if barrier:
            for proc in procs:
                assert proc.stdout is not None
                line = proc.stdout.readline()
                if line.strip() != "READY":
                    err = proc.stderr.read() if proc.stderr else ""
                    raise SystemExit(f"load generator failed before its window:\n{err[-3000:]}")
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if proc.returncode != 0:
                raise SystemExit(f"load generator failed ({proc.returncode}):\n{err[-3000:]}")
            results.append(dict(json.loads(out.strip().splitlines()[-1])))
        return results
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"a load generator ran past {timeout:.0f} s") from None
    finally:
        for proc in procs:
            bench.stop(proc)


def start_echo(bench: Bench) -> tuple[subprocess.Popen[Any], str]:
    proc = bench.track(
        subprocess.Popen([sys.executable, LOAD, "echo"], stdout=subprocess.PIPE, text=True)
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"ws://127.0.0.1:{port}/echo"
