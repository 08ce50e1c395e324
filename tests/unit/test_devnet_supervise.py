"""The devnet's supervisor once everything is up: a node that exits is reported and the rest
keeps running; the chain exiting ends the devnet. Children here are `sleep` processes."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from fluxnode.core.errors import DevnetError
from fluxnode.node import devnet
from fluxnode.node.devnet_plan import DevnetOptions, exit_is_fatal
from fluxnode.node.devnet_procs import Child
from tests.helpers import wait_for


def test_exit_is_fatal_for_the_chain_and_the_last_node_only() -> None:
    assert exit_is_fatal("anvil", nodes_alive=2)
    assert exit_is_fatal("node2", nodes_alive=0)
    assert not exit_is_fatal("node1", nodes_alive=1)


def test_a_node_that_stops_is_reported_and_the_chain_stopping_ends_the_devnet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said: list[str] = []
    monkeypatch.setattr(devnet, "say", said.append)
    opts = DevnetOptions(nodes=2, dir=tmp_path, port=0, chain_port=0)
    dn = devnet.Devnet(opts, tmp_path / "anvil")
    procs = {name: subprocess.Popen(["sleep", "60"]) for name in ("anvil", "node1", "node2")}
    for name, proc in procs.items():
        dn.children.record(Child(name, proc, ["sleep"]))
    failed: list[BaseException] = []

    def supervise() -> None:
        try:
            dn._supervise()
        except BaseException as exc:  # the one way out of the loop: kept for the assertions
            failed.append(exc)

    thread = threading.Thread(target=supervise, daemon=True)
    thread.start()
    try:
        procs["node1"].terminate()
        procs["node1"].wait()
        wait_for(lambda: said, "the supervisor to report node1", timeout=10)
        assert said == ["node1 exited with -15; the other nodes keep running"]
        assert thread.is_alive() and not failed
        procs["anvil"].terminate()
        thread.join(10)
        assert not thread.is_alive()
        assert len(failed) == 1 and isinstance(failed[0], DevnetError), failed
        assert str(failed[0]) == "anvil exited with -15"
        assert said == ["node1 exited with -15; the other nodes keep running"]  # once
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()
