"""WorldDirectory: what a node keeps, relays and acknowledges, and what survives a restart.

Records are really signed (eth-account); time is injected; the store is a real SQLite file.
"""

from __future__ import annotations

import asyncio
from functools import cache
from pathlib import Path

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxnode.chain.records import sign_record
from fluxnode.core.errors import StateStoreError
from fluxnode.core.record_book import RecordBook
from fluxnode.core.world_record import RecordInvalid, WorldRecord
from fluxnode.node.worlds import WorldDirectory
from fluxnode.node.worldstore import WorldStore

NOW = 1_800_000_000
CIDS = (
    "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",
    "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354",
)
ME = "12D3KooWme"
OWNER = Account.from_key(b"\x11" * 32)
MALLORY = Account.from_key(b"\x22" * 32)


@cache
def record(
    slug: str = "plaza", seq: int = 1, cid: int = 0, age: int = 0, signer: str = "owner"
) -> WorldRecord:
    account = OWNER if signer == "owner" else MALLORY
    return sign_record(
        world_id=f"{OWNER.address.lower()}/{slug}",
        cid=CIDS[cid],
        seq=seq,
        visibility="public",
        issued_at=NOW - age,
        account=account,
    )


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def directory(
    store: WorldStore | None = None, *, clock: Clock | None = None, max_worlds: int = 100
) -> WorldDirectory:
    return WorldDirectory(
        oracle=None,
        own_peer_id=ME,
        clock=clock or Clock(),
        book=RecordBook(max_worlds=max_worlds),
        store=store,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "worlds.db"


async def listing_after_restart(db: Path, **kwargs: object) -> list[tuple[str, int]]:
    store = WorldStore(db)
    try:
        again = directory(store, **kwargs)  # type: ignore[arg-type]
        await again.load()
        return [(w["world_id"], w["seq"]) for w in again.listing()]
    finally:
        await store.aclose()


# -- ordering: seq, duplicates, conflicts -------------------------------------------------------


async def test_higher_seq_replaces_lower_is_stale_and_nothing_else_changes() -> None:
    d = directory()
    assert await d.offer(record(seq=2).to_wire(), forwarder="peer")
    assert not await d.offer(record(seq=1).to_wire(), forwarder="peer")
    assert await d.offer(record(seq=3, cid=1).to_wire(), forwarder="peer")
    assert [(w["seq"], w["cid"]) for w in d.listing()] == [(3, CIDS[1])]
    assert (d.stats.accepted, d.stats.stale, d.stats.rejected) == (2, 1, 0)


async def test_same_seq_other_payload_is_a_conflict_counted_under_a_stable_word() -> None:
    d = directory()
    assert await d.offer(record(seq=5).to_wire(), forwarder="peer")
    for _ in range(3):
        assert not await d.offer(record(seq=5, cid=1).to_wire(), forwarder="peer")
    assert not await d.offer(record(seq=5, cid=1, age=7).to_wire(), forwarder="peer")
    # one key, however many seqs conflict: the map in `status` stays bounded
    assert d.rejections == {"conflict": 4}
    assert [w["cid"] for w in d.listing()] == [CIDS[0]]


async def test_forged_and_malformed_records_are_refused_by_reason() -> None:
    d = directory()
    assert not await d.offer(record(seq=9, signer="mallory").to_wire(), forwarder="peer")
    assert not await d.offer(b'{"v":1}', forwarder="peer")
    assert not await d.offer(record(age=31 * 24 * 3600).to_wire(), forwarder="peer")
    assert d.rejections == {"not_world_owner": 1, "malformed": 1, "expired": 1}
    assert d.listing() == []


async def test_publish_local_then_its_gossip_echo_goes_out_once() -> None:
    d = directory()
    wire = record(seq=1).to_wire()
    assert (await d.publish_local(wire)).seq == 1
    # py-libp2p validates our own publication on its way out: let it go...
    assert await d.offer(wire, forwarder=ME)
    # ...but the same record echoed back by a peer is not relayed again
    assert not await d.offer(wire, forwarder="peer")
    assert d.stats.accepted == 1


async def test_publish_local_refuses_older_duplicate_and_forged_records() -> None:
    d = directory()
    await d.publish_local(record(seq=2).to_wire())
    with pytest.raises(RecordInvalid, match="stale"):
        await d.publish_local(record(seq=1).to_wire())
    with pytest.raises(RecordInvalid, match="duplicate"):
        await d.publish_local(record(seq=2).to_wire())
    with pytest.raises(RecordInvalid, match="conflict"):
        await d.publish_local(record(seq=2, cid=1).to_wire())
    with pytest.raises(RecordInvalid, match="not_world_owner"):
        await d.publish_local(record(seq=3, signer="mallory").to_wire())
    assert d.stats.stale == 2
    assert d.rejections == {"conflict": 1, "not_world_owner": 1}
    assert [w["seq"] for w in d.listing()] == [2]


# -- persistence --------------------------------------------------------------------------------


async def test_records_survive_a_restart_and_an_older_seq_is_then_refused(db: Path) -> None:
    store = WorldStore(db)
    d = directory(store)
    await d.publish_local(record("own", seq=4).to_wire())
    assert await d.offer(record("heard", seq=2).to_wire(), forwarder="peer")
    await store.aclose()

    store = WorldStore(db)
    again = directory(store)
    assert await again.load() == 2
    assert [(w["world_id"].split("/")[1], w["seq"]) for w in again.listing()] == [
        ("heard", 2),
        ("own", 4),
    ]
    assert not await again.offer(record("own", seq=3).to_wire(), forwarder="peer")
    with pytest.raises(RecordInvalid, match="stale"):
        await again.publish_local(record("heard", seq=1).to_wire())
    await store.aclose()


async def test_records_expired_while_the_node_was_down_are_dropped_on_load(db: Path) -> None:
    store = WorldStore(db)
    d = directory(store)
    assert await d.offer(record("old", age=29 * 24 * 3600).to_wire(), forwarder="peer")
    assert await d.offer(record("new").to_wire(), forwarder="peer")
    await store.aclose()
    later = Clock(NOW + 2 * 24 * 3600)
    store = WorldStore(db)
    again = directory(store, clock=later)
    assert await again.load() == 1
    assert (again.stats.loaded, again.stats.dropped_on_load) == (1, 1)
    await store.aclose()
    # deleted from the file too, not merely skipped
    assert await listing_after_restart(db, clock=later) == [(record("new").world_id, 1)]


async def test_a_damaged_row_is_dropped_on_load(db: Path) -> None:
    import sqlite3

    store = WorldStore(db)
    await directory(store).publish_local(record().to_wire())
    await store.aclose()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE records SET wire = ?", (b'{"v":1}',))
    store = WorldStore(db)
    again = directory(store)
    assert await again.load() == 0
    assert again.stats.dropped_on_load == 1
    await store.aclose()
    assert await listing_after_restart(db) == []


async def test_the_store_is_bounded_like_the_book(db: Path) -> None:
    store = WorldStore(db)
    d = directory(store, max_worlds=2)
    for i, slug in enumerate(("a", "b", "c")):  # "a" is oldest: evicted for "c"
        assert await d.offer(record(slug, age=100 - i).to_wire(), forwarder="peer")
    await store.aclose()
    names = [w.split("/")[1] for w, _ in await listing_after_restart(db, max_worlds=10)]
    assert names == ["b", "c"]


async def test_concurrent_offers_never_roll_the_store_back(db: Path) -> None:
    store = WorldStore(db)
    d = directory(store)
    wires = [record(seq=s).to_wire() for s in (1, 2, 3, 4)]
    results = await asyncio.gather(*(d.offer(w, forwarder="peer") for w in wires))
    assert results == [True, True, True, True]
    await store.aclose()
    assert await listing_after_restart(db) == [(record().world_id, 4)]


class FailingStore(WorldStore):
    async def save(self, record: WorldRecord, *, evicted: WorldRecord | None = None) -> None:
        raise StateStoreError("disk full")


async def test_a_record_that_cannot_be_stored_is_neither_relayed_nor_kept(db: Path) -> None:
    store = WorldStore(db)
    d = directory(store, max_worlds=1)
    assert await d.offer(record("a", seq=1, age=10).to_wire(), forwarder="peer")
    d.store = FailingStore(db)
    # an update of "a" and a new world that would evict "a": both refused, "a" stays as it was
    assert not await d.offer(record("a", seq=2).to_wire(), forwarder="peer")
    with pytest.raises(StateStoreError):
        await d.publish_local(record("b").to_wire())
    assert [(w["world_id"], w["seq"]) for w in d.listing()] == [(record("a").world_id, 1)]
    assert d.stats.store_failures == 2
    assert d.stats.accepted == 1
    assert d.book.statistics().evicted == 0
    await store.aclose()
    await d.store.aclose()


# -- properties ---------------------------------------------------------------------------------

SLUGS = ("a", "b", "c")
POOL = [(slug, seq, cid) for slug in SLUGS for seq in (1, 2, 3) for cid in (0, 1)]


@pytest.fixture(scope="module")
def signed_pool() -> dict[tuple[str, int, int], bytes]:
    return {(s, q, c): record(s, seq=q, cid=c, age=10 - q).to_wire() for s, q, c in POOL}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(POOL), max_size=12), st.integers(1, 3))
