"""Replication planning converges to R holders without a coordinator (simulated, injected time)."""

from __future__ import annotations

import random

import pytest

from fluxnode.core.errors import BadRequest
from fluxnode.core.replication import (
    ActionKind,
    HostingPolicy,
    HostingRecord,
    HostingTable,
    Planner,
    Policy,
    WorldInfo,
    rank,
)

GIB = 1 << 30


def simulate(
    peers: list[str],
    worlds: list[WorldInfo],
    r: int,
    rounds: int = 6,
    initial: dict[str, set[str]] | None = None,
    free: int = 10 * GIB,
    grace: float = 0.0,
) -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {p: set(initial.get(p, set())) if initial else set() for p in peers}
    planners = {
        p: Planner(p, HostingPolicy(Policy.AUTO, replication=r, grace_s=grace)) for p in peers
    }
    now = 1000.0
    size = {w.cid: w.size for w in worlds}

    def free_of(p: str) -> int:
        return free - sum(size.get(c, 0) for c in pins[p])

    for _ in range(rounds):
        table = HostingTable()
        for p in peers:  # everyone hears everyone's latest record
            table.offer(HostingRecord(p, frozenset(pins[p]), free_of(p), now, auto=True))
        by_cid = {w.cid: w.world_id for w in worlds}
        for p in peers:
            mine = {c: by_cid.get(c, "old") for c in pins[p]}
            for action in planners[p].plan(
                now=now, directory=worlds, table=table, pinned=mine, free_bytes=free_of(p)
            ):
                if action.kind is ActionKind.PIN:
                    pins[p].add(action.cid)
                else:
                    pins[p].discard(action.cid)
        now += 10
    return pins


def holders(pins: dict[str, set[str]], cid: str) -> int:
    return sum(cid in s for s in pins.values())


def test_every_world_reaches_exactly_r_holders() -> None:
    peers = [f"peer{i}" for i in range(6)]
    worlds = [WorldInfo(f"w{i}", f"cid{i}", "0xowner", 100) for i in range(20)]
    pins = simulate(peers, worlds, r=2)
    assert all(holders(pins, w.cid) == 2 for w in worlds)
    # load spreads: nobody holds everything
    assert max(len(s) for s in pins.values()) < 20


def test_over_replicated_worlds_are_released_down_to_r() -> None:
    peers = [f"peer{i}" for i in range(5)]
    world = WorldInfo("w", "cid", "0xo", 1)
    pins = simulate(peers, [world], r=2, initial={p: {"cid"} for p in peers})
    assert holders(pins, "cid") == 2


def test_release_waits_for_the_grace_period() -> None:
    # r = 1 and three holders: the two that rank below the top release, after the grace only.
    peers = ["a", "b", "c"]
    world = WorldInfo("w", "cid", "0xo", 1)
    held = {p: {"cid"} for p in peers}
    for rounds, expected in ((100, 3), (101, 1)):  # rounds are 10 s apart; grace is 1000 s
        pins = simulate(peers, [world], r=1, rounds=rounds, grace=1000.0, initial=held)
        assert holders(pins, "cid") == expected, rounds


def test_a_release_is_due_exactly_when_the_grace_period_ends() -> None:
    world = WorldInfo("w", "cid", "0xo", 1)
    table = HostingTable(ttl_s=10_000)
    for p in ("a", "b", "c"):
        table.offer(HostingRecord(p, frozenset({"cid"}), GIB, 0.0, auto=True))
    top = min(("a", "b", "c"), key=lambda p: rank(p, "cid"))
    me = next(p for p in ("a", "b", "c") if p != top)
    planner = Planner(me, HostingPolicy(Policy.AUTO, replication=1, grace_s=100.0))

    def released(now: float) -> list[str]:
        acts = planner.plan(
            now=now, directory=[world], table=table, pinned={"cid": "w"}, free_bytes=GIB
        )
        return [a.cid for a in acts if a.kind is ActionKind.UNPIN]

    assert released(1000.0) == []  # first seen over-replicated: the grace starts now
    assert released(1099.9) == []
    assert released(1100.0) == ["cid"]


def test_superseded_versions_are_released_and_new_ones_pinned() -> None:
    peers = ["a", "b", "c"]
    new = WorldInfo("w", "cid-v2", "0xo", 1)
    pins = simulate(peers, [new], r=2, initial={"a": {"cid-v1"}, "b": {"cid-v1"}})
    assert holders(pins, "cid-v1") == 0
    assert holders(pins, "cid-v2") == 2


def test_quota_is_respected() -> None:
    peers = ["a", "b"]
    worlds = [WorldInfo(f"w{i}", f"c{i}", "0xo", 600) for i in range(3)]
    pins = simulate(peers, worlds, r=2, free=1000)
    assert all(len(s) <= 1 for s in pins.values())  # 600 bytes fit once in 1000


