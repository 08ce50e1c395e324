"""What `flux-node status` reports: replica counts as the planner counts them, and the table a
terminal shows for the status JSON."""

from __future__ import annotations

from typing import Any

from fluxnode.core.replication import HostingRecord, HostingTable, WorldInfo, replica_report
from fluxnode.node.status_table import format_status, format_table, human_bytes


def test_replica_report_counts_live_verified_holders_and_this_node() -> None:
    table = HostingTable(ttl_s=60)
    table.offer(HostingRecord("bob", frozenset({"cid-a", "cid-b"}), 0, issued_at=100))
    table.offer(HostingRecord("carol", frozenset({"cid-a"}), 0, issued_at=100))
    table.offer(HostingRecord("dave", frozenset({"cid-a"}), 0, issued_at=10))  # expired
    table.challenge_failed("carol", "cid-a", now=101)  # no longer counts
    directory = [WorldInfo("w/a", "cid-a", "0xo"), WorldInfo("w/b", "cid-b", "0xo")]
    pinned = {"cid-a": "w/a", "cid-old": "w/b"}  # an old version of w/b is still pinned here
    report = replica_report(
        me="alice", now=105, directory=directory, table=table, pinned=pinned, target=2
    )
    assert [(r.world_id, r.cid, r.holders, r.hosted_here, r.current) for r in report] == [
        ("w/a", "cid-a", ("alice", "bob"), True, True),
        ("w/b", "cid-b", ("bob",), False, True),
        ("w/b", "cid-old", ("alice",), True, False),
    ]
    assert {r.target for r in report} == {2}


def test_format_table_aligns_columns() -> None:
    assert format_table(("A", "LONG"), [("xyz", "1"), ("q", "22")]) == [
        "A    LONG",
        "xyz  1",
        "q    22",
    ]


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (None, 0, 1023, 1536, 5 << 30)] == [
        "unlimited",
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 GiB",
    ]


STATUS: dict[str, Any] = {
    "peer_id": "12D3KooWAlice",
    "addrs": ["/ip4/127.0.0.1/tcp/4011/p2p/12D3KooWAlice"],
    "version": "0.1.0",
    "uptime_s": 3725.0,
    "peers": [{"peer_id": "12D3KooWBob", "addrs": ["/ip4/127.0.0.1/tcp/4012"]}],
    "gateway_url": "http://127.0.0.1:8011",
    "loops": {
        "hosting": {"rounds": 10, "failures": 0, "crashes": 0, "last_error": None},
        "chain": {"rounds": 9, "failures": 4, "crashes": 0, "last_error": "chain unavailable"},
    },
    "hosting": {
        "mode": "auto",
        "target": 2,
        "replicas": [
            {
                "world_id": "land:7",
                "cid": "bafyA",
                "replicas": 2,
                "target": 2,
                "holders": ["a", "b"],
                "hosted_here": True,
                "current": True,
            },
            {
                "world_id": "0xabc/hello",
                "cid": "bafyB",
                "replicas": 1,
                "target": 2,
                "holders": ["b"],
                "hosted_here": False,
                "current": True,
            },
        ],
    },
    "sessions": {
        "hub": {"visitors_local": 3, "visitors_remote": 1},
        "instances": [
            {
                "world_id": "land:7",
                "instance": "i-1",
                "visitors_local": 3,
                "visitors_remote": 1,
                "capacity": 50,
                "member_nodes": 2,
            },
        ],
    },
    "chain": {
        "last_indexed_block": 1234,
        "healthy_endpoints": 1,
        "endpoints": [
            {"url": "http://127.0.0.1:8545", "state": "healthy", "failures": 0},
            {"url": "http://rpc.example", "state": "down", "failures": 3, "last_error": "timeout"},
        ],
        "oracle": {"warm": 5, "cold": 2, "unavailable": 0},
    },
    "disk": {
        "used_bytes": 3 << 20,
        "max_bytes": 12 << 20,
        "free_bytes": 9 << 20,
        "fs_free_bytes": 40 << 30,
        "pins": 4,
    },
}


def test_the_table_shows_every_part_of_the_status() -> None:
    text = format_status(STATUS)
    lines = text.splitlines()
    assert "node     12D3KooWAlice" in lines
    assert "version  0.1.0, up 1h 02m" in lines
    assert "PEERS (1)" in lines
    assert any(line.split() == ["12D3KooWBob", "/ip4/127.0.0.1/tcp/4012"] for line in lines)
    assert any("2 known, 1 hosted here" in line and "target 2" in line for line in lines)
    assert any(line.split() == ["land:7", "2/2", "yes", "bafyA"] for line in lines)
    assert any(line.split() == ["0xabc/hello", "1/2", "no", "bafyB"] for line in lines)
    assert any(line.split() == ["land:7", "i-1", "3", "1", "50", "2"] for line in lines)
    assert "CHAIN (1/2 endpoints healthy: ok)" in lines
    assert any(line.split()[:3] == ["http://rpc.example", "down", "3"] for line in lines)
    assert "  store 3.0 MiB of 12.0 MiB (25.0%), 4 pins; file system free 40.0 GiB" in lines
    # only the failing loop is listed, with its last error
    assert any(line.split()[:3] == ["chain", "4/9", "0"] for line in lines)
    assert not any(line.split()[:1] == ["hosting"] for line in lines)


def test_the_table_of_a_bare_node_says_what_is_missing() -> None:
    bare = {"peer_id": "p", "addrs": [], "version": "0", "uptime_s": 5, "peers": []}
    text = format_status(bare)
    assert "PEERS (0)" in text and "none connected" in text
    assert "CHAIN" in text and "not configured" in text
    assert "PROBLEMS" not in text and "WORLDS" not in text and "DISK" not in text


def test_a_chain_with_no_healthy_endpoint_is_shown_down() -> None:
    chain = {"endpoints": [{"url": "u", "state": "down"}], "healthy_endpoints": 0}
    text = format_status({**STATUS, "chain": chain})
    assert "CHAIN (0/1 endpoints healthy: DOWN: ticketed and private worlds deny)" in text