def test_any_sequence_of_offers_leaves_the_same_records_on_disk_as_in_memory(
    signed_pool: dict[tuple[str, int, int], bytes],
    tmp_path_factory: pytest.TempPathFactory,
    offers: list[tuple[str, int, int]],
    max_worlds: int,
) -> None:
    db = tmp_path_factory.mktemp("prop") / "worlds.db"

    async def main() -> None:
        store = WorldStore(db)
        d = directory(store, max_worlds=max_worlds)
        for key in offers:
            await d.offer(signed_pool[key], forwarder="peer")
        await store.aclose()
        shown = [(w["world_id"].split("/")[1], w["seq"], w["cid"]) for w in d.listing()]
        assert len(shown) <= max_worlds
        if max_worlds >= len(SLUGS):  # nothing evicted: per world, the first highest seq
            best: dict[str, tuple[int, int]] = {}
            for slug, seq, cid in offers:
                if slug not in best or seq > best[slug][0]:
                    best[slug] = (seq, cid)
            assert shown == [(slug, seq, CIDS[cid]) for slug, (seq, cid) in sorted(best.items())]
        stored = await listing_after_restart(db, max_worlds=max_worlds)
        assert stored == [(w["world_id"], w["seq"]) for w in d.listing()]

    asyncio.run(main())
