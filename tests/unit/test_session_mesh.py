"""The mesh rule (core/session/mesh.py): modes, proximity voice, failures, silence, epochs."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from fluxnode.core.session.frames import LINK_AUDIO, LINK_DATA, LINK_OFFER
from fluxnode.core.session.mesh import (
    AUDIO_MAX,
    MeshState,
    Vec,
    audio_pairs,
    pair,
    plan_links,
)

ALL = LINK_DATA | LINK_AUDIO


def ids(n: int) -> list[str]:
    return [f"v{i:02d}" for i in range(n)]


def line(n: int, step: float = 1.0) -> dict[str, Vec]:
    return {v: (i * step, 0.0, 0.0) for i, v in enumerate(ids(n))}


coords = st.floats(-200, 200, allow_nan=False, allow_infinity=False)
positions_st = st.dictionaries(
    st.text("abcdefghij", min_size=1, max_size=4),
    st.tuples(coords, coords, coords),
    max_size=30,
)


def check_symmetric(links: dict[str, dict[str, int]]) -> None:
    for a, row in links.items():
        for b, flags in row.items():
            back = links[b][a]
            assert flags & ~LINK_OFFER == back & ~LINK_OFFER, (a, b)
            assert bool(flags & LINK_OFFER) != bool(back & LINK_OFFER), (a, b)
            assert bool(flags & LINK_OFFER) == (a < b), (a, b)


def test_eight_visitors_form_a_full_mesh_offered_by_the_smaller_id() -> None:
    mode, links = plan_links(line(8))
    assert mode == "mesh"
    for a in ids(8):
        assert set(links[a]) == set(ids(8)) - {a}
        for b, flags in links[a].items():
            assert flags == (ALL | LINK_OFFER if a < b else ALL)


def test_nine_visitors_relay_with_proximity_audio_only() -> None:
    mode, links = plan_links(line(9))
    assert mode == "relay"
    assert all(
        flags & ~LINK_OFFER == LINK_AUDIO for row in links.values() for flags in row.values()
    )
    assert all(len(row) == 8 for row in links.values())  # nine: everyone hears everyone
    _, links = plan_links(line(10))
    # Ten on a line: the middle fills up with its nearest 8 and turns the rest away.
    assert set(links["v04"]) == {"v00", "v01", "v02", "v03", "v05", "v06", "v07", "v08"}
    assert all(len(row) <= AUDIO_MAX for row in links.values())


def test_a_failed_pair_is_unlinked_and_the_rest_of_the_mesh_stays() -> None:
    mode, links = plan_links(line(3), failed={pair("v02", "v00")})
    assert mode == "mesh"
    assert links == {
        "v00": {"v01": ALL | LINK_OFFER},
        "v01": {"v00": ALL, "v02": ALL | LINK_OFFER},
        "v02": {"v01": ALL},
    }


def test_a_silenced_visitor_gets_no_audio_and_relay_links_without_audio_go() -> None:
    _, links = plan_links(line(3), silenced={"v01"})
    assert links["v01"] == {"v00": LINK_DATA, "v02": LINK_DATA | LINK_OFFER}
    assert links["v00"]["v02"] == ALL | LINK_OFFER
    _, links = plan_links(line(10), silenced={"v01"})
    assert links["v01"] == {}
    assert "v01" not in links["v00"]


@given(positions_st)
def test_no_visitor_holds_more_than_eight_audio_links(positions: dict[str, Vec]) -> None:
    _, links = plan_links(positions)
    for row in links.values():
        assert sum(1 for f in row.values() if f & LINK_AUDIO) <= AUDIO_MAX


@given(positions_st, st.data())
def test_links_are_symmetric_with_exactly_one_offerer(
    positions: dict[str, Vec], data: st.DataObject
) -> None:
    names = sorted(positions)
    silenced = data.draw(st.sets(st.sampled_from(names))) if names else set()
    failed = set()
    if len(names) >= 2:
        pairs = st.tuples(st.sampled_from(names), st.sampled_from(names))
        failed = {pair(a, b) for a, b in data.draw(st.lists(pairs, max_size=5)) if a != b}
    _, links = plan_links(positions, silenced, failed)
    check_symmetric(links)
    for a, row in links.items():
        for b, flags in row.items():
            assert pair(a, b) not in failed
            if a in silenced or b in silenced:
                assert not flags & LINK_AUDIO


@given(positions_st, st.randoms(use_true_random=False))
def test_the_plan_is_a_function_of_the_inputs(
    positions: dict[str, Vec], rng: random.Random
) -> None:
    """Two nodes holding the same presence (in whatever order they learned it) agree."""
    items = list(positions.items())
    rng.shuffle(items)
    assert plan_links(dict(items)) == plan_links(positions)
    assert audio_pairs(dict(items)) == audio_pairs(positions)


def test_state_sends_each_local_visitor_its_plan_once_and_raises_epochs_on_change() -> None:
    state = MeshState()
    pos = line(2)
    sent = state.plans_to_send(pos, ["v00"], 0.0)
    assert [(v, p.epoch, p.mode, p.links) for v, p in sent] == [
        ("v00", 1, "mesh", {"v01": ALL | LINK_OFFER})
    ]
    assert state.plans_to_send(pos, ["v00"], 5.0) == []  # nothing changed
    state.fail("v01", "v00", 5.0)
    assert [(v, p.epoch, p.links) for v, p in state.plans_to_send(pos, ["v00"], 5.0)] == [
        ("v00", 2, {})
    ]
    assert state.plans_to_send(pos, ["v00"], 64.0) == []  # not yet checked again
    assert state.plans_to_send(pos, ["v00"], 65.5)[0][1].links == {"v01": ALL | LINK_OFFER}


def test_state_checks_positions_at_most_once_a_second_but_arrivals_at_once() -> None:
    state = MeshState()
    pos = line(10)
    state.plans_to_send(pos, ids(10), 0.0)
    moved = {**pos, "v09": (-1.0, 0.0, 0.0)}  # the far end walks to the other end
    assert state.plans_to_send(moved, ids(10), 0.5) == []
    assert state.plans_to_send(moved, ids(10), 1.0) != []
    arrived = {**moved, "v10": (0.0, 1.0, 0.0)}
    assert state.plans_to_send(arrived, ids(10), 1.1) != []


def test_small_moves_do_not_churn_proximity_links() -> None:
    """A crowd shuffling in place (under a metre) keeps its audio links."""
    state = MeshState()
    rng = random.Random(3)
    crowd: dict[str, Vec] = {v: (rng.uniform(0, 20), rng.uniform(0, 20), 0.0) for v in ids(20)}
    state.plans_to_send(crowd, ids(20), 0.0)
    for second in range(1, 30):
        jitter = {
            v: (x + rng.uniform(-0.4, 0.4), y + rng.uniform(-0.4, 0.4), z)
            for v, (x, y, z) in crowd.items()
        }
        assert state.plans_to_send(jitter, ids(20), float(second)) == []
    far = {**crowd, "v00": (500.0, 500.0, 0.0)}
    changed = dict(state.plans_to_send(far, ids(20), 40.0))
    assert "v00" in changed


def test_left_visitors_are_forgotten_and_a_rejoin_gets_its_plan_again() -> None:
    state = MeshState()
    state.plans_to_send(line(2), ["v00", "v01"], 0.0)
    sent = dict(state.plans_to_send(line(1), ["v00"], 0.1))
    assert sent["v00"].links == {} and sent["v00"].epoch == 2
    state.resend("v00")
    again = dict(state.plans_to_send(line(1), ["v00"], 0.2))
    assert again["v00"].epoch == 3 and again["v00"].links == {}
    assert state.linked("v01", "v00") == 0
