"""Sign-in nonces: the SQLite-backed book behaves like the in-memory one, and keeps outstanding
and spent nonces across a restart, so a restart never re-accepts a spent nonce."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from fluxnode.chain.nonce_store import SqliteNonceBook
from fluxnode.chain.siwe_verify import SiweVerifier
from fluxnode.core.errors import StateStoreError
from fluxnode.core.siwe import NonceBook, SiweError, SiweMessage, SiweUsageError, format_timestamp

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

Factory = Callable[..., Any]


@pytest.fixture(params=["memory", "sqlite"])
def make_book(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    opened: list[SqliteNonceBook] = []

    def make(**kw: Any) -> Any:
        if request.param == "memory":
            return NonceBook(**kw)
        book = SqliteNonceBook(tmp_path / f"nonces{len(opened)}.db", **kw)
        opened.append(book)
        return book

    yield make
    for book in opened:
        book.close()


def reason(book: Any, nonce: str, now: datetime) -> str:
    with pytest.raises(SiweError) as info:
        book.consume(nonce, now)
    return info.value.reason


# -- the same behaviour as NonceBook ------------------------------------------------------------


def test_single_use(make_book: Factory) -> None:
    book = make_book(ttl=timedelta(minutes=5))
    nonce = book.issue(T0)
    assert len(nonce) == NonceBook.NONCE_LENGTH and nonce.isalnum() and nonce.isascii()
    book.check(nonce, T0)
    book.consume(nonce, T0 + timedelta(seconds=1))
    assert reason(book, nonce, T0 + timedelta(seconds=2)) == "nonce_reused"
    with pytest.raises(SiweError, match="nonce_reused"):
        book.check(nonce, T0)
    assert reason(book, "neverIssued123", T0) == "nonce_invalid"
    assert reason(book, "", T0) == "nonce_invalid"
    stats = book.statistics()
    assert (stats.issued, stats.consumed, stats.rejected_reused, stats.rejected_unknown) == (
        1,
        1,
        1,
        2,
    )
    assert stats.outstanding == 0 and stats.remembered_spent == 1


def test_expiry(make_book: Factory) -> None:
    book = make_book(ttl=timedelta(minutes=5))
    a = book.issue(T0)
    b = book.issue(T0 + timedelta(minutes=1))
    book.consume(b, T0 + timedelta(minutes=5, seconds=59))
    assert reason(book, a, T0 + timedelta(minutes=5)) == "nonce_invalid"
    assert book.statistics().expired == 1
    # the spent b is forgotten once it would have expired: then it is merely unknown
    assert reason(book, b, T0 + timedelta(minutes=6)) == "nonce_invalid"


def test_expiry_with_a_clock_that_went_back(make_book: Factory) -> None:
    book = make_book(ttl=timedelta(minutes=5))
    late = book.issue(T0 + timedelta(hours=1))
    early = book.issue(T0)
    assert reason(book, early, T0 + timedelta(minutes=5)) == "nonce_invalid"
    book.consume(late, T0 + timedelta(minutes=5))


def test_eviction_of_the_oldest_and_bounded_spent(make_book: Factory) -> None:
    book = make_book(max_outstanding=3)
    first, *rest = [book.issue(T0 + timedelta(seconds=i)) for i in range(4)]
    assert len(book) == 3
    assert reason(book, first, T0 + timedelta(seconds=5)) == "nonce_invalid"
    for n in rest:
        book.consume(n, T0 + timedelta(seconds=5))
    stats = book.statistics()
    assert stats.evicted == 1 and stats.consumed == 3
    assert stats.remembered_spent == 3
    book.issue(T0)
    book.consume(book.issue(T0), T0)
    assert book.statistics().remembered_spent == 3  # capped at max_outstanding too
    # the one spent longest ago was forgotten first
    assert reason(book, rest[0], T0) == "nonce_invalid"
    assert reason(book, rest[2], T0) == "nonce_reused"


def test_usage_errors(make_book: Factory) -> None:
    with pytest.raises(SiweUsageError):
        make_book(ttl=timedelta(0))
    with pytest.raises(SiweUsageError):
        make_book(max_outstanding=0)
    with pytest.raises(SiweUsageError):
        make_book().issue(datetime(2026, 1, 1))


# -- across restarts and handles ----------------------------------------------------------------


def test_a_restart_keeps_outstanding_nonces_and_never_re_accepts_a_spent_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nonces.db"
    book = SqliteNonceBook(path)
    spent, waiting = book.issue(T0), book.issue(T0)
    book.consume(spent, T0)
    book.close()

    again = SqliteNonceBook(path)
    assert reason(again, spent, T0 + timedelta(seconds=1)) == "nonce_reused"
    again.consume(waiting, T0 + timedelta(seconds=1))  # a sign-in in flight survives
    assert reason(again, waiting, T0 + timedelta(seconds=2)) == "nonce_reused"
    again.close()


def test_two_handles_on_one_file_spend_a_nonce_once(tmp_path: Path) -> None:
    path = tmp_path / "nonces.db"
    books = [SqliteNonceBook(path) for _ in range(4)]
    nonces = [books[0].issue(T0) for _ in range(20)]
    wins: list[str] = []
    losses: list[str] = []
    start = threading.Barrier(len(books))

    def spend(book: SqliteNonceBook) -> None:
        start.wait()
        for n in nonces:
            try:
                book.consume(n, T0)
                wins.append(n)
            except SiweError as exc:
                losses.append(exc.reason)

    threads = [threading.Thread(target=spend, args=(b,)) for b in books]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == sorted(nonces)  # each nonce spent exactly once
    assert losses == ["nonce_reused"] * (len(nonces) * (len(books) - 1))
    for b in books:
        b.close()


def test_an_unusable_file_is_a_state_store_error(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError):
        SqliteNonceBook(tmp_path)  # a directory, not a database file


async def test_a_replayed_sign_in_is_refused_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "nonces.db"
    key = Account.create()
    now = T0

    def verifier() -> SiweVerifier:
        return SiweVerifier(
            domain="worlds.example",
            chain_id=80002,
            nonces=SqliteNonceBook(path),
            clock=lambda: now,
        )

    v = verifier()
    msg = SiweMessage(
        scheme="https",
        domain="worlds.example",
        address=key.address,
        statement=None,
        uri="https://worlds.example/",
        chain_id=80002,
        nonce=v.issue_nonce(),
        issued_at=format_timestamp(now),
        expiration_time=format_timestamp(now + timedelta(minutes=5)),
    )
    text = msg.to_text()
    signature = bytes(key.sign_message(encode_defunct(text=text)).signature)
    assert (await v.verify(text, signature)).address == key.address
    assert isinstance(v.nonces, SqliteNonceBook)
    v.nonces.close()

    restarted = verifier()
    with pytest.raises(SiweError) as info:
        await restarted.verify(text, signature)
    assert info.value.reason == "nonce_reused"
    assert isinstance(restarted.nonces, SqliteNonceBook)
    restarted.nonces.close()
