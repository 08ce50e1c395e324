"""Presence, transform bounds, interest tiers and per-viewer deltas with resync (injected time)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxnode.core.errors import TransformRejected
from fluxnode.core.session.presence import (
    PresenceTable,
    Transform,
    ViewerState,
    ViewerStream,
    tier,
)
from fluxnode.core.session.ratelimit import TokenBucket


def at(x: float, y: float = 0.0, z: float = 0.0, anim: str = "idle") -> Transform:
    return Transform((x, y, z), (0.0, 0.0, 0.0, 1.0), anim)


def test_join_heartbeat_and_silent_visitors_expire() -> None:
    table = PresenceTable(expire_after=30.0)
    table.join("alice", at(0), now=0.0, info={"avatar": "fox"})
    table.join("bob", at(1), now=0.0)
    table.heartbeat("alice", now=20.0)
    assert table.get_timer() == 30.0
    assert table.expire(29.9) == []
    assert table.expire(30.0) == ["bob"]
    assert "alice" in table
    assert table.expire(50.0) == ["alice"]
    assert len(table) == 0
    with pytest.raises(ValueError, match="30"):
        PresenceTable(expire_after=31.0)


@pytest.mark.parametrize(
    ("transform", "reason"),
    [
        (at(float("nan")), "position.x must be finite"),
        (at(0, float("inf")), "position.y must be finite"),
        (at(0, 0, 20_000), "outside the world"),
        (Transform((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 2.0)), "unit quaternion"),
        (Transform((0.0, 0.0, 0.0), (0.0, 0.0, float("nan"), 1.0)), "rotation must be finite"),
        (Transform((0.0, 0.0, 0.0), (0.0, 0.0, 1.0)), "4 numbers"),  # type: ignore[arg-type]
        (at(0, anim="Dance!"), "animation state"),
        (at(30), "faster than 50 m/s"),
    ],
)
def test_bad_transforms_are_refused_and_change_nothing(transform: Transform, reason: str) -> None:
    table = PresenceTable()
    table.join("alice", at(0), now=0.0)
    p = table.get("alice")
    assert p is not None
    before = (p.transform, p.rev)
    with pytest.raises(TransformRejected, match=reason):
        table.receive_transform("alice", transform, now=0.5)
    assert (p.transform, p.rev) == before


def test_speed_bound_scales_with_time_and_teleport_skips_it() -> None:
    table = PresenceTable(max_speed=50.0)
    table.join("alice", at(0), now=0.0)
    table.receive_transform("alice", at(49), now=1.0)  # 49 m in 1 s: a sprint, fine
    with pytest.raises(TransformRejected, match="faster"):
        table.receive_transform("alice", at(200), now=2.0)
    table.teleport("alice", at(5000), now=2.0)
    assert table.get("alice").transform.position == (5000, 0.0, 0.0)  # type: ignore[union-attr]


def test_rate_is_capped_per_visitor() -> None:
    table = PresenceTable(max_rate=10.0)
    table.join("alice", at(0), now=0.0)
    table.join("bob", at(0), now=0.0)
    for i in range(10):  # a burst of 10 is fine (a stall's worth), the 11th at once is not
        table.receive_transform("alice", at(0.001 * i), now=i * 0.001)
    with pytest.raises(TransformRejected, match="more than 10 transforms per second"):
        table.receive_transform("alice", at(0.01), now=0.01)
    table.receive_transform("alice", at(0.1), now=0.11)  # the bucket refills at 10/s
    table.receive_transform("bob", at(0.1), now=0.19)  # another visitor has their own budget


def test_an_honest_10_hz_client_whose_frames_arrive_bunched_is_not_refused() -> None:
    table = PresenceTable(max_rate=10.0)
    table.join("alice", at(0), now=0.0)
    t = 0.0
    for second in range(5):
        # Sent every 0.1 s, but a 0.6 s stall delivers six at once, then the rest on time.
        arrivals = [second + 0.6] * 6 + [second + 0.6 + 0.1 * k for k in range(1, 5)]
        for when in arrivals:
            t += 0.01
            table.receive_transform("alice", at(t), now=when)


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=2.0, burst=2, now=0.0)
    assert bucket.allow(0.0)
    assert bucket.allow(0.0)
    assert not bucket.allow(0.0)
    assert bucket.retry_after(0.0) == 0.5
    assert bucket.allow(0.5)
    assert not bucket.allow(0.4)  # a clock stepping back gives nothing


def test_tiers_follow_distance() -> None:
    assert [tier(d) for d in (0, 20, 20.1, 50, 60, 100, 100.1)] == [1, 1, 2, 2, 4, 4, 0]


def crowd() -> PresenceTable:
    table = PresenceTable(max_speed=1000.0)
    table.join("me", at(0), now=0.0)
    for name, x in (("near", 10), ("mid", 40), ("far", 90), ("away", 500)):
        table.join(name, at(x), now=0.0, info={"avatar": name})
    return table


def test_first_frame_is_a_full_snapshot_with_presence_only_beyond_range() -> None:
    stream = ViewerStream("me")
    frame = stream.frame(crowd(), tick=0)
    assert frame is not None
    assert frame.base is None
    assert set(frame.changed) == {"near", "mid", "far", "away"}
    assert frame.changed["away"] is None
    assert frame.info["near"] == {"avatar": "near"}
    assert "me" not in frame.changed


def test_tiered_deltas_against_the_acknowledged_snapshot() -> None:
    table, stream = crowd(), ViewerStream("me")
    first = stream.frame(table, tick=0)
    assert first is not None
    stream.ack(first.seq)
    sent: dict[int, set[str]] = {}
    for tick in range(1, 9):
        now = tick * 0.1
        for name, x in (("near", 10), ("mid", 40), ("far", 90), ("away", 500)):
            table.receive_transform(name, at(x + tick * 0.1), now=now)
        frame = stream.frame(table, tick)
        assert frame is not None
        assert frame.base is not None
        sent[tick] = set(frame.changed)
        stream.ack(frame.seq)
    assert [t for t in sent if "near" in sent[t]] == list(range(1, 9))
    assert [t for t in sent if "mid" in sent[t]] == [2, 4, 6, 8]
    assert [t for t in sent if "far" in sent[t]] == [4, 8]
    assert not any("away" in s for s in sent.values())  # beyond range: presence only


def test_nothing_new_sends_nothing_and_leaving_is_a_removal() -> None:
    table, stream = crowd(), ViewerStream("me")
    first = stream.frame(table, 0)
    assert first is not None
    stream.ack(first.seq)
    assert stream.frame(table, 1) is None
    table.leave("mid")
    frame = stream.frame(table, 2)
    assert frame is not None
    assert frame.removed == ("mid",)
    assert frame.changed == {}


def test_unacknowledged_frames_stay_deltas_against_the_last_ack_and_a_gap_resyncs() -> None:
    table, stream, client = crowd(), ViewerStream("me"), ViewerState()
    first = stream.frame(table, 0)
    assert first is not None
    assert client.apply(first)
    stream.ack(first.seq)
    table.receive_transform("near", at(11), now=0.1)
    lost = stream.frame(table, 1)  # never arrives
    assert lost is not None
    table.receive_transform("near", at(12), now=0.2)
    table.receive_transform("mid", at(41), now=0.2)
    frame = stream.frame(table, 2)
    assert frame is not None
    assert frame.base == first.seq  # still against what the viewer acknowledged
    assert client.apply(frame)
    assert client.current()["near"] == at(12)
    # A viewer that lost its base state asks for a resync and gets a full snapshot.
    stranger = ViewerState()
    assert not stranger.apply(frame)
    stream.resync()
    full = stream.frame(table, 3)
    assert full is not None
    assert full.base is None
    assert stranger.apply(full)
    assert stranger.current() == client.current() | {"mid": at(41)}


@settings(max_examples=100, deadline=None)
@given(
    moves=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(-150, 150), st.booleans()),
        max_size=60,
    ),
    drops=st.sets(st.integers(0, 60)),
)
def test_viewer_converges_to_the_tiered_truth_whatever_frames_are_lost(
    moves: list[tuple[str, float, bool]], drops: set[int]
) -> None:
    table = PresenceTable(max_speed=1e6, max_rate=1e6)
    table.join("me", at(0), now=0.0)
    for v in "abc":
        table.join(v, at(1), now=0.0)
    stream, client = ViewerStream("me"), ViewerState()
    for tick, (v, x, leave) in enumerate(moves):
        if leave and v in table:
            table.leave(v)
        elif v in table:
            table.receive_transform(v, at(x), now=tick * 0.1 + 0.1)
        else:
            table.join(v, at(x), now=tick * 0.1 + 0.1)
        frame = stream.frame(table, tick)
        if frame is None or tick in drops:
            continue
        if client.apply(frame):
            stream.ack(frame.seq)
        else:
            stream.resync()
    # Four quiet ticks later everything in range has been sent and acknowledged.
    for tick in range(len(moves), len(moves) + 8):
        frame = stream.frame(table, tick)
        if frame is not None:
            if client.apply(frame):
                stream.ack(frame.seq)
            else:
                stream.resync()
    truth = {
        p.visitor: (p.transform if tier(abs(p.transform.position[0])) else None)
        for p in table.entries()
        if p.visitor != "me"
    }
    assert client.current() == truth


_VISITORS = ("a", "b", "c", "d", "e")
_X = st.sampled_from([0.0, 5.0, 19.0, 30.0, 49.0, 70.0, 99.0, 150.0, 400.0])
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.sampled_from(_VISITORS), _X),
        st.tuples(st.just("leave"), st.sampled_from(_VISITORS), _X),
        st.tuples(st.just("move"), st.sampled_from(_VISITORS), _X),
        st.tuples(st.just("viewer"), st.just("me"), _X),
        st.tuples(st.sampled_from(["ack", "ack-old", "lose", "resync"]), st.just(""), _X),
    ),
    max_size=60,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_OPS, skips=st.lists(st.frozensets(st.sampled_from(_VISITORS)), min_size=60))
def test_incremental_frames_are_the_frames_a_full_rebuild_makes(
    ops: list[tuple[str, str, float]], skips: list[frozenset[str]], monkeypatch_left_log: None
) -> None:
    """The same operations, one viewer seen two ways: the incremental snapshot (base plus the
    entries that can differ) must give exactly the frames of a full rebuild, tick after tick,
    whatever joins, leaves, moves (the viewer's own too), acks, losses, resyncs and skip sets."""
    table = PresenceTable()
    table.join("me", at(0.0), now=0.0)
    fast, full = ViewerStream("me"), ViewerStream("me", incremental=False)
    for tick, ((op, who, x), skip) in enumerate(zip(ops, skips, strict=False)):
        if op == "join" and who not in table:
            table.join(who, at(x), now=0.0, info={"n": tick})
        elif op == "leave":
            table.leave(who)
        elif op in ("move", "viewer") and who in table:
            table.teleport(who, at(x, float(tick % 3)), now=0.0)
        a, b = fast.frame(table, tick, skip), full.frame(table, tick, skip)
        assert a == b, (tick, op, who)
        if a is None:
            continue
        if op == "ack":
            fast.ack(a.seq), full.ack(b.seq)
        elif op == "ack-old" and a.seq > 1:
            fast.ack(a.seq - 1), full.ack(b.seq - 1)
        elif op == "resync":
            fast.resync(), full.resync()


@pytest.fixture
def monkeypatch_left_log(monkeypatch: pytest.MonkeyPatch) -> None:
    # A short departure log, so that viewers whose base is older than it fall back to a
    # full rebuild within a test's few operations. The same for every example: fine to share.
    import fluxnode.core.session.presence as presence

    monkeypatch.setattr(presence, "MAX_LEFT_LOG", 3)


def test_the_change_log_names_who_moved_joined_and_left_since_a_revision() -> None:
    table = PresenceTable()
    table.join("a", at(0), now=0.0)
    table.join("b", at(1), now=0.0)
    rev = table.rev
    table.teleport("a", at(2), now=0.0)
    table.join("c", at(3), now=0.0)
    table.leave("b")
    assert [p.visitor for p in table.changed_since(rev)] == ["c", "a"]
    assert table.left_since(rev) == ["b"]
    table.join("b", at(1), now=0.0)  # back: no longer among those gone
    assert table.left_since(rev) == []
    assert table.changed_since(table.rev) == [] and table.left_since(table.rev) == []


def test_an_entry_kept_for_a_skipped_visitor_is_looked_at_again_once_it_is_not() -> None:
    """Found by the property test: a skip set changes without the table changing."""
    table = PresenceTable()
    table.join("me", at(0.0), now=0.0)
    table.join("a", at(5.0), now=0.0)
    fast, full = ViewerStream("me"), ViewerStream("me", incremental=False)
    for stream in (fast, full):
        first = stream.frame(table, 0)
        assert first is not None
        stream.ack(first.seq)
    table.teleport("me", at(300.0), now=0.0)  # `a` is now out of range, but skipped: kept
    table.join("b", at(310.0), now=0.0)
    for stream in (fast, full):
        second = stream.frame(table, 1, skip={"a"})
        assert second is not None and "a" not in second.changed
        stream.ack(second.seq)
    third = full.frame(table, 2)
    assert third is not None and third.changed == {"a": None}
    assert fast.frame(table, 2) == third
