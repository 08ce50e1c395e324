"""`flux-node visit` pieces that need no node: the walk starts where `Joined` put the visitor
(and after a reconnect, where the new `Joined` put it), and usage errors exit 2 before any
connection. The whole command against real nodes: tests/integration/test_visit_cli.py."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from fluxnode.core.errors import SessionLost
from fluxnode.core.session import frames as fr
from fluxnode.core.session.presence import Transform
from fluxnode.node.cli_visit import MOVE_HZ, _walk
from tests.conftest import run_cli
from tests.helpers import write_owner_key


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
