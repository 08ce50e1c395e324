"""`flux-node devnet` as a newcomer runs it: anvil, three nodes and the sample worlds come up,
the gateway shows them, Ctrl-C leaves no process behind, a second run on the same directory
works; and a start that fails (port taken, no anvil, a chain that never answers) says why in
one line and leaves nothing running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fluxnode.core.session.join import DENIED_NO_TICKET
from tests.conftest import FLUX, clean_env
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

READY = "Ctrl-C stops everything."


class Devnet:
    """One `flux-node devnet` process with its output in files; `kill_all` ends it and every
    child it recorded, by PID, whatever state the test left them in."""

    def __init__(self, tmp: Path, name: str, *args: str) -> None:
        self.dir = tmp / name
        self.out, self.err = tmp / f"{name}.out", tmp / f"{name}.err"
        argv = [FLUX, "devnet", "--dir", str(self.dir), *args]
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=err, env=clean_env(), stdin=subprocess.DEVNULL
            )
        self.seen: set[int] = set()

    def output(self) -> str:
        return self.out.read_text() + "\n--- stderr ---\n" + self.err.read_text()

    def wait_ready(self, timeout: float = 240.0) -> dict[str, Any]:
        def ready() -> bool:
            self.remember_children()
            if self.proc.poll() is not None:
                raise AssertionError(f"devnet exited with {self.proc.returncode}:\n{self.output()}")
            return READY in self.out.read_text()

        wait_for(ready, "the devnet's ready line", timeout=timeout, interval=0.5)
        self.remember_children()
        return dict(json.loads((self.dir / "devnet.json").read_text()))

    def remember_children(self) -> None:
        """Every PID the devnet recorded, and its live children as /proc shows them."""
        with_pids = self.dir / "pids.json"
        with contextlib.suppress(FileNotFoundError, ValueError):
            self.seen |= {int(c["pid"]) for c in json.loads(with_pids.read_text())["children"]}
        self.seen |= proc_children(self.proc.pid)

    def kill_all(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.seen:
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(pid, signal.SIGKILL)


def proc_children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out |= {int(p) for p in (task / "children").read_text().split()}
    return out


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it is dead)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


@pytest.fixture
def devnets(tmp_path: Path) -> Iterator[list[Devnet]]:
    started: list[Devnet] = []
    try:
        yield started
    finally:
        for d in started:
            d.kill_all()


def get(url: str, accept: str = "application/json") -> tuple[str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.headers.get("Content-Type", ""), response.read()


def stop(devnet: Devnet, sig: signal.Signals = signal.SIGINT) -> None:
    devnet.proc.send_signal(sig)
    assert devnet.proc.wait(60) == 0, devnet.output()
    wait_for(
        lambda: not any(alive(p) for p in devnet.seen),
        "every child of the devnet to be gone",
        timeout=15,
        detail=lambda: sorted(p for p in devnet.seen if alive(p)),
    )
    assert not (devnet.dir / "pids.json").exists()
    assert not (devnet.dir / "devnet.json").exists()


def test_devnet_serves_the_sample_worlds_and_ctrl_c_stops_everything(
    tmp_path: Path, devnets: list[Devnet]
) -> None:
    first = Devnet(tmp_path, "dn", "--nodes", "3", "--port", "0", "--chain-port", "0")
    devnets.append(first)
    info = first.wait_ready()
    gateway = info["gateway_url"]
    assert len(info["gateway_urls"]) == 3
    assert {p["name"] for p in info["processes"]} == {"anvil", "node1", "node2", "node3"}
    assert {p["pid"] for p in info["processes"]} <= first.seen
    out = first.out.read_text()
    for text in (gateway, *info["share_links"].values(), str(first.dir / "wallets.json")):
        assert text in out

    wallets_file = first.dir / "wallets.json"
    assert stat.S_IMODE(wallets_file.stat().st_mode) == 0o600
    wallets = json.loads(wallets_file.read_text())["wallets"]
    assert set(wallets) == {"owner", "visitor", "stranger"}

    kind, body = get(gateway + "/", accept="text/html")
    assert kind.startswith("text/html") and body.lstrip().lower().startswith(b"<!doctype html")
    cards = json.loads(get(gateway + "/api/worlds")[1])["worlds"]
    by_id = {c["world_id"]: c for c in cards}
    ticketed, public = info["worlds"]["ticketed"], info["worlds"]["public"]
    assert by_id[ticketed["world_id"]]["visibility"] == "ticketed"
    assert by_id[ticketed["world_id"]]["name"] == "Devnet Gallery"
    assert by_id[public["world_id"]]["visibility"] == "public"
    assert public["world_id"] == f"{wallets['owner']['address'].lower()}/plaza"
    share = json.loads(get(info["share_links"]["ticketed"])[1])
    assert share["record"]["cid"] == ticketed["cid"]
    assert share["manifest"]["name"] == "Devnet Gallery"
    kind, _ = get(info["share_links"]["public"], accept="text/html")
    assert kind.startswith("text/html")
    # Every node hosts both worlds (the devnet waited for it): the last one serves them too.
    last = json.loads(get(info["gateway_urls"][2] + "/api/worlds")[1])["worlds"]
    assert {c["world_id"] for c in last} >= {ticketed["world_id"], public["world_id"]}

    # The dev wallets work as the summary says: the visitor's ticket lets it into the gallery
    # (through another node), the stranger is refused and told why.
    def visit(role: str, node: str) -> subprocess.CompletedProcess[str]:
        key = tmp_path / f"{role}.key"
        key.write_text(wallets[role]["private_key"])
        key.chmod(0o600)
        argv = [FLUX, "visit", info["share_links"]["ticketed"], "--node", node]
        argv += ["--key-file", str(key), "--for", "1", "--no-reconnect", "--json"]
        return subprocess.run(argv, capture_output=True, text=True, timeout=90, env=clean_env())

    joined = visit("visitor", info["gateway_urls"][1])
    assert joined.returncode == 0, joined.stdout + joined.stderr
    refused = visit("stranger", gateway)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    denied = json.loads(refused.stdout.splitlines()[-1])
    assert (denied["event"], denied["reason"]) == ("denied", DENIED_NO_TICKET)
    assert denied["address"].lower() == wallets["stranger"]["address"].lower()

    stop(first)

    # Same directory again: chain and nodes start afresh, the dev wallets are kept.
    again = Devnet(tmp_path, "dn", "--nodes", "1", "--port", "0", "--chain-port", "0")
    devnets.append(again)
    info2 = again.wait_ready()
    assert json.loads(wallets_file.read_text())["wallets"] == wallets
    assert info2["worlds"]["public"]["world_id"] == public["world_id"]
    assert "reusing the dev wallets" in again.err.read_text()
    stop(again, signal.SIGTERM)


def run_devnet(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [FLUX, "devnet", "--dir", str(tmp_path / "dn"), "--chain-port", "0", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=clean_env())


def error_line(out: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines, out
    return lines[-1]


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run_devnet(tmp_path, "--port", str(port))
    assert out.returncode == 2, out.stderr
    assert error_line(out) == (
        f"flux-node: error: --port: 127.0.0.1:{port} is in use (another devnet or node?);"
        " pick another"
    )
    assert not (tmp_path / "dn").exists()


def test_a_missing_anvil_is_a_usage_error(tmp_path: Path) -> None:
    out = run_devnet(tmp_path, "--port", "0", "--anvil", str(tmp_path / "no-anvil"))
    assert out.returncode == 2, out.stderr
    assert error_line(out) == f"flux-node: error: --anvil: no anvil binary at {tmp_path}/no-anvil"
    assert not (tmp_path / "dn").exists()


def test_a_chain_that_never_answers_fails_the_start_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    # A fake anvil: says it listens on a port where nothing does, keeps a child of its own
    # (a grandchild of the devnet), and records both PIDs.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    fake = tmp_path / "anvil"
    fake.write_text(
        "#!/bin/sh\n"
        f"echo $$ > {tmp_path}/anvil.pid\n"
        f"sleep 300 & echo $! > {tmp_path}/sleep.pid\n"
        f"echo 'Listening on 127.0.0.1:{dead_port}'\n"
        "wait\n"
    )
    fake.chmod(0o755)
    out = run_devnet(tmp_path, "--port", "0", "--anvil", str(fake))
    pids = [int((tmp_path / f"{n}.pid").read_text()) for n in ("anvil", "sleep")]
    try:
        assert out.returncode == 1, out.stderr
        line = error_line(out)
        assert line.startswith(
            f"flux-node: error: setting up the chain at http://127.0.0.1:{dead_port} failed: "
        ), line
        wait_for(
            lambda: not any(alive(p) for p in pids),
            "the fake anvil and its child to be gone",
            timeout=15,
        )
        assert not (tmp_path / "dn" / "pids.json").exists()
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_seed_only_prepares_a_running_anvil_once(tmp_path: Path) -> None:
    """`--seed RPC_URL` (docker/compose.yaml's seed job): deployment and wallets files, and a
    second run against the same chain changes nothing."""
    from fluxnode.chain.anvil import start_anvil

    d = tmp_path / "seed"
    with start_anvil() as anvil:
        argv = [FLUX, "devnet", "--seed", anvil.rpc_url, "--dir", str(d)]
        first = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=clean_env())
        assert first.returncode == 0, first.stderr
        deployment, wallets = (d / "deployment.json").read_text(), (d / "wallets.json").read_text()
        assert stat.S_IMODE((d / "wallets.json").stat().st_mode) == 0o600
        second = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=clean_env())
        assert second.returncode == 0, second.stderr
        assert "is seeded already" in second.stderr
        assert (d / "deployment.json").read_text() == deployment
        assert (d / "wallets.json").read_text() == wallets
