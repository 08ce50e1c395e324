"""`flux-node visit` pieces that need no node: the walk starts where `Joined` put the visitor
(and after a reconnect, where the new `Joined` put it), and usage errors exit 2 before any
connection. Against the node double in a real process: a visit prints its events as JSON
lines and exits 0, a denied one prints `denied` and exits 1. The whole command against real
nodes: tests/integration/test_visit_cli.py."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fluxnode.chain.keys import WalletKey
from fluxnode.core.errors import SessionLost
from fluxnode.core.session import frames as fr
from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.presence import Transform
from fluxnode.core.session.state import StateOp
from fluxnode.node.cli import main
from fluxnode.node.cli_visit import MOVE_HZ, _walk
from tests.conftest import FLUX, clean_env, run_cli
from tests.helpers import write_owner_key
from tests.unit.client_node_double import SPAWN, NodeDouble, running

SECRET = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = WalletKey.from_secret(bytes.fromhex(SECRET)).address


class FakeVisitor:
    """What `_walk` uses of a `Visitor`. With `rejoin`, after two moves the connection
    "drops": three moves fail as while reconnecting, then `rejoin` is the new `Joined`."""

    def __init__(self, joined: fr.Joined) -> None:
        self.joined: fr.Joined | None = joined
        self.closed_reason: str | None = None
        self.moves: list[tuple[float, ...]] = []
        self.rejoin: fr.Joined | None = None
        self.failures = 0
        self.until = 0

    async def move(self, position: tuple[float, ...], rotation: object, anim: str) -> None:
        if self.rejoin is not None and len(self.moves) == 2:
            self.failures += 1
            if self.failures == 3:
                self.joined, self.rejoin = self.rejoin, None
            raise SessionLost("the session is closed (reconnecting)")
        self.moves.append(tuple(position))
        if len(self.moves) >= self.until:
            self.closed_reason = "done"


def joined_at(x: float, y: float, z: float) -> fr.Joined:
    return fr.Joined("land:1", "inst-1", "node-a", 0, Transform((x, y, z)))


async def test_the_walk_starts_at_the_spawn_and_steps_slowly() -> None:
    v = FakeVisitor(joined_at(10.0, 1.0, -4.0))
    v.until = 5
    async with asyncio.timeout(5):
        await _walk(v)
    assert v.moves[0] == pytest.approx((10.0, 1.0, -4.0))
    for a, b in zip(v.moves, v.moves[1:], strict=False):
        assert math.dist(a, b) * MOVE_HZ < 5.0  # m/s: far below the node's 50 m/s limit


async def test_after_a_new_joined_the_walk_goes_on_from_there() -> None:
    v = FakeVisitor(joined_at(0.0, 0.0, 0.0))
    v.rejoin = joined_at(-7.0, 0.0, 3.0)
    v.until = 3
    async with asyncio.timeout(5):
        await _walk(v)
    assert v.failures == 3  # the walk went on through the failed moves
    assert v.moves[2] == pytest.approx((-7.0, 0.0, 3.0))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["land:1", "--node", "ftp://x"], "is not an http(s):// or ws(s):// URL"),
        (["land:1", "--node", "http://127.0.0.1:9", "--node", "nope"], "'nope'"),
        (["land:1"], "give --node URL"),
        (["not a world", "--node", "http://127.0.0.1:9"], "world"),
        (["land:1", "--node", "http://127.0.0.1:9", "--for", "0"], "--for must be"),
    ],
)
def test_usage_errors_exit_2_before_connecting(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    key = tmp_path / "visitor.key"
    write_owner_key(key)
    out = run_cli("visit", *argv, "--key-file", str(key), "--json", timeout=30)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "visitor.key"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    return path


def usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["visit", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plaza", "--node", "http://127.0.0.1:1"], "bad world id 'plaza'"),
        (["http://127.0.0.1:1/x/land:1"], "is not http(s)://host/w/<world_id>"),
        (["land:1", "--node", "http://127.0.0.1:1", "--for", "-1"], "--for must be a positive"),
        (["land:1", "--node", "http://127.0.0.1:1", "--say", " "], "--say: chat text is empty"),
    ],
)
def test_more_usage_errors_exit_2(
    argv: list[str], message: str, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage([*argv, "--key-file", str(key_file)], capsys)
    assert err.startswith("flux-node: error: ") and message in err


def test_key_file_problems_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = "http://127.0.0.1:1/w/land:1"
    missing = tmp_path / "none.key"
    assert "cannot open key file" in usage([link, "--key-file", str(missing)], capsys)
    loose = tmp_path / "loose.key"
    loose.write_text(SECRET)
    loose.chmod(0o644)
    assert "too open" in usage([link, "--key-file", str(loose)], capsys)
    junk = tmp_path / "junk.key"
    junk.write_text("not a key")
    junk.chmod(0o600)
    err = usage([link, "--key-file", str(junk)], capsys)
    assert "does not hold a 32-byte hex private key" in err and "not a key" not in err


def test_no_key_at_all_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLUX_VISITOR_KEY", raising=False)
    assert "FLUX_VISITOR_KEY" in usage(["http://127.0.0.1:1/w/land:1"], capsys)


async def visit(*argv: str) -> tuple[int, list[dict[str, object]], str]:
    proc = await asyncio.create_subprocess_exec(
        FLUX, "visit", *argv, "--json", "--no-reconnect",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env(),
    )  # fmt: skip
    try:
        async with asyncio.timeout(120):  # a guard: the double ends each visit
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, [json.loads(line) for line in out.decode().splitlines()], err.decode()


@pytest.mark.slow
async def test_a_visit_prints_its_events_and_a_denial_exits_1(
    key_file: Path, tmp_path: Path
) -> None:
    manifest = tmp_path / "world.json"
    manifest.write_text(json.dumps({
        "name": "Door world",
        "settings": {"maxPlayers": 8, "visibility": "public"},
        "objects": [{"id": "door", "type": "door", "properties": {"open": False},
                     "interactions": {"onClick": "toggle:open"},
                     "permissions": {"canModify": True}}],
    }))  # fmt: skip
    # The visit is another process, on the real clock: the double's verifier must be too.
    async with running(NodeDouble(clock=lambda: datetime.now(UTC))) as node:
        node.close_on = StateOp  # the visit ends when the node has our click
        bob = node.bob
        code, events, err = await visit(
            f"{node.url}/w/land:1", "--key-file", str(key_file),
            "--say", "hello", "--interact", "door", "--manifest", str(manifest),
        )  # fmt: skip
        assert code == 0, err
        kinds = [e["event"] for e in events]
        assert kinds[0] == "joined" and kinds[-1] == "closed"
        joined = events[0]
        assert (joined["world"], joined["instance"], joined["node"], joined["seat"]) == (
            "land:1", "inst-1", "node-a", 3)  # fmt: skip
        assert joined["address"] == ADDRESS
        assert {"event": "state", "object": "door", "prop": "open", "value": True,
                "address": bob.address} in events  # fmt: skip
        # The click was planned on Bob's open door (the snapshot was in when join returned).
        assert {"event": "state", "object": "door", "prop": "open", "value": False,
                "address": ADDRESS.lower()} in events  # fmt: skip
        assert {"event": "peer_joined", "visitor": bob.visitor, "address": bob.address} in events
        moved = next(e for e in events if e["event"] == "transform")
        assert (moved["address"], moved["position"]) == (bob.address, [1.0, 0.0, 1.0])
        chat = next(e for e in events if e["event"] == "chat")
        assert (chat["visitor"], chat["text"]) == (bob.visitor, "hi there")
        said = await node.next_of(ChatMessage)
        assert isinstance(said, ChatMessage) and said.text == "hello"

        node.close_on = Transform  # --move: the node closes on the first step
        code, events, err = await visit(
            f"{node.url}/w/land:1", "--key-file", str(key_file), "--move"
        )
        assert code == 0, err
        assert events[-1] == {"event": "closed", "reason": "the node closed the session"}
        step = await node.next_of(Transform)
        assert isinstance(step, Transform) and step.anim == "walk"
        assert step.position == pytest.approx(SPAWN.position)  # the walk starts at the spawn

        code, events, err = await visit("land:2", "--node", node.url, "--key-file", str(key_file))
        assert code == 1, err
        assert events == [{"event": "denied", "reason": "denied: no valid ticket for this world",
                           "address": ADDRESS}]  # fmt: skip
