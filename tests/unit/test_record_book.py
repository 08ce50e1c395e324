"""RecordBook: highest seq wins, conflicts keep the stored record, freshness, bounds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fluxnode.core.errors import ConfigError
from fluxnode.core.record_book import Outcome, RecordBook
from fluxnode.core.world import Visibility
from tests.unit.record_samples import (
    CID_V0,
    FAKE_SIG,
    NOW,
    new_account,
    personal_id,
    signed,
    unsigned,
)

# -- the book ------------------------------------------------------------------------------------


def test_book_highest_seq_wins_and_replay_is_stale() -> None:
    acct = new_account()
    book = RecordBook()
    r1, r2 = signed(acct, seq=1), signed(acct, seq=2, cid=CID_V0)
    assert book.offer(r1, NOW, verified_owner=True).outcome is Outcome.ACCEPT
    assert book.offer(r2, NOW, verified_owner=True).accepted
    assert book.get(r1.world_id) == r2
    assert book.get(r1.world_id.replace("0x", "0X", 1)) is None  # not a world id
    assert book.get(personal_id(acct).replace(acct.address.lower(), acct.address)) == r2
    replay = book.offer(r1, NOW, verified_owner=True)
    assert replay.outcome is Outcome.STALE
    assert book.get(r1.world_id) == r2
    assert book.offer(r2, NOW, verified_owner=True).outcome is Outcome.DUPLICATE
    s = book.statistics()
    assert (s.worlds, s.accepted, s.stale, s.duplicate) == (1, 2, 1, 1)


def test_book_same_seq_different_content_is_conflict() -> None:
    acct = new_account()
    book = RecordBook()
    a = signed(acct, seq=5)
    b = signed(acct, seq=5, cid=CID_V0)
    assert book.offer(a, NOW, verified_owner=True).accepted
    v = book.offer(b, NOW, verified_owner=True)
    assert v.outcome is Outcome.CONFLICT
    assert book.get(a.world_id) == a
    # same payload, different (malleated) signature bytes: a duplicate, not a conflict
    s = int.from_bytes(a.signature[32:64], "big")
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    flipped = a.signature[:32] + (n - s).to_bytes(32, "big") + bytes([55 - a.signature[64]])
    assert book.offer(replace(a, signature=flipped), NOW, verified_owner=True).outcome is (
        Outcome.DUPLICATE
    )
    assert book.statistics().conflict == 1


def test_book_rejects_unverified_foreign_and_unfresh() -> None:
    alice, mallory = new_account(), new_account()
    book = RecordBook(max_future_skew=60, max_age=3600)
    r = signed(alice)
    assert book.offer(r, NOW, verified_owner=False).reason == "unverified"
    foreign = book.offer(signed(mallory, world_id=personal_id(alice)), NOW, verified_owner=True)
    assert (foreign.outcome, foreign.reason) == (Outcome.REJECT, "not_world_owner")
    assert book.offer(r, NOW - 61, verified_owner=True).reason == "from_future"
    assert book.offer(r, NOW + 3601, verified_owner=True).reason == "expired"
    assert len(book) == 0  # bad input changed no state
    assert book.offer(r, NOW - 60, verified_owner=True).accepted  # edges of the window
    assert book.offer(signed(alice, seq=2), NOW + 3600, verified_owner=True).accepted
    assert book.statistics().rejected == {
        "unverified": 1,
        "not_world_owner": 1,
        "from_future": 1,
        "expired": 1,
    }


def test_book_evicts_oldest_issued_at_when_full() -> None:
    book = RecordBook(max_worlds=3)
    accts = [new_account() for _ in range(5)]
    recs = [signed(a, issued_at=NOW - 100 + i) for i, a in enumerate(accts)]
    for r in recs[1:4]:
        assert book.offer(r, NOW, verified_owner=True).accepted
    # older than everything stored: refused, nothing evicted
    assert book.offer(recs[0], NOW, verified_owner=True).reason == "book_full"
    # updating a stored world with a newer issued_at moves it off the eviction end
    bump = signed(accts[1], seq=2, issued_at=NOW)
    assert book.offer(bump, NOW, verified_owner=True).accepted
    assert book.offer(recs[4], NOW, verified_owner=True).accepted
    assert len(book) == 3
    assert book.get(recs[2].world_id) is None  # the oldest issued_at went
    assert book.get(bump.world_id) == bump
    assert book.get(recs[3].world_id) == recs[3]
    assert book.statistics().evicted == 1


def test_book_prune_and_heap_stays_bounded() -> None:
    acct = new_account()
    book = RecordBook(max_age=1000)
    for seq in range(1, 400):
        record = unsigned(
            world_id=personal_id(acct),
            owner=acct.address,
            seq=seq,
            issued_at=NOW + seq,
            visibility=Visibility.PUBLIC,
            access=(),
        ).signed(FAKE_SIG)
        assert book.offer(record, NOW + seq, verified_owner=True).accepted
    assert len(book._heap) <= 2 * len(book) + 65
    assert book.prune(NOW + 399 + 1000) == 0
    assert book.prune(NOW + 399 + 1001) == 1
    assert len(book) == 0


def test_book_config_is_checked() -> None:

    with pytest.raises(ConfigError):
        RecordBook(max_worlds=0)
    with pytest.raises(ConfigError):
        RecordBook(max_age=0)
    RecordBook(max_future_skew=0)
