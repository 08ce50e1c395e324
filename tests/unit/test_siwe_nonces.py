"""NonceBook: single use, expiry, eviction, usage errors (injected clock)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from fluxnode.core.siwe import (
    NonceBook,
    SiweError,
    SiweUsageError,
)
from tests.unit.siwe_samples import (
    T0,
)

# -- NonceBook ---------------------------------------------------------------------------------


def nonce_reason(book: NonceBook, nonce: str, now: datetime) -> str:
    with pytest.raises(SiweError) as info:
        book.consume(nonce, now)
    return info.value.reason


def test_nonce_single_use() -> None:
    book = NonceBook(ttl=timedelta(minutes=5))
    nonce = book.issue(T0)
    assert len(nonce) >= 8 and nonce.isalnum() and nonce.isascii()
    book.check(nonce, T0)
    book.consume(nonce, T0 + timedelta(seconds=1))
    assert nonce_reason(book, nonce, T0 + timedelta(seconds=2)) == "nonce_reused"
    with pytest.raises(SiweError, match="nonce_reused"):
        book.check(nonce, T0)
    assert nonce_reason(book, "neverIssued123", T0) == "nonce_invalid"
    assert nonce_reason(book, "", T0) == "nonce_invalid"
    stats = book.statistics()
    assert (stats.issued, stats.consumed, stats.rejected_reused, stats.rejected_unknown) == (
        1,
        1,
        1,
        2,
    )
    assert stats.outstanding == 0 and stats.remembered_spent == 1


def test_nonces_are_distinct_and_random() -> None:
    book = NonceBook()
    nonces = {book.issue(T0) for _ in range(1000)}
    assert len(nonces) == 1000
    assert all(len(n) == NonceBook.NONCE_LENGTH for n in nonces)


def test_nonce_expiry() -> None:
    book = NonceBook(ttl=timedelta(minutes=5))
    a = book.issue(T0)
    b = book.issue(T0 + timedelta(minutes=1))
    book.consume(b, T0 + timedelta(minutes=5, seconds=59))
    assert nonce_reason(book, a, T0 + timedelta(minutes=5)) == "nonce_invalid"  # expired
    with pytest.raises(SiweError, match="nonce_invalid"):
        book.check(a, T0 + timedelta(minutes=5))
    assert book.statistics().expired == 1
    # the spent b is forgotten once it would have expired: then it is merely unknown
    assert nonce_reason(book, b, T0 + timedelta(minutes=6)) == "nonce_invalid"


def test_nonce_expiry_with_a_clock_that_went_back() -> None:
    book = NonceBook(ttl=timedelta(minutes=5))
    late = book.issue(T0 + timedelta(hours=1))
    early = book.issue(T0)  # clock stepped back: issued after `late` but expires first
    assert nonce_reason(book, early, T0 + timedelta(minutes=5)) == "nonce_invalid"
    book.consume(late, T0 + timedelta(minutes=5))


def test_nonce_eviction_of_the_oldest() -> None:
    book = NonceBook(max_outstanding=3)
    first, *rest = [book.issue(T0 + timedelta(seconds=i)) for i in range(4)]
    assert len(book) == 3
    assert nonce_reason(book, first, T0 + timedelta(seconds=5)) == "nonce_invalid"
    for n in rest:
        book.consume(n, T0 + timedelta(seconds=5))
    stats = book.statistics()
    assert stats.evicted == 1 and stats.consumed == 3
    assert stats.remembered_spent == 3  # capped at max_outstanding too
    book.issue(T0)
    book.consume(book.issue(T0), T0)
    assert book.statistics().remembered_spent == 3


def test_nonce_book_usage_errors() -> None:
    with pytest.raises(SiweUsageError):
        NonceBook(ttl=timedelta(0))
    with pytest.raises(SiweUsageError):
        NonceBook(max_outstanding=0)
    with pytest.raises(SiweUsageError):
        NonceBook().issue(datetime(2026, 1, 1))
