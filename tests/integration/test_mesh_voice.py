"""Proximity voice with real audio in a relay-mode instance, between Python visitors on two real
node processes (see `mesh_nodes`): ten visitors, three of them with voice (the rest voiceless,
to spare the CPU). Nine stand together, so every pair of them holds an audio link (each has
its 8 links); the tenth stands away, outside everyone's nearest 8, and has none. A speaker's
tone reaches a near listener on the other node, and the one away gets no audio link from it;
once the tenth walks up and a voiceless visitor walks off, it is among the speaker's nearest
8 and hears it."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from fluxnode.client.events import Error as ErrorEvent
from fluxnode.core.session.frames import LINK_AUDIO
from tests.conftest import NodeFactory
from tests.integration.mesh_nodes import start_two_nodes, until
from tests.integration.session_visitors import Watched, join_instance, stranger, visit

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("loopback_ice")]

SPAWN = (0.0, 0.0, 5.0)
AWAY = (30.0, 0.0, 5.0)  # every pair with it is longer than any pair of the nine


def around(i: int, radius: float = 2.5) -> tuple[float, float, float]:
    """A place on a circle round the spawn point (more than the rule's 1 m from it)."""
    a = 2 * math.pi * i / 7
    return (SPAWN[0] + radius * math.cos(a), SPAWN[1], SPAWN[2] + radius * math.sin(a))


async def walk(w: Watched, target: tuple[float, float, float], step: float = 3.0) -> None:
    """Walk to `target` at 10 Hz, at most `step` metres a step (nodes refuse faster moves)."""
    while True:
        here = w.v.position or SPAWN
        gap = math.dist(here, target)
        if gap <= step:
            await w.v.move(target)
            return
        f = step / gap
        await w.v.move(tuple(h + f * (t - h) for h, t in zip(here, target, strict=True)))
        await asyncio.sleep(0.1)


def voice_detail(crowd: list[Watched]) -> dict[str, object]:
    """Each visitor's planned audio peers (by label) and refusals, for a failure message."""
    label = {w.v.visitor: w.label for w in crowd}
    out: dict[str, object] = {}
    for w in crowd:
        plan = w.v.mesh.plan
        peers = (
            sorted(label.get(p, p[:8]) for p, f in plan.links.items() if f & LINK_AUDIO)
            if plan
            else None
        )
        errors = [e.message for e in w.seen if isinstance(e, ErrorEvent)]
        out[w.label] = {
            "mode": plan.mode if plan else None,
            "audio": peers,
            "errors": errors,
            "heard": {label.get(p, p[:8]): n for p, n in w.v.audio_frames.items()},
        }
    return out


def audio_link(w: Watched, peer: Watched) -> bool:
    plan = w.v.mesh.plan
    return plan is not None and bool(plan.links.get(peer.v.visitor, 0) & LINK_AUDIO)


async def test_a_speaker_is_heard_near_and_has_no_audio_link_beyond_its_nearest_eight(
    nodes: NodeFactory, tmp_path: Path, crowd: list[Watched]
) -> None:
    url_a, url_b, world = start_two_nodes(nodes, tmp_path)
    away = await visit(url_a, stranger(), world, "away", voice=True)
    crowd.append(away)
    instance = away.instance
    speaker = await join_instance(url_a, stranger(), world, "speaker", instance, voice=True)
    crowd.append(speaker)
    listener = await join_instance(url_b, stranger(), world, "listener", instance, voice=True)
    crowd.append(listener)
    quiet = [
        await join_instance(url_a if i % 2 else url_b, stranger(), world, f"q{i}", instance)
        for i in range(7)
    ]
    crowd.extend(quiet)
    await asyncio.gather(
        walk(away, AWAY),
        walk(listener, (SPAWN[0] + 1.5, SPAWN[1], SPAWN[2])),
        *(walk(q, around(i)) for i, q in enumerate(quiet)),
    )

    await until(
        lambda: (
            all(w.v.mesh.plan is not None and w.v.mesh.plan.mode == "relay" for w in crowd)
            and audio_link(speaker, listener)
            and audio_link(listener, speaker)
            and all(audio_link(speaker, q) for q in quiet)
            and not audio_link(speaker, away)
            and away.v.mesh.plan is not None
            and not away.v.mesh.plan.links
        ),
        "relay plans: the nine linked for audio, the one away with no link",
        detail=lambda: voice_detail(crowd),
    )
    s, li = speaker.v, listener.v
    # (While all stood at the spawn point, before the walks, the plans were any nine.)
    heard_away = away.v.audio_frames[s.visitor]
    await until(
        lambda: li.audio_frames[s.visitor] > 50 and s.audio_frames[li.visitor] > 50,
        "a second of audio each way between speaker and listener",
        detail=lambda: (s.audio_frames, li.audio_frames),
    )
    # Beyond the speaker's nearest 8: no link to it at all, so nothing of its voice arrives
    # (but what was in flight as the old link closed).
    assert speaker.v.visitor not in away.v.mesh.links and away.v.visitor not in s.mesh.links
    assert away.v.audio_frames[s.visitor] - heard_away <= 5

    # The one away walks up and a quiet one walks off: it is among the nearest 8 now.
    await asyncio.gather(walk(quiet[0], AWAY), walk(away, around(0)))
    await until(
        lambda: audio_link(speaker, away) and not audio_link(speaker, quiet[0]),
        "the speaker's plan to link the newcomer instead of the one who left",
        detail=lambda: voice_detail(crowd),
    )
    await until(
        lambda: away.v.audio_frames[s.visitor] > 50,
        "the speaker's voice at the newcomer",
        detail=lambda: away.v.audio_frames,
    )