def test_explicit_and_follow_policies() -> None:
    table = HostingTable()
    worlds = [WorldInfo("mine", "c1", "0xfriend", 1), WorldInfo("other", "c2", "0xstranger", 1)]
    explicit = Planner("me", HostingPolicy(Policy.EXPLICIT, worlds=frozenset({"mine"})))
    acts = explicit.plan(now=0, directory=worlds, table=table, pinned={}, free_bytes=GIB)
    assert [(a.kind, a.cid) for a in acts] == [(ActionKind.PIN, "c1")]
    follow = Planner("me", HostingPolicy(Policy.FOLLOW, follow=frozenset({"0xfriend"})))
    acts = follow.plan(now=0, directory=worlds, table=table, pinned={}, free_bytes=GIB)
    assert [a.cid for a in acts] == ["c1"]


def test_failed_challenges_remove_claims_and_expired_records_count_for_nothing() -> None:
    table = HostingTable(ttl_s=60)
    table.offer(HostingRecord("liar", frozenset({"c"}), 0, 100.0))
    table.offer(HostingRecord("honest", frozenset({"c"}), 0, 100.0))
    assert table.holders("c", 110) == {"liar", "honest"}
    table.challenge_failed("liar", "c", 120)
    assert table.holders("c", 120) == {"honest"}
    assert table.failures() == {"liar": ["c"]}
    table.challenge_passed("liar", "c")
    assert table.holders("c", 120) == {"liar", "honest"}
    assert table.holders("c", 200) == set()  # both records expired
    assert not table.offer(HostingRecord("honest", frozenset(), 0, 50.0))  # older: ignored
    pick = table.pick_challenge(110, random.Random(1), me="honest")
    assert pick == ("liar", "c")


def test_bounds() -> None:
    with pytest.raises(BadRequest):
        HostingRecord("p", frozenset(str(i) for i in range(2001)), 0, 0)
    with pytest.raises(BadRequest):
        HostingPolicy(replication=0)


def test_doubts_are_checked_first_not_trusted() -> None:
    table = HostingTable()
    table.offer(HostingRecord("honest", frozenset({"c1", "c2"}), 0, 100.0))
    table.offer(HostingRecord("liar", frozenset({"c3"}), 0, 100.0))
    # a third node says "honest" failed c2: we challenge that claim first...
    table.offer(
        HostingRecord("accuser", frozenset(), 0, 100.0, doubts=frozenset({("honest", "c2")}))
    )
    assert table.pick_challenge(110, random.Random(0), me="me") == ("honest", "c2")
    # ...but do not drop it on hearsay
    assert "honest" in table.holders("c2", 110)
    # once we tested it ourselves (and it passed), it is no longer prioritised
    table.challenge_failed("honest", "c2", 110)
    table.challenge_passed("honest", "c2")
    picks = {table.pick_challenge(110, random.Random(s), me="me") for s in range(30)}
    assert len(picks) > 1
    table.challenge_failed("liar", "c3", 120)
    assert table.my_doubts() == frozenset({("liar", "c3")})


def test_table_reports_its_changes_and_restores_its_state() -> None:
    table = HostingTable(ttl_s=60)
    table.offer(HostingRecord("liar", frozenset({"c"}), 0, 100.0))
    table.offer(HostingRecord("honest", frozenset({"c"}), 0, 100.0))
    table.challenge_failed("liar", "c", 110.0)
    changed, removed = table.take_changes()
    assert [s.record.peer_id for s in changed] == ["honest", "liar"]
    assert removed == []
    assert table.take_changes() == ([], [])  # nothing new since
    table.challenge_passed("honest", "c")
    assert [s.passed for s in table.take_changes()[0]] == [frozenset({"c"})]

    again = HostingTable(ttl_s=60)
    assert again.restore(table.states()) == 2
    assert again.holders("c", 120.0) == {"honest"}
    assert again.my_doubts() == {("liar", "c")}
    assert again.take_changes() == ([], [])  # restored state is already stored
    # a newer record heard before the restore wins over the stored one
    fresh = HostingTable(ttl_s=60)
    fresh.offer(HostingRecord("liar", frozenset(), 0, 200.0))
    assert fresh.restore(table.states()) == 1
    assert fresh.holders("c", 210.0) == set()


def test_a_peer_evicted_from_a_full_table_is_reported_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fluxnode.core.replication as replication

    monkeypatch.setattr(replication, "MAX_PEERS", 2)
    table = HostingTable()
    for i, peer in enumerate(("old", "mid", "new")):
        table.offer(HostingRecord(peer, frozenset(), 0, float(i)))
    changed, removed = table.take_changes()
    assert [s.record.peer_id for s in changed] == ["mid", "new"]
    assert removed == ["old"]
