"""Helpers for the WebRTC mesh tests on real node processes: two `flux-node run` with gateways
and WebRTC on (ICE on loopback through `FLUX_TEST_LOOPBACK_ICE=1` there, and the same aioice
patch in the test process: `loopback_ice_here`), a world both know, and waits and matchers over
the visitors' meshes and moves."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import aioice.ice

from fluxnode.client import Event, PeerMoved
from tests.conftest import NodeFactory, clean_env
from tests.helpers import EXAMPLE_WORLD, publish, status, wait_for, worlds, write_owner_key
from tests.integration.session_visitors import Watched

LOOPBACK_ENV = {"FLUX_TEST_LOOPBACK_ICE": "1"}
MESH_WAIT = 30.0  # a guard: set-up takes about a second on a quiet machine


@contextlib.contextmanager
def loopback_ice_here() -> Iterator[None]:
    """aioice leaves 127.0.0.1 out of its host candidates, and tests have no other network."""
    saved = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = saved


def start_two_nodes(
    nodes: NodeFactory, tmp_path: Path, max_players: int = 16, **env: str
) -> tuple[str, str, str]:
    """Gateway URLs of two bootstrapped nodes with WebRTC on (`env` added to theirs), and a
    public world of `max_players` seats both know (data dirs `tmp_path/a` and `tmp_path/b`;
    the owner's key in `tmp_path/owner.key`)."""
    config = "[webrtc]\nenabled = true\nice_servers = []\n"
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.toml").write_text(config)
    node_env = clean_env(**LOOPBACK_ENV, **env)
    a = nodes.start("a", gateway=True, env=node_env)
    a_info = a.wait_ready()
    b = nodes.start("b", "--bootstrap", a_info["addrs"][0], gateway=True, env=node_env)
    b_info = b.wait_ready()
    world_dir = tmp_path / "world"
    shutil.copytree(EXAMPLE_WORLD, world_dir)
    manifest = json.loads((world_dir / "world.json").read_text())
    manifest["settings"]["maxPlayers"] = max_players
    (world_dir / "world.json").write_text(json.dumps(manifest))
    owner_key = tmp_path / "owner.key"
    write_owner_key(owner_key)
    world = publish(a.data_dir, world_dir, owner_key, slug="mesh")["world_id"]
    wait_for(
        lambda: world in {w["world_id"] for w in worlds(b.data_dir)},
        "the world on b",
        timeout=30,
        detail=lambda: worlds(b.data_dir),
    )
    return a_info["gateway_url"], b_info["gateway_url"], world


def node_transforms(*data_dirs: Path) -> dict[str, int]:
    """Transforms each local visitor's client sent its node, as `flux-node status` counts them."""
    counts: dict[str, int] = {}
    for d in data_dirs:
        counts.update(status(d)["sessions"]["hub"]["client_transforms"])
    return counts


async def until(
    condition: Callable[[], bool],
    what: str,
    within: float = MESH_WAIT,
    detail: Callable[[], object] | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not condition():
        if loop.time() > end:
            shown = f": {detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {within:g} s waiting for {what}{shown}")
        await asyncio.sleep(0.05)


def meshed(visitors: Sequence[Watched]) -> bool:
    ids = {w.v.visitor for w in visitors}
    return all(w.v.mesh_peers == ids - {w.v.visitor} for w in visitors)


def modes(visitors: Sequence[Watched]) -> dict[str, object]:
    return {
        w.label: (w.v.mesh.plan.mode if w.v.mesh.plan else None, len(w.v.mesh_peers))
        for w in visitors
    }


def mesh_detail(visitors: Sequence[Watched]) -> dict[str, object]:
    """What each visitor's mesh holds, for a failure message."""
    out: dict[str, object] = {}
    for w in visitors:
        m = w.v.mesh
        out[w.label] = {
            "mode": m.plan.mode if m.plan else None,
            "open": len(w.v.mesh_peers),
            "planned": len(m.plan.links) if m.plan else 0,
            "failed": len(m.failed),
            "stats": {k: n for k, n in m.stats.items() if k.startswith(("links", "signal_f"))},
        }
    return out


def moved_to(
    mover: Watched, target: tuple[float, float, float], direct: bool
) -> Callable[[Event], bool]:
    def match(e: Event) -> bool:
        return (
            isinstance(e, PeerMoved)
            and e.visitor == mover.v.visitor
            and e.transform is not None
            and e.direct == direct
            and max(abs(a - b) for a, b in zip(e.transform.position, target, strict=True)) < 1e-6
        )

    return match


async def everyone_sees_everyone_move(
    visitors: Sequence[Watched],
    step: float,
    direct: bool | Callable[[Watched, Watched], bool],
    rounds: int = 1,
) -> float:
    """Each visitor takes `rounds` steps of `step` at 10 Hz; every other sees where it ends
    (`direct`: peer to peer, else relayed by the nodes; a function of (mover, watcher) to say
    so pair by pair). The seconds the steps took."""
    marks = {w.label: w.mark() for w in visitors}
    targets: dict[str, tuple[float, float, float]] = {}
    loop = asyncio.get_running_loop()
    start = loop.time()
    for k in range(rounds):
        if k:
            await asyncio.sleep(0.1)
        for w in visitors:
            x, y, z = w.v.position or (0.0, 0.0, 5.0)
            targets[w.label] = (x + step, y, z)
            await w.v.move(targets[w.label])
    took = loop.time() - start
    for mover in visitors:
        for watcher in visitors:
            if watcher is not mover:
                how = direct(mover, watcher) if callable(direct) else direct
                await watcher.wait_for(
                    moved_to(mover, targets[mover.label], how),
                    f"{mover.label} moving {'directly' if how else 'relayed'}",
                    since=marks[watcher.label],
                )
    return took
