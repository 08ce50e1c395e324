"""Chat: length and content bounds, rate per author, duplicates, history for late joiners."""

from __future__ import annotations

import dataclasses

import pytest

from fluxnode.core.errors import ChatRejected
from fluxnode.core.session.chat import ChatMessage, ChatRoom

ALICE, BOB = "0x" + "a" * 40, "0x" + "b" * 40


def verify(m: ChatMessage) -> bool:
    return m.signature == b"sig:" + m.author.encode()


def msg(text: str, now: float, author: str = ALICE, instance: str = "i1") -> ChatMessage:
    return ChatMessage(instance, author, text, int(now * 1000), b"sig:" + author.encode())


def room(**kw: float) -> ChatRoom:
    return ChatRoom("i1", verify, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("x" * 501, "501 characters, over the 500-character limit"),
        ("bell\x07", "control characters"),
        ("line\u2028sep", "control characters"),
    ],
)
def test_bad_text_is_refused_and_not_kept(text: str, reason: str) -> None:
    r = room()
    with pytest.raises(ChatRejected, match=reason):
        r.receive(msg(text, 100.0), 100.0)
    assert r.history() == []


def test_500_characters_and_newlines_are_fine() -> None:
    r = room()
    assert r.receive(msg("é" * 499 + "\n", 100.0), 100.0)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (dataclasses.replace(msg("hi", 100.0), signature=b"forged"), "bad signature"),
        (msg("hi", 100.0, instance="i2"), "another instance"),
        (msg("hi", 200.0), "dated too far"),
        (msg("hi", 100.0, author=""), "author"),
    ],
)
def test_bad_messages_are_refused(message: ChatMessage, reason: str) -> None:
    r = room()
    with pytest.raises(ChatRejected, match=reason):
        r.receive(message, 100.0)
    assert r.history() == []


def test_rate_limit_per_author_with_injected_time() -> None:
    r = room(rate=1.0, burst=3)
    for i in range(3):
        assert r.receive(msg(f"m{i}", 100.0), 100.0)
    with pytest.raises(ChatRejected, match=r"wait 1\.0 s"):
        r.receive(msg("m3", 100.0), 100.0)
    assert r.receive(msg("bob's turn", 100.0, author=BOB), 100.0)  # others are unaffected
    assert r.receive(msg("m4", 101.0), 101.0)  # one token back after a second
    assert len(r.history()) == 5


def test_duplicates_are_ignored_and_do_not_cost_rate() -> None:
    r = room(rate=1.0, burst=1)
    m = msg("hello", 100.0)
    assert r.receive(m, 100.0)
    assert not r.receive(m, 100.0)  # the same message relayed by another node
    assert len(r.history()) == 1


def test_history_keeps_the_last_50_in_a_stable_order() -> None:
    a, b = room(rate=1000.0, burst=1000), room(rate=1000.0, burst=1000)
    messages = [msg(f"m{i}", 100.0 + i / 100) for i in range(60)]
    for m in messages:
        a.receive(m, 101.0)
    for m in reversed(messages):
        b.receive(m, 101.0)
    assert [m.text for m in a.history()] == [f"m{i}" for i in range(10, 60)]
    assert a.history() == b.history()
