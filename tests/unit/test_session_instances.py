"""Instance capacity, the gossiped directory and placement (sans-IO, injected time)."""

from __future__ import annotations

import pytest

from fluxnode.core.errors import FrameInvalid
from fluxnode.core.session.instances import (
    Directory,
    InstanceSummary,
    JoinInstance,
    NodeLoad,
    NoRoom,
    Redirect,
    capacity_for,
    derive_instance_id,
    place,
    summarize,
)
from fluxnode.core.session.seats import SeatTable

W = "land:7"


def summary(inst: str, members: tuple[str, ...], count: int, cap: int = 4, t: float = 100.0,
            origin: str | None = None) -> InstanceSummary:  # fmt: skip
    return InstanceSummary(W, inst, members, count, cap, t, origin or members[0])


def test_capacity_is_max_players_capped_at_100() -> None:
    assert capacity_for(8) == 8
    assert capacity_for(100) == 100
    assert capacity_for(5000) == 100
    with pytest.raises(ValueError, match="at least 1"):
        capacity_for(0)


def test_instance_ids_are_deterministic_and_per_creator() -> None:
    a = derive_instance_id(W, "alice", 0)
    assert a == derive_instance_id(W, "alice", 0)
    assert len(a) == 16
    assert len({a, derive_instance_id(W, "bob", 0), derive_instance_id(W, "alice", 1)}) == 3


def test_placement_prefers_nearest_members_then_least_loaded() -> None:
    d = Directory()
    d.offer(summary("far", ("bob",), 1), 100.0)
    d.offer(summary("near-busy", ("carol",), 3), 100.0)
    d.offer(summary("near-quiet", ("dave",), 1), 100.0)
    d.offer(summary("full", ("erin",), 4), 100.0)
    rtt = {"bob": 80.0, "carol": 5.0, "dave": 5.0, "erin": 1.0}
    kw = {"node": "alice", "now": 101.0, "rtt": rtt, "max_visitors": 10, "next_instance": 0}
    assert place(W, d, local_visitors=0, **kw) == JoinInstance("near-quiet", new=False)  # type: ignore[arg-type]


def test_own_membership_counts_as_nearest() -> None:
    d = Directory()
    d.offer(summary("mine", ("alice",), 3), 100.0)
    d.offer(summary("theirs", ("bob",), 0 + 1), 100.0)
    got = place(W, d, node="alice", now=100.0, rtt={"bob": 1.0}, local_visitors=3,
                max_visitors=10, next_instance=0)  # fmt: skip
    assert got == JoinInstance("mine", new=False)


def test_all_full_opens_a_new_instance_with_a_derived_id() -> None:
    d = Directory()
    d.offer(summary("full", ("bob",), 4), 100.0)
    got = place(W, d, node="alice", now=100.0, rtt={}, local_visitors=0, max_visitors=10,
                next_instance=3)  # fmt: skip
    assert got == JoinInstance(derive_instance_id(W, "alice", 3), new=True)


def test_node_at_its_limit_redirects_to_an_accepting_member() -> None:
    d = Directory()
    d.offer(summary("i1", ("alice", "bob", "carol"), 2), 100.0)
    d.offer_load(NodeLoad("bob", 5, 5, 100.0), 100.0)  # bob is at his limit too
    got = place(W, d, node="alice", now=100.0, rtt={"bob": 1.0, "carol": 9.0},
                local_visitors=10, max_visitors=10, next_instance=0)  # fmt: skip
    assert got == Redirect("carol", "i1")


def test_node_at_its_limit_redirects_to_another_host_or_has_no_room() -> None:
    d = Directory()
    kw = {"node": "alice", "now": 100.0, "rtt": {"zed": 3.0, "yan": 1.0}, "local_visitors": 2,
          "max_visitors": 2, "next_instance": 0}  # fmt: skip
    assert place(W, d, hosts=["zed", "yan", "alice"], **kw) == Redirect("yan", None)  # type: ignore[arg-type]
    d.offer_load(NodeLoad("yan", 9, 9, 100.0), 100.0)
    d.offer_load(NodeLoad("zed", 9, 9, 100.0), 100.0)
    got = place(W, d, hosts=["zed", "yan"], **kw)  # type: ignore[arg-type]
    assert isinstance(got, NoRoom)
    assert "visitor limit" in got.reason


def test_directory_keeps_newest_per_origin_and_forgets_stale_ones() -> None:
    d = Directory(ttl=60.0)
    assert d.offer(summary("i1", ("bob",), 2, t=100.0), 100.0)
    assert not d.offer(summary("i1", ("bob",), 3, t=99.0), 100.0)  # older: ignored
    assert d.offer(summary("i1", ("bob", "carol"), 3, t=101.0, origin="carol"), 101.0)
    (view,) = d.instances(W, 102.0)
    assert view.members == {"bob", "carol"}
    assert view.count == 3
    (later,) = d.instances(W, 160.5)  # bob's report expired, carol's is still fresh
    assert later.members == {"bob", "carol"}
    assert d.instances(W, 161.0) == []
    assert not d.offer(summary("i2", ("bob",), 1, t=10.0), 100.0)  # stale on arrival


def test_an_empty_instance_is_closed() -> None:
    d = Directory()
    d.offer(summary("i1", ("bob",), 0), 100.0)
    assert d.instances(W, 100.0) == []


def test_summary_round_trips_and_bad_fields_are_named() -> None:
    s = summary("i1", ("bob", "alice"), 2)
    back = InstanceSummary.from_wire(s.to_wire())
    assert back.members == ("alice", "bob")
    assert back.count == 2
    bad = s.to_wire()
    bad[3] = 9  # count over capacity
    with pytest.raises(FrameInvalid, match="count"):
        InstanceSummary.from_wire(bad)
    bad = s.to_wire()
    bad[5] = float("nan")
    with pytest.raises(FrameInvalid, match="updated_at"):
        InstanceSummary.from_wire(bad)
    with pytest.raises(FrameInvalid, match="7 fields"):
        InstanceSummary.from_wire({"x": 1})
    bad = s.to_wire()
    bad[2] = ["x" * 200]
    with pytest.raises(FrameInvalid, match="member"):
        InstanceSummary.from_wire(bad)


def test_summarize_reports_the_seat_tables_view() -> None:
    table = SeatTable("alice", "i1", 4)
    table.claim("v1", 0.0)
    s = summarize(table, W, 5.0)
    assert (s.instance_id, s.members, s.count, s.capacity, s.origin) == (
        "i1",
        ("alice",),
        1,
        4,
        "alice",
    )


def test_world_counts_merge_reports_like_instances_and_skip_closed_and_stale_ones() -> None:
    d = Directory(ttl=10.0)
    d.offer(summary("i1", ("a", "b"), 3, origin="a"), 100.0)
    d.offer(summary("i1", ("a", "b"), 2, origin="b"), 100.0)  # the highest count wins
    d.offer(summary("i2", ("c",), 1), 100.0)
    d.offer(summary("i3", ("d",), 0), 100.0)  # closed
    d.offer(InstanceSummary("land:8", "j", ("e",), 4, 8, 95.0, "e"), 100.0)
    assert d.world_counts(100.0) == {W: (2, 4), "land:8": (1, 4)}
    assert d.world_counts(105.5) == {W: (2, 4)}  # land:8's report is stale by now
    views = d.instances(W, 100.0)
    assert (len(views), sum(v.count for v in views)) == d.world_counts(100.0)[W]
