"""The sans-IO Bitswap engine driven as in-memory peers with injected time."""

from __future__ import annotations

import hashlib

import pytest

from fluxnode.core.bitswap_engine import (
    MIN_SCORE,
    BitswapEngine,
    BlockReceived,
    EngineLimits,
    Lookup,
    TooManyWants,
    WantFailed,
)
from fluxnode.core.bitswap_wire import (
    MAX_WANTLIST_ENTRIES,
    BlockPayload,
    Message,
    Presence,
    PresenceType,
    WantEntry,
    WantType,
    cid_prefix,
)
from fluxnode.core.cid import RAW, Cid
from fluxnode.core.errors import LocalError


def block(i: int, size: int = 1000) -> tuple[Cid, bytes]:
    data = i.to_bytes(4, "big") * (size // 4)
    return Cid.v1(RAW, hashlib.sha256(data).digest()), data


class Peer:
    """An engine plus the blocks it holds; `answer_lookups` plays the I/O layer's store."""

    def __init__(self, name: str, limits: EngineLimits | None = None) -> None:
        self.name = name
        self.engine: BitswapEngine[str] = BitswapEngine(limits)
        self.store: dict[bytes, bytes] = {}
        self.events: list[BlockReceived[str] | WantFailed] = []

    def hold(self, cid: Cid, data: bytes) -> None:
        self.store[cid.multihash] = data

    def answer_lookups(self, now: float = 0.0) -> int:
        lookups = []
        while (ev := self.engine.next_event()) is not None:
            if isinstance(ev, Lookup):
                lookups.append(ev)
            else:
                self.events.append(ev)
        for lk in lookups:
            self.engine.block_ready(lk.peer, lk.cid, self.store.get(lk.cid.multihash), now)
        return len(lookups)

    def outgoing(self, now: float = 0.0) -> list[tuple[str, Message]]:
        while self.answer_lookups(now):
            pass
        return self.engine.messages_to_send(now)


def exchange(peers: dict[str, Peer], now: float = 0.0, rounds: int = 50) -> None:
    """Deliver every message until nobody has anything more to say."""
    for _ in range(rounds):
        moved = False
        for p in peers.values():
            for dest, msg in p.outgoing(now):
                moved = True
                p.engine.message_sent(dest, msg, now)
                if dest in peers:
                    peers[dest].engine.receive_message(p.name, msg, now)
        if not moved:
            for p in peers.values():
                p.answer_lookups(now)
            return
    raise AssertionError("peers kept talking")


def wants(*cids: Cid, want_type: WantType = WantType.BLOCK, dont_have: bool = True) -> Message:
    return Message(
        wantlist=tuple(WantEntry(c, want_type=want_type, send_dont_have=dont_have) for c in cids)
    )


def test_alice_fetches_a_block_from_bob() -> None:
    alice, bob = Peer("alice"), Peer("bob")
    cid, data = block(1)
    bob.hold(cid, data)
    alice.engine.want(cid, ["bob"], 0.0, tag=7)
    exchange({"alice": alice, "bob": bob})
    assert alice.events == [BlockReceived(7, cid, data, "bob")]
    assert alice.engine.get_timer() is None
    assert alice.engine.statistics().wants == 0
    assert bob.engine.statistics().server.blocks_sent == 1


def test_a_peer_asking_for_1000_blocks_cannot_starve_one_asking_for_1() -> None:
    limits = EngineLimits(max_active_peers=1, send_budget=4000)
    server = Peer("server", limits)
    many = [block(i) for i in range(1000)]
    for cid, data in many:
        server.hold(cid, data)
    single_cid, single = block(5000)
    server.hold(single_cid, single)
    server.engine.receive_message("greedy", wants(*(c for c, _ in many)), 0.0)
    server.engine.receive_message("modest", wants(single_cid), 0.0)

    order: list[str] = []
    while len(order) < 5:
        out = server.outgoing()
        assert len(out) == 1  # max_active_peers=1: one reply in flight at a time
        peer, msg = out[0]
        order.append(peer)
        assert sum(len(b.data) for b in msg.blocks) <= 4000  # the per-message byte budget
        server.engine.message_sent(peer, msg, 0.0)
    assert order[:2] == ["greedy", "modest"]
    assert order[2:] == ["greedy"] * 3


def test_replies_respect_the_byte_budget_but_a_large_block_still_goes() -> None:
    server = Peer("server", EngineLimits(send_budget=2500))
    small = [block(i) for i in range(10)]
    big_cid, big = block(99, size=8000)
    for cid, data in [*small, (big_cid, big)]:
        server.hold(cid, data)
    server.engine.receive_message("p", wants(big_cid, *(c for c, _ in small)), 0.0)
    sizes = []
    while out := server.outgoing():
        ((peer, msg),) = out
        sizes.append([len(b.data) for b in msg.blocks])
        server.engine.message_sent(peer, msg, 0.0)
    assert sizes[0] == [8000]  # alone, although larger than the budget
    assert all(sum(s) <= 2500 for s in sizes[1:])
    assert sum(len(s) for s in sizes) == 11


def test_max_active_peers_bounds_concurrent_turns() -> None:
    server = Peer("server", EngineLimits(max_active_peers=2))
    cids = []
    for i in range(3):
        cid, data = block(i)
        server.hold(cid, data)
        cids.append(cid)
        server.engine.receive_message(f"p{i}", wants(cid), 0.0)
    lookups = []
    while (ev := server.engine.next_event()) is not None:
        assert isinstance(ev, Lookup)
        lookups.append(ev.peer)
    assert lookups == ["p0", "p1"]
    assert server.engine.statistics().active_peers == 2


def test_silence_moves_the_want_to_the_next_peer_then_retries_then_fails() -> None:
    alice = Peer("alice", EngineLimits(want_timeout_s=5.0, want_rounds=2))
    cid, _ = block(1)
    alice.engine.want(cid, ["bob", "carol"], 100.0)
    assert [p for p, _ in alice.outgoing(100.0)] == ["bob"]
    assert alice.engine.get_timer() == 105.0

    alice.engine.handle_timer(104.9)  # not yet due
    assert alice.outgoing(104.9) == []
    alice.engine.handle_timer(105.0)
    assert [p for p, _ in alice.outgoing(105.0)] == ["carol"]
    alice.engine.handle_timer(110.0)
    assert [p for p, _ in alice.outgoing(110.0)] == ["bob"]  # second round
    alice.engine.handle_timer(115.0)
    assert [p for p, _ in alice.outgoing(115.0)] == ["carol"]
    alice.engine.handle_timer(120.0)
    out = alice.outgoing(120.0)
    # the want failed: both peers that may still hold it are told to cancel
    assert sorted(p for p, _ in out) == ["bob", "carol"]
    assert all(e.cancel for _, m in out for e in m.wantlist)
    assert alice.events == [
        WantFailed(0, cid, "0 peer(s) answered DONT_HAVE, 2 did not deliver it")
    ]
    assert alice.engine.get_timer() is None
    assert alice.engine.statistics().timeouts == 4


def test_dont_have_rotates_at_once_and_the_refusing_peer_is_not_asked_again() -> None:
    alice, bob, carol = Peer("alice"), Peer("bob"), Peer("carol")
    cid, data = block(1)
    alice.engine.want(cid, ["bob", "carol"], 0.0)
    exchange({"alice": alice, "bob": bob, "carol": carol})
    assert alice.events == [
        WantFailed(0, cid, "2 peer(s) answered DONT_HAVE, 0 did not deliver it")
    ]
    assert alice.engine.statistics().dont_haves == 2

    # now carol has it: asked in order, bob refuses, carol delivers
    carol.hold(cid, data)
    alice.events.clear()
    alice.engine.want(cid, ["bob", "carol"], 1.0)
    exchange({"alice": alice, "bob": bob, "carol": carol}, 1.0)
    assert alice.events == [BlockReceived(0, cid, data, "carol")]


def test_a_block_from_the_second_peer_cancels_the_want_at_the_silent_first() -> None:
    alice = Peer("alice", EngineLimits(want_timeout_s=1.0))
    cid, data = block(1)
    alice.engine.want(cid, ["bob", "carol"], 0.0)
    alice.outgoing(0.0)
    alice.engine.handle_timer(1.0)
    alice.outgoing(1.0)
    alice.engine.receive_message(
        "carol", Message(blocks=(BlockPayload(cid_prefix(cid), data),)), 1.5
    )
    alice.answer_lookups()
    assert alice.events == [BlockReceived(0, cid, data, "carol")]
    out = alice.outgoing(1.5)
    assert out == [("bob", Message(wantlist=(WantEntry(cid, cancel=True),)))]


def test_a_failed_send_moves_the_want_on() -> None:
    alice = Peer("alice")
    cid, _ = block(1)
    alice.engine.want(cid, ["bob", "carol"], 0.0)
    ((peer, msg),) = alice.outgoing()
    alice.engine.message_sent(peer, msg, 0.0, ok=False)
    assert [p for p, _ in alice.outgoing()] == ["carol"]
    assert alice.engine.statistics().want_send_failures == 1


def test_blocks_we_did_not_want_lower_the_score_until_the_peer_is_ignored() -> None:
    alice = Peer("alice")
    wanted, data = block(1)
    alice.engine.want(wanted, ["mallory", "bob"], 0.0)
    alice.outgoing()
    junk = [block(i + 100) for i in range(-MIN_SCORE + 1)]
    for cid, payload in junk:  # valid blocks, but not what we asked for
        alice.engine.receive_message(
            "mallory", Message(blocks=(BlockPayload(cid_prefix(cid), payload),)), 0.0
        )
    assert alice.engine.is_ignored("mallory")
    assert alice.engine.statistics().unwanted_blocks == -MIN_SCORE + 1
    # the want moved past mallory at once, and mallory is no longer heard
    assert [p for p, _ in alice.outgoing()] == ["bob"]
    alice.engine.receive_message(
        "mallory", Message(blocks=(BlockPayload(cid_prefix(wanted), data),)), 0.0
    )
    alice.engine.receive_message("mallory", wants(wanted), 0.0)
    assert alice.answer_lookups() == 0 and alice.events == []
    assert alice.engine.statistics().ignored_messages == 2
    # a peer whose want list leads here is skipped from now on
    other, _ = block(2)
    alice.engine.want(other, ["mallory", "bob"], 0.0)
    assert [p for p, _ in alice.outgoing()] == ["bob"]


def test_a_block_whose_data_does_not_match_costs_more_than_a_stray_one() -> None:
    alice = Peer("alice")
    cid, data = block(1)
    alice.engine.want(cid, ["mallory"], 0.0)
    bad_prefix = b"\x01\x55\x99\x20"  # an unsupported hash: cannot be verified
    alice.engine.receive_message("mallory", Message(blocks=(BlockPayload(bad_prefix, data),)), 0.0)
    assert alice.engine.score("mallory") == -10
    tampered = data[:-1] + b"\x00"
    alice.engine.receive_message(
        "mallory", Message(blocks=(BlockPayload(cid_prefix(cid), tampered),)), 0.0
    )
    assert alice.engine.score("mallory") == -11  # hashes to something we never asked for
    alice.answer_lookups()
    assert alice.events == []
    alice.engine.receive_bad_message("mallory", 0.0)
    assert alice.engine.score("mallory") == -31


def test_a_ledger_keeps_at_most_max_wants_per_peer() -> None:
    server = Peer("server", EngineLimits(max_wants_per_peer=10, max_active_peers=1))
    server.engine.receive_message("other", wants(block(999)[0]), 0.0)  # holds the only turn
    cids = [block(i)[0] for i in range(25)]
    server.engine.receive_message("p", wants(*cids), 0.0)
    assert server.engine.wants_of("p") == cids[:10]
    assert server.engine.statistics().server.wants_dropped == 15


def test_ledgers_are_capped_at_max_peers() -> None:
    server = Peer("server", EngineLimits(max_peers=2, max_active_peers=1))
    for i in range(4):
        server.engine.receive_message(f"p{i}", wants(block(i)[0]), 0.0)
    assert server.engine.statistics().ledgers == 2
    assert server.engine.statistics().server.refused_peers == 2


def test_client_wants_are_bounded_and_want_messages_are_split() -> None:
    alice = Peer("alice", EngineLimits(max_wants=MAX_WANTLIST_ENTRIES + 5))
    cids = [block(i)[0] for i in range(MAX_WANTLIST_ENTRIES + 5)]
    for cid in cids:
        alice.engine.want(cid, ["bob"], 0.0)
    with pytest.raises(TooManyWants):
        alice.engine.want(block(90001)[0], ["bob"], 0.0)
    out = alice.outgoing()
    assert [len(m.wantlist) for _, m in out] == [MAX_WANTLIST_ENTRIES, 5]
    with pytest.raises(LocalError, match="at least one peer"):
        alice.engine.want(block(90002)[0], [], 0.0)


def test_a_cancelled_want_is_not_served() -> None:
    server = Peer("server", EngineLimits(max_active_peers=1))
    first, second = block(1), block(2)
    for cid, data in (first, second):
        server.hold(cid, data)
    server.engine.receive_message("other", wants(block(3)[0]), 0.0)  # holds the only turn
    server.engine.receive_message("p", wants(first[0], second[0]), 0.0)
    server.engine.receive_message("p", Message(wantlist=(WantEntry(first[0], cancel=True),)), 0.0)
    assert server.engine.wants_of("p") == [second[0]]
    # a cancel that arrives while the block is being looked up drops it too
    server.answer_lookups()
    ((peer, msg),) = server.outgoing()
    assert peer == "other" and msg.presences == (Presence(block(3)[0], PresenceType.DONT_HAVE),)
    server.engine.message_sent(peer, msg, 0.0)
    lookup = server.engine.next_event()
    assert isinstance(lookup, Lookup) and lookup.cid == second[0]
    server.engine.receive_message("p", Message(wantlist=(WantEntry(second[0], cancel=True),)), 0.0)
    server.engine.block_ready("p", second[0], second[1], 0.0)
    assert server.outgoing() == []
    assert server.engine.statistics().ledgers == 0


def test_client_cancel_tells_the_peer_and_ends_the_want_quietly() -> None:
    alice = Peer("alice")
    cid, _ = block(1)
    alice.engine.want(cid, ["bob"], 0.0, tag=3)
    alice.outgoing()
    alice.engine.cancel(cid, 0.0, tag=3)
    assert alice.outgoing() == [("bob", Message(wantlist=(WantEntry(cid, cancel=True),)))]
    assert alice.engine.get_timer() is None
    alice.answer_lookups()
    assert alice.events == []


def test_want_have_is_answered_with_presences() -> None:
    server = Peer("server")
    held, data = block(1)
    server.hold(held, data)
    missing = block(2)[0]
    server.engine.receive_message("p", wants(held, missing, want_type=WantType.HAVE), 0.0)
    ((_, msg),) = server.outgoing()
    assert msg.blocks == ()
    assert set(msg.presences) == {
        Presence(held, PresenceType.HAVE),
        Presence(missing, PresenceType.DONT_HAVE),
    }


def test_limits_are_checked() -> None:
    with pytest.raises(LocalError, match="send_budget"):
        EngineLimits(send_budget=10 * 1024 * 1024)
    with pytest.raises(LocalError):
        EngineLimits(want_rounds=0)


def test_a_turn_looks_up_only_what_its_reply_can_carry() -> None:
    """UnixFS chunks (256 KiB) and the default 1 MiB budget: three blocks a reply, and no block
    is read only to be put back."""
    server = Peer("server")
    chunks = [block(i, size=256 * 1024) for i in range(12)]
    for cid, data in chunks:
        server.hold(cid, data)
    server.engine.receive_message("p", wants(*(c for c, _ in chunks)), 0.0)
    counts = []
    while out := server.outgoing():
        ((peer, msg),) = out
        counts.append(len(msg.blocks))
        server.engine.message_sent(peer, msg, 0.0)
    assert counts == [3, 3, 3, 3]
    stats = server.engine.statistics().server
    assert (stats.lookups, stats.lookups_put_back, stats.blocks_sent) == (12, 0, 12)
