"""WebRTC meshes between Python visitors on real node processes (two `flux-node run` with
gateways, ICE on loopback through `FLUX_TEST_LOOPBACK_ICE=1` there and the same aioice patch
here): eight visitors in one instance across both nodes form a full mesh and move peer to peer
while the nodes get one transform a second from each; a ninth switches the instance to relay
and everyone still sees everyone move; when it leaves the mesh forms again. Voice: two
visitors on two nodes hear each other's tone, and a mute stops it."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import aioice.ice
import pytest
from eth_account import Account

from fluxnode.client import Event, PeerMoved
from fluxnode.client.events import Error as ErrorEvent
from fluxnode.client.rtc_link import CONNECT_TIMEOUT
from fluxnode.core.session.frames import LINK_AUDIO
from tests.conftest import NodeFactory, clean_env
from tests.helpers import EXAMPLE_WORLD, publish, status, wait_for, worlds, write_owner_key
from tests.integration.session_visitors import Watched, close_all, join_instance, stranger, visit

pytestmark = pytest.mark.slow

LOOPBACK_ENV = {"FLUX_TEST_LOOPBACK_ICE": "1"}
MESH_WAIT = 30.0  # a guard: set-up takes about a second on a quiet machine


@pytest.fixture(autouse=True)
def loopback_ice() -> Iterator[None]:
    # aioice leaves 127.0.0.1 out of its host candidates, and tests have no other network.
    saved = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    yield
    aioice.ice.get_host_addresses = saved


@pytest.fixture
def two_nodes(nodes: NodeFactory, tmp_path: Path) -> tuple[str, str, str]:
    """Gateway URLs of two bootstrapped nodes with WebRTC on, and a public world (16 seats)
    both know (their data dirs are `tmp_path/a` and `tmp_path/b`)."""
    config = "[webrtc]\nenabled = true\nice_servers = []\n"
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.toml").write_text(config)
    env = clean_env(**LOOPBACK_ENV)
    a = nodes.start("a", gateway=True, env=env)
    a_info = a.wait_ready()
    b = nodes.start("b", "--bootstrap", a_info["addrs"][0], gateway=True, env=env)
    b_info = b.wait_ready()
    world_dir = tmp_path / "world"
    shutil.copytree(EXAMPLE_WORLD, world_dir)
    manifest = json.loads((world_dir / "world.json").read_text())
    manifest["settings"]["maxPlayers"] = 16
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


@pytest.fixture
async def crowd() -> AsyncIterator[list[Watched]]:
    visitors: list[Watched] = []
    yield visitors
    await close_all(visitors)


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
    visitors: Sequence[Watched], step: float, direct: bool, rounds: int = 1
) -> float:
    """Each visitor takes `rounds` steps of `step` at 10 Hz; every other sees where it ends
    (`direct`: peer to peer, else relayed by the nodes). The seconds the steps took."""
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
                how = "directly" if direct else "relayed"
                await watcher.wait_for(
                    moved_to(mover, targets[mover.label], direct),
                    f"{mover.label} moving {how}",
                    since=marks[watcher.label],
                )
    return took


async def test_eight_visitors_mesh_a_ninth_makes_it_relay_and_leaving_meshes_again(
    two_nodes: tuple[str, str, str], crowd: list[Watched], tmp_path: Path
) -> None:
    url_a, url_b, world = two_nodes
    crowd.append(await visit(url_a, stranger(), world, "v0"))
    instance = crowd[0].instance
    for i in range(1, 8):
        url = url_a if i < 4 else url_b
        crowd.append(await join_instance(url, stranger(), world, f"v{i}", instance))
    await until(
        lambda: meshed(crowd), "8 visitors to form a full mesh", detail=lambda: modes(crowd)
    )

    # Ten moves each at 10 Hz: all reach the peers directly, the nodes get 1 a second.
    dirs = (tmp_path / "a", tmp_path / "b")
    loop = asyncio.get_running_loop()
    at_nodes = await asyncio.to_thread(node_transforms, *dirs)
    began = loop.time()
    took = await everyone_sees_everyone_move(crowd, 0.05, direct=True, rounds=10)
    now_at_nodes = await asyncio.to_thread(node_transforms, *dirs)
    # At most one a second while we counted (the last step reaches the node a second after
    # the first at the latest), never the ten steps each visitor took.
    window = loop.time() - began
    got = {w.label: now_at_nodes[w.v.visitor] - at_nodes[w.v.visitor] for w in crowd}
    assert all(n <= int(window) + 2 and n < 10 for n in got.values()), (took, window, got)

    ninth = await join_instance(url_b, stranger(), world, "v8", instance)
    crowd.append(ninth)
    await until(
        lambda: all(
            w.v.mesh.plan is not None and w.v.mesh.plan.mode == "relay" and not w.v.mesh_peers
            for w in crowd
        ),
        "every plan to switch to relay with 9 visitors",
        detail=lambda: modes(crowd),
    )
    at_nodes = await asyncio.to_thread(node_transforms, *dirs)
    await everyone_sees_everyone_move(crowd, 0.05, direct=False, rounds=3)
    now_at_nodes = await asyncio.to_thread(node_transforms, *dirs)
    assert all(now_at_nodes[w.v.visitor] - at_nodes[w.v.visitor] == 3 for w in crowd)

    crowd.remove(ninth)
    await ninth.close()
    await until(lambda: meshed(crowd), "the 8 left to mesh again", detail=lambda: modes(crowd))
    await everyone_sees_everyone_move(crowd, 0.1, direct=True)


async def test_two_visitors_on_two_nodes_hear_each_other_and_mute_stops_it(
    two_nodes: tuple[str, str, str], crowd: list[Watched]
) -> None:
    url_a, url_b, world = two_nodes
    alice = await visit(url_a, stranger(), world, "alice", voice=True)
    crowd.append(alice)
    bob = await join_instance(url_b, stranger(), world, "bob", alice.instance, voice=True)
    crowd.append(bob)
    a, b = alice.v, bob.v
    await until(
        lambda: a.audio_frames[b.visitor] > 50 and b.audio_frames[a.visitor] > 50,
        "a second of audio each way",
        detail=lambda: (a.audio_frames, b.audio_frames),
    )
    a.mute()
    at_mute, from_bob = b.audio_frames[a.visitor], a.audio_frames[b.visitor]
    # A second of Bob's audio reaches Alice meanwhile; of Alice's, only what was in flight.
    await until(lambda: a.audio_frames[b.visitor] > from_bob + 50, "Bob's audio after the mute")
    assert b.audio_frames[a.visitor] - at_mute <= 5
    a.unmute()
    await until(lambda: b.audio_frames[a.visitor] > at_mute + 25, "Alice's audio after unmute")


async def test_the_owner_silences_a_visitor_for_everyone_and_a_stranger_cannot(
    two_nodes: tuple[str, str, str], crowd: list[Watched], tmp_path: Path
) -> None:
    url_a, url_b, world = two_nodes
    owner_account = Account.from_key((tmp_path / "owner.key").read_text().strip())
    owner = await visit(url_a, owner_account, world, "owner", voice=True)
    crowd.append(owner)
    bob = await join_instance(url_b, stranger(), world, "bob", owner.instance, voice=True)
    crowd.append(bob)
    carol = await join_instance(url_b, stranger(), world, "carol", owner.instance, voice=True)
    crowd.append(carol)
    o, b = owner.v, bob.v
    await until(lambda: o.audio_frames[b.visitor] > 25, "Bob's voice at the owner")

    # Carol is not the owner: her node refuses her silence of the owner; nothing changes.
    since = len(carol.seen)
    await carol.v.silence(o.visitor)
    refusal = await carol.wait_for(
        lambda e: isinstance(e, ErrorEvent) and e.code == "silence_refused",
        "the refusal of Carol's silence",
        since=since,
    )
    assert isinstance(refusal, ErrorEvent)
    heard = o.audio_frames[b.visitor]
    await until(lambda: o.audio_frames[b.visitor] > heard + 25, "Bob's voice goes on")

    # The owner's silence crosses to Bob's node: both plans drop his audio, his voice stops.
    await o.silence(b.visitor)
    await until(
        lambda: all(
            v.mesh.plan is not None
            and b.visitor in v.mesh.plan.silenced
            and not v.mesh.plan.links.get(b.visitor if v is not b else o.visitor, 0) & LINK_AUDIO
            for v in (o, b)
        ),
        "plans on both nodes silencing Bob",
        detail=lambda: (o.mesh.plan, b.mesh.plan),
    )
    # A silenced visitor is out of the voice mesh both ways; Carol and the owner still talk.
    at_silence, to_bob = o.audio_frames[b.visitor], b.audio_frames[o.visitor]
    from_carol = o.audio_frames[carol.v.visitor]
    await until(lambda: o.audio_frames[carol.v.visitor] > from_carol + 50, "Carol's voice")
    assert o.audio_frames[b.visitor] - at_silence <= 5
    assert b.audio_frames[o.visitor] - to_bob <= 5
    assert o.visitor not in (o.mesh.plan.silenced if o.mesh.plan else ())

    await o.silence(b.visitor, on=False)
    await until(lambda: o.audio_frames[b.visitor] > at_silence + 25, "Bob's voice back")


async def test_a_visitor_s_transforms_to_its_node_ride_the_node_channel(
    two_nodes: tuple[str, str, str], crowd: list[Watched], tmp_path: Path
) -> None:
    url_a, url_b, world = two_nodes
    rider = await visit(url_a, stranger(), world, "rider", node_channel=True)
    crowd.append(rider)
    crowd.append(await join_instance(url_b, stranger(), world, "watcher", rider.instance))
    await until(lambda: rider.v.mesh.node_channel_open and meshed(crowd),
                "the node channel to open and the pair to mesh")  # fmt: skip
    before = (await asyncio.to_thread(status, tmp_path / "a"))["sessions"]["rtc"]["frames_in"]
    sent = rider.v.mesh.stats["channel_sent_Transform"]
    await everyone_sees_everyone_move(crowd, 0.1, direct=True)
    # The watcher got it peer to peer; the node its one-a-second copy, over the channel.
    assert rider.v.mesh.stats["channel_sent_Transform"] == sent + 1
    await until(lambda: status(tmp_path / "a")["sessions"]["rtc"]["frames_in"] > before,
                "node a to take the transform from the channel")  # fmt: skip


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


async def relay_spell(crowd: list[Watched], ninth: Watched, spell: int, hold: float) -> None:
    """`ninth` is one of the nine in `crowd`: all of them go to relay; `hold` seconds later it
    leaves and the eight must mesh again and move peer to peer."""
    await until(
        lambda: all(
            w.v.mesh.plan is not None and w.v.mesh.plan.mode == "relay" and not w.v.mesh_peers
            for w in crowd
        ),
        f"relay mode with nine (spell {spell})",
        detail=lambda: mesh_detail(crowd),
    )
    await asyncio.sleep(hold)
    crowd.remove(ninth)
    await ninth.close()
    await until(
        lambda: meshed(crowd),
        f"the 8 to mesh again after relay spell {spell}",
        detail=lambda: mesh_detail(crowd),
    )
    await everyone_sees_everyone_move(crowd, 0.05, direct=True)


async def test_the_mesh_forms_again_after_each_of_five_relay_spells(
    two_nodes: tuple[str, str, str], crowd: list[Watched]
) -> None:
    """8 -> 9 -> 8, five times. The first time, the links of the one who makes it nine are made
    for a relay plan (audio only: nothing, for visitors without voice), the nine stay longer
    than a link may take to connect, and one of the first eight leaves."""
    url_a, url_b, world = two_nodes
    crowd.append(await visit(url_a, stranger(), world, "v0"))
    instance = crowd[0].instance
    for i in range(1, 7):
        url = url_a if i < 4 else url_b
        crowd.append(await join_instance(url, stranger(), world, f"v{i}", instance))
    first = await join_instance(url_b, stranger(), world, "n0", instance)
    crowd.append(first)
    crowd.append(await join_instance(url_b, stranger(), world, "v7", instance))
    await relay_spell(crowd, first, 0, hold=CONNECT_TIMEOUT + 1)  # a link not up by then fails
    for spell in range(1, 5):
        url = url_b if spell % 2 else url_a
        ninth = await join_instance(url, stranger(), world, f"n{spell}", instance)
        crowd.append(ninth)
        await relay_spell(crowd, ninth, spell, hold=0.0)
    assert all(w.v.mesh.stats["links_failed"] == 0 for w in crowd), mesh_detail(crowd)
