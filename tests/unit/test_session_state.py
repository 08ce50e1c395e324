"""World state: LWW registers with HLCs, permission checks on every replica, convergence."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxnode.core.errors import OpRejected
from fluxnode.core.session.actions import Move, SetTo, Toggle, action_problem, parse_action
from fluxnode.core.session.hlc import Hlc, HlcClock
from fluxnode.core.session.state import OpKind, StateOp, WorldState, delete_op, move_op
from fluxnode.core.world import actions as world_actions
from fluxnode.core.world import parse_manifest

ALICE = "0x" + "a" * 40
BOB = "0x" + "b" * 40
OWNER = "0x" + "c" * 40
NOW = 1_000_000.0

MANIFEST = parse_manifest(
    json.dumps(
        {
            "name": "Test",
            "settings": {"maxPlayers": 8, "visibility": "public"},
            "objects": [
                {
                    "id": "door",
                    "type": "door",
                    "properties": {"open": False},
                    "interactions": {"onClick": "toggle:open", "onEnter": 'set:color="red"'},
                    "permissions": {"canModify": True},
                },
                {"id": "statue", "type": "cube", "interactions": {"onClick": "toggle:lit"}},
                {
                    "id": "crate",
                    "type": "cube",
                    "interactions": {"onClick": "move", "onInteract": "openCrateScript"},
                    "permissions": {"canMove": True, "canDelete": True},
                },
                {
                    "id": "throne",
                    "type": "cube",
                    "interactions": {"onClick": "toggle:lit"},
                    "permissions": {"canModify": True, "canMove": True, "owner": "0x" + "C" * 40},
                },
            ],
        }
    ).encode()
)


def sign(op: StateOp) -> StateOp:
    return dataclasses.replace(op, signature=b"ok:" + op.signing_bytes()[:8])


def verify(op: StateOp) -> bool:
    return op.signature == b"ok:" + op.signing_bytes()[:8]


def replica() -> WorldState:
    return WorldState(MANIFEST, verify)


def hlc(ms: int, actor: str = "a", counter: int = 0) -> Hlc:
    return Hlc(ms, counter, actor)


def door(value: object, ms: int, author: str = ALICE, actor: str = "a") -> StateOp:
    return sign(StateOp("door", OpKind.SET, "open", value, "onClick", hlc(ms, actor), author))  # type: ignore[arg-type]


# --- actions ----------------------------------------------------------------------------------


def test_action_grammar() -> None:
    assert parse_action("toggle:open") == Toggle("open")
    assert parse_action('set:color="red"') == SetTo("color", "red")
    assert parse_action("set:n=[1,2]") == SetTo("n", [1, 2])
    assert parse_action("move") == Move()
    assert parse_action("openCrateScript") is None  # a script name: viewers only
    assert parse_action(None) is None
    assert action_problem("toggle:model") == "property 'model' is reserved"
    assert action_problem("toggle:9x") is not None
    assert action_problem("set:x") == "set action must read set:<prop>=<json>"
    assert action_problem("set:x=NaN") == "set value 'NaN' is not valid JSON"
    assert action_problem("set:x={") == "set value '{' is not valid JSON"
    assert action_problem("set:x=" + "[" * 5 + "]" * 5) == "set value must nest at most 4 levels"
    with pytest.raises(ValueError, match="reserved"):
        parse_action("toggle:position")


def test_the_session_uses_the_grammar_the_manifest_validator_checks() -> None:
    assert parse_action is world_actions.parse_action
    assert action_problem is world_actions.action_problem
    assert (Toggle, SetTo, Move) == (world_actions.Toggle, world_actions.SetTo, world_actions.Move)


# --- HLC ----------------------------------------------------------------------------------------


def test_hlc_ticks_after_everything_seen_even_with_a_slow_wall_clock() -> None:
    clock = HlcClock("a")
    t1 = clock.tick(10.0)
    assert clock.tick(10.0) > t1  # same millisecond: the counter moves
    clock.observe(Hlc(99_000, 7, "z"))  # a peer is ahead of us
    t3 = clock.tick(10.0)
    assert (t3.wall_ms, t3.counter) == (99_000, 8)
    assert clock.tick(200.0) == Hlc(200_000, 0, "a")


# --- checks -------------------------------------------------------------------------------------


def test_toggle_applies_and_plan_flips_the_current_value() -> None:
    s = replica()
    op = s.plan_interaction("door", "onClick", ALICE, hlc(1))
    assert op is not None
    assert op.value is True
    assert s.receive_op(sign(op), NOW)
    assert s.value("door", "open") is True
    again = s.plan_interaction("door", "onClick", ALICE, hlc(2))
    assert again is not None
    assert again.value is False
    assert s.plan_interaction("crate", "onInteract", ALICE, hlc(3)) is None


@pytest.mark.parametrize(
    ("op", "reason"),
    [
        (dataclasses.replace(door(True, 1), signature=b"x"), "bad signature"),
        (door(1, 1), "toggle:open writes a boolean"),
        (sign(StateOp("door", OpKind.SET, "color", "blue", "onEnter", hlc(1), ALICE)),
         'set:color writes "red"'),
        (sign(StateOp("door", OpKind.SET, "open", True, "onEnter", hlc(1), ALICE)),
         "onEnter of 'door' does not write 'open'"),
        (sign(StateOp("door", OpKind.SET, "open", True, None, hlc(1), ALICE)),
         "must name its trigger"),
        (sign(StateOp("statue", OpKind.SET, "lit", True, "onClick", hlc(1), ALICE)),
         "'statue' cannot be modified"),
        (sign(move_op("door", [0, 0, 0], ALICE, hlc(1))), "'door' cannot be moved"),
        (sign(delete_op("door", ALICE, hlc(1))), "'door' cannot be deleted"),
        (sign(move_op("crate", [0, 1e9, 0], ALICE, hlc(1))), "position.y = 1e+09 is outside"),
        (move_op("crate", [0, float("nan"), 0], ALICE, hlc(1)), "position.y must be finite"),
        (sign(StateOp("throne", OpKind.SET, "lit", True, "onClick", hlc(1), ALICE)),
         f"'throne' belongs to {OWNER}"),
        (sign(StateOp("ghost", OpKind.SET, "x", True, "onClick", hlc(1), ALICE)),
         "no object 'ghost'"),
        (door(True, 1, author="0xABC"), "lower-case 0x address"),
        (door(True, int((NOW + 11) * 1000)), "dated in the future"),
        (door(True, -1), "clock wall time out of range"),
    ],
)  # fmt: skip
def test_bad_ops_are_rejected_with_the_reason_and_change_nothing(op: StateOp, reason: str) -> None:
    s = replica()
    with pytest.raises(OpRejected, match=re.escape(reason)):
        s.receive_op(op, NOW)
    assert s.snapshot() == []
    assert s.seq == 0
    assert s.value("door", "open") is False


def test_owner_may_act_on_an_owned_object() -> None:
    s = replica()
    op = sign(StateOp("throne", OpKind.SET, "lit", True, "onClick", hlc(1), OWNER))
    assert s.receive_op(op, NOW)
    assert s.receive_op(sign(move_op("throne", [1, 2, 3], OWNER, hlc(2))), NOW)
    assert s.value("throne", "position") == [1.0, 2.0, 3.0]


def test_last_writer_wins_with_deterministic_tie_break() -> None:
    a, b = replica(), replica()
    early, late = door(True, 5, actor="a"), door(False, 6, actor="a")
    tie_a, tie_b = door(True, 7, actor="a"), door(False, 7, actor="b")
    for op in (late, early, tie_a, tie_b):
        a.receive_op(op, NOW)
    for op in (tie_b, early, tie_a, late):
        b.receive_op(op, NOW)
    assert a.value("door", "open") is b.value("door", "open") is False  # actor "b" > "a"
    assert a.snapshot() == b.snapshot()


def test_snapshot_and_ops_since_for_late_joiners_and_reconnects() -> None:
    s = WorldState(MANIFEST, verify, log_limit=3)
    for i in range(1, 5):
        s.receive_op(door(i % 2 == 1, i), NOW)
    assert s.seq == 4
    assert s.ops_since(4) == []
    assert [op.hlc.wall_ms for op in s.ops_since(2) or []] == [3, 4]
    assert s.ops_since(0) is None  # the log no longer reaches back: take a snapshot
    joiner = replica()
    assert joiner.load(s.snapshot(), NOW) == []
    assert joiner.value("door", "open") == s.value("door", "open")
    # A snapshot is re-checked: a forged entry in it is skipped, not trusted.
    forged = dataclasses.replace(door(True, 99), signature=b"forged")
    (err,) = replica().load([forged], NOW)
    assert "bad signature" in str(err)


# --- convergence --------------------------------------------------------------------------------

AUTHORS = [ALICE, BOB, OWNER]


@st.composite
def ops(draw: st.DrawFn) -> StateOp:
    author = draw(st.sampled_from(AUTHORS))
    ms = draw(st.integers(1, 20))
    actor = draw(st.sampled_from(["a", "b", "c"]))
    choice = draw(st.integers(0, 6))
    h = hlc(ms, actor, draw(st.integers(0, 2)))
    if choice == 0:
        op = StateOp("door", OpKind.SET, "open", draw(st.booleans()), "onClick", h, author)
    elif choice == 1:
        op = StateOp("door", OpKind.SET, "color", "red", "onEnter", h, author)
    elif choice == 2:
        op = move_op("crate", [draw(st.integers(-5, 5)), 0, 0], author, h)
    elif choice == 3:
        op = StateOp("throne", OpKind.SET, "lit", draw(st.booleans()), "onClick", h, author)
    elif choice == 4:
        op = sign(StateOp("statue", OpKind.SET, "lit", True, "onClick", h, author))  # forbidden
    elif choice == 5:
        op = delete_op("crate", author, h)
    else:
        op = move_op("door", [1, 1, 1], author, h)  # forbidden
    return sign(op) if draw(st.integers(0, 9)) else dataclasses.replace(op, signature=b"bad")


def drive(state: WorldState, batch: list[StateOp]) -> None:
    for op in batch:
        with contextlib.suppress(OpRejected):
            state.receive_op(op, NOW)


def view(state: WorldState) -> dict[tuple[str, str], object]:
    keys = [(o, p) for o in ("door", "crate", "throne", "statue")
            for p in ("open", "color", "position", "deleted", "lit")]  # fmt: skip
    return {k: state.value(*k) for k in keys}


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(ops(), max_size=40), seed=st.integers(0, 2**32))
def test_replicas_converge_under_reordering_duplication_and_loss_then_resend(
    batch: list[StateOp], seed: int
) -> None:
    rng = random.Random(seed)
    reference = replica()
    drive(reference, batch)
    for _ in range(3):
        other = replica()
        shuffled = batch + rng.sample(batch, k=len(batch) // 2)  # duplicates
        rng.shuffle(shuffled)
        lost = set(rng.sample(range(len(shuffled)), k=len(shuffled) // 3))
        drive(other, [op for i, op in enumerate(shuffled) if i not in lost])
        drive(other, [op for i, op in enumerate(shuffled) if i in lost])  # resent later
        assert view(other) == view(reference)
        assert other.snapshot() == reference.snapshot()
    # A late joiner fed the snapshot ends in the same state.
    joiner = replica()
    assert joiner.load(reference.snapshot(), NOW) == []
    assert view(joiner) == view(reference)


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(ops(), max_size=40))
def test_rejected_ops_never_change_state(batch: list[StateOp]) -> None:
    s = replica()
    for op in batch:
        before = (view(s), s.snapshot(), s.seq)
        try:
            s.receive_op(op, NOW)
        except OpRejected:
            assert (view(s), s.snapshot(), s.seq) == before


def test_set_accepts_the_literal_as_any_json_number_spelling() -> None:
    # A JavaScript client cannot keep 100.0 apart from 100: msgpack carries it as an int.
    manifest = parse_manifest(
        json.dumps(
            {
                "name": "Numbers",
                "settings": {"maxPlayers": 8, "visibility": "public"},
                "objects": [
                    {
                        "id": "dial",
                        "type": "cube",
                        "interactions": {"onClick": 'set:v={"at": [100.0, true], "n": 2}'},
                        "permissions": {"canModify": True},
                    }
                ],
            }
        ).encode()
    )

    def op(value: object) -> StateOp:
        return sign(StateOp("dial", OpKind.SET, "v", value, "onClick", hlc(1), ALICE))  # type: ignore[arg-type]

    state = WorldState(manifest, verify)
    assert state.receive_op(op({"at": [100, True], "n": 2.0}), NOW)
    for wrong in ({"at": [100, 1], "n": 2}, {"at": [101, True], "n": 2}, {"at": [100, True]}):
        with pytest.raises(OpRejected, match=re.escape('set:v writes {"at":[100.0,true],"n":2}')):
            state.check(op(wrong), NOW)
