"""`flux-node visit` against real node processes: two nodes bootstrapped together host the
example world; visitors on each see each other arrive, move, chat (with their addresses) and
click the door; `--for` ends with `Leave` (the other sees `peer_left` at once), Ctrl-C too; a
node killed mid-visit sends its visitor to the fallback node (`reconnected`, no traceback); a
private world is `denied` with its reason (exit 1); a bad URL exits 2."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FLUX, NodeFactory, clean_env, run_cli
from tests.helpers import EXAMPLE_WORLD, publish, wait_for, worlds, write_owner_key

pytestmark = pytest.mark.slow

Event = dict[str, Any]


class VisitProc:
    """One `flux-node visit --json` process; its events are read as they come."""

    def __init__(self, name: str, args: list[str], started: list[VisitProc]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [FLUX, "visit", *args, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=clean_env(),
        )  # fmt: skip
        started.append(self)
        self.events: list[Event] = []
        self.bad_lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    self.bad_lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_event(self, what: str, match: Callable[[Event], bool], timeout: float = 30) -> Event:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if match(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"{self.name}: no {what} within {timeout:g} s; events: "
                        f"{[e for e in self.events if e.get('event') != 'transform'][-20:]}"
                        f"\nstderr: {self.stderr_now()}"
                    )
                self._cond.wait(min(left, 0.5))

    def finish(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def stderr_now(self) -> str:
        return "(running)" if self.proc.poll() is None else self.stderr()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def kind(name: str, **fields: Any) -> Callable[[Event], bool]:
    return lambda e: e.get("event") == name and all(e.get(k) == v for k, v in fields.items())


@pytest.fixture
def visits() -> Any:
    started: list[VisitProc] = []
    try:
        yield started
    finally:
        for v in started:
            v.stop()


def test_two_visitors_on_two_nodes(nodes: NodeFactory, tmp_path: Path, visits: Any) -> None:
    a = nodes.start("a", gateway=True)
    a_info = a.wait_ready()
    b = nodes.start("b", "--bootstrap", a_info["addrs"][0], gateway=True)
    b_info = b.wait_ready()
    url_a, url_b = a_info["gateway_url"], b_info["gateway_url"]
    owner_key = tmp_path / "owner.key"
    write_owner_key(owner_key)
    private = tmp_path / "private-world"
    shutil.copytree(EXAMPLE_WORLD, private)
    manifest = json.loads((private / "world.json").read_text())
    manifest["settings"]["visibility"] = "private"
    (private / "world.json").write_text(json.dumps(manifest))
    world = publish(a.data_dir, EXAMPLE_WORLD, owner_key, slug="hello")["world_id"]
    secret = publish(a.data_dir, private, owner_key, slug="secret")["world_id"]
    wait_for(lambda: {world, secret} <= {w["world_id"] for w in worlds(b.data_dir)},
             "both worlds to reach B", timeout=30, detail=lambda: worlds(b.data_dir))  # fmt: skip
    keys = [tmp_path / f"visitor{n}.key" for n in range(4)]
    for key in keys:
        write_owner_key(key)

    one = VisitProc("one", [world, "--node", url_a, "--key-file", str(keys[0]), "--move",
                            "--say", "hello from one"], visits)  # fmt: skip
    joined_one = one.wait_event("joined", kind("joined"))
    assert joined_one["spawn"] == [0.0, 0.0, 5.0]  # hello-world's spawn point
    two = VisitProc("two", [world, "--node", url_b, "--key-file", str(keys[1]), "--move",
                            "--say", "hello from two", "--interact", "door-1", "--for", "8"],
                    visits)  # fmt: skip
    joined_two = two.wait_event("joined", kind("joined"))
    assert joined_two["instance"] == joined_one["instance"]  # one instance across both nodes
    addr_one, addr_two = joined_one["address"], joined_two["address"]
    vis_one, vis_two = joined_one["visitor"], joined_two["visitor"]

    # Each sees the other arrive (with its address) and move, chat and click.
    one.wait_event("peer_joined two", kind("peer_joined", visitor=vis_two, address=addr_two))
    one.wait_event("two's transform", kind("transform", visitor=vis_two, address=addr_two))
    one.wait_event("two's chat", kind("chat", text="hello from two", address=addr_two))
    one.wait_event(
        "the door opened by two",
        kind("state", object="door-1", prop="open", value=True, address=addr_two),
    )
    two.wait_event("peer_joined one", kind("peer_joined", visitor=vis_one, address=addr_one))
    two.wait_event("one's transform", kind("transform", visitor=vis_one, address=addr_one))
    two.wait_event("one's chat (history)", kind("chat", text="hello from one", address=addr_one))
    # No refusal of the walk: it starts at the spawn point the node gave.
    assert not [e for e in one.events + two.events if e.get("event") == "error"]

    # --for ends with Leave: one sees two leave long before the 30 s expiry.
    assert two.finish() == 0, two.stderr()
    assert two.events[-1] == {"event": "closed", "reason": "the visit's time is up"}
    left_at = time.monotonic()
    one.wait_event("two leaving", kind("peer_left", visitor=vis_two, address=addr_two),
                   timeout=10)  # fmt: skip
    print(f"peer_left seen {time.monotonic() - left_at:.2f} s after two exited")

    # A node killed mid-visit: its visitor moves to the fallback node, no traceback.
    three = VisitProc("three", [world, "--node", url_b, "--node", url_a, "--key-file",
                                str(keys[2]), "--move", "--for", "25"], visits)  # fmt: skip
    three.wait_event("joined on B", kind("joined", node_url=url_b))
    os.kill(b.pid, signal.SIGKILL)
    b.proc.wait()
    moved = three.wait_event("reconnected to A", kind("reconnected", node_url=url_a))
    assert moved["world"] == world and moved["instance"] == joined_one["instance"]

    # Ctrl-C ends a run without --for, with Leave: three sees one leave.
    os.kill(one.proc.pid, signal.SIGINT)
    assert one.finish() == 0
    assert one.events[-1] == {"event": "closed", "reason": "interrupted"}
    three.wait_event("one leaving", kind("peer_left", visitor=vis_one), timeout=10)
    assert three.finish(40) == 0
    assert "Traceback" not in three.stderr()
    assert three.events[-1] == {"event": "closed", "reason": "the visit's time is up"}

    # A private world: denied with its reason, exit 1.
    four = VisitProc("four", [secret, "--node", url_a, "--key-file", str(keys[3])], visits)
    assert four.finish() == 1
    denied = [e for e in four.events if e["event"] == "denied"]
    assert len(denied) == 1 and denied[0]["reason"] == "denied: this world is private"
    assert "Traceback" not in four.stderr()

    # A bad URL: a usage error, exit 2, before any connection.
    out = run_cli("visit", world, "--node", "http://127.0.0.1:notaport", "--key-file",
                  str(keys[3]), "--json")  # fmt: skip
    assert out.returncode == 2 and "bad port" in out.stderr and "Traceback" not in out.stderr
    a.terminate()
