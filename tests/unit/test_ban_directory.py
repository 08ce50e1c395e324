"""The node's ban directory: only the world owner's newer lists get in, they are on disk
before they are relayed, and a restart keeps the newest."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from fluxnode.chain.bans import sign_ban_list
from fluxnode.core.errors import BanListInvalid, StateStoreError
from fluxnode.core.session.bans import BanBook, BanList
from fluxnode.node.bans import BANS_DB, BanDirectory, BanStore

NOW = 1_780_000_000
ME = "12D3KooWme"
PEER = "12D3KooWpeer"
A = "0x" + "ab" * 20
B = "0x" + "0c" * 20
C = "0x" + "ef" * 20


def owner() -> LocalAccount:
    acct: LocalAccount = Account.create()
    return acct


def signed(acct: LocalAccount, seq: int, banned: list[str], **kw: Any) -> BanList:
    args: dict[str, Any] = {"world_id": f"{acct.address.lower()}/plaza", "issued_at": NOW}
    args.update(kw)
    return sign_ban_list(account=acct, seq=seq, banned=banned, **args)


def directory(tmp_path: Path | None = None, **kw: Any) -> BanDirectory:
    store = BanStore(tmp_path / BANS_DB) if tmp_path is not None else None
    return BanDirectory(oracle=None, own_peer_id=ME, store=store, clock=lambda: NOW, **kw)


async def close(d: BanDirectory) -> None:
    if d.store is not None:
        await d.store.aclose()


def stored_rows(tmp_path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(tmp_path / BANS_DB) as db:
        return [(str(w), int(s)) for w, s in db.execute("SELECT world_id, seq FROM ban_lists")]


async def test_newer_list_replaces_and_is_banned_answers(tmp_path: Path) -> None:
    alice = owner()
    d = directory(tmp_path)
    try:
        world = f"{alice.address.lower()}/plaza"
        assert not d.is_banned(world, A)
        assert await d.offer(signed(alice, 1, [A, B]).to_wire(), forwarder=PEER)
        assert d.is_banned(world, A.upper().replace("0X", "0x"))  # any letter case
        assert d.is_banned(world, B) and not d.is_banned(world, C)
        assert not d.is_banned("land:1", A)  # another world
        assert await d.offer(signed(alice, 2, [C]).to_wire(), forwarder=PEER)
        assert not d.is_banned(world, A) and d.is_banned(world, C)  # A's ban lifted
        assert stored_rows(tmp_path) == [(world, 2)]
        assert d.statistics()["worlds"] == 1 and d.statistics()["banned"] == 1
    finally:
        await close(d)


async def test_forged_wrong_owner_tampered_and_older_lists_change_nothing(tmp_path: Path) -> None:
    alice, mallory = owner(), owner()
    world = f"{alice.address.lower()}/plaza"
    d = directory(tmp_path)
    try:
        good = signed(alice, 5, [A])
        assert await d.offer(good.to_wire(), forwarder=PEER)
        # mallory signs a list for alice's world: a personal world is its address's alone
        wrong_owner = signed(mallory, 9, [], world_id=world)
        # a list naming alice as owner but signed by mallory
        forged = BanList(world, 9, (), alice.address, NOW, signed(mallory, 9, []).signature)
        tampered = good.to_wire().replace(b'"seq":5', b'"seq":6')
        older = signed(alice, 4, [])
        same_seq_other_payload = signed(alice, 5, [B])
        from_future = signed(alice, 10, [], issued_at=NOW + 3600)
        cases = [
            (wrong_owner.to_wire(), "rejected", "not_world_owner"),
            (forged.to_wire(), "rejected", "signer_mismatch"),
            (tampered, "rejected", "signer_mismatch"),
            (b'{"v":1}', "rejected", "malformed"),
            (from_future.to_wire(), "rejected", "from_future"),
            (older.to_wire(), "stale", None),
            (same_seq_other_payload.to_wire(), "stale", None),
        ]
        for data, counter, reason in cases:
            before = dict(vars(d.stats))
            assert not await d.offer(data, forwarder=PEER)
            assert vars(d.stats)[counter] == before[counter] + 1
            if reason is not None:
                assert d.rejections[reason] >= 1
            assert d.get(world) == good  # nothing changed
            assert d.is_banned(world, A) and not d.is_banned(world, B)
            assert stored_rows(tmp_path) == [(world, 5)]
    finally:
        await close(d)


async def test_own_publication_is_let_out_once_held() -> None:
    alice = owner()
    d = directory()
    bl = signed(alice, 1, [A])
    assert await d.publish_local(bl.to_wire()) == bl
    # py-libp2p validates our own message on its way out: held already, so let it go
    assert await d.offer(bl.to_wire(), forwarder=ME)
    # the same bytes from a peer are a duplicate: not relayed again
    assert not await d.offer(bl.to_wire(), forwarder=PEER)
    with pytest.raises(BanListInvalid) as info:
        await d.publish_local(bl.to_wire())
    assert info.value.reason == "stale"
    with pytest.raises(BanListInvalid) as info:
        await d.publish_local(signed(owner(), 2, [], world_id=bl.world_id).to_wire())
    assert info.value.reason == "not_world_owner"
    assert d.get(bl.world_id) == bl


async def test_restart_keeps_the_newest_and_refuses_a_rollback(tmp_path: Path) -> None:
    alice, bob = owner(), owner()
    d = directory(tmp_path)
    for seq, banned in ((1, [A]), (3, [A, B]), (2, [])):  # the older 2 arrives late
        await d.offer(signed(alice, seq, banned).to_wire(), forwarder=PEER)
    await d.offer(signed(bob, 7, [C]).to_wire(), forwarder=PEER)
    await close(d)

    again = directory(tmp_path)
    try:
        assert await again.load() == 2
        world = f"{alice.address.lower()}/plaza"
        held = again.get(world)
        assert held is not None and held.seq == 3 and held.banned == tuple(sorted([A, B]))
        assert again.is_banned(f"{bob.address.lower()}/plaza", C)
        assert not await again.offer(signed(alice, 2, []).to_wire(), forwarder=PEER)
        assert again.is_banned(world, A)
    finally:
        await close(again)


async def test_damaged_rows_are_dropped_on_load(tmp_path: Path) -> None:
    alice = owner()
    d = directory(tmp_path)
    await d.offer(signed(alice, 1, [A]).to_wire(), forwarder=PEER)
    await close(d)
    with sqlite3.connect(tmp_path / BANS_DB) as db:
        db.execute("INSERT INTO ban_lists VALUES ('land:9', 1, x'00ff')")
        good_wire = db.execute("SELECT wire FROM ban_lists WHERE seq = 1").fetchone()[0]
        db.execute("INSERT INTO ban_lists VALUES ('land:10', 1, ?)", (good_wire,))  # misfiled
    again = directory(tmp_path)
    try:
        assert await again.load() == 1
        assert again.stats.dropped_on_load == 2
        assert stored_rows(tmp_path) == [(f"{alice.address.lower()}/plaza", 1)]
    finally:
        await close(again)


class FailingStore(BanStore):
    async def save(self, ban_list: BanList) -> None:
        raise StateStoreError("disk full")


async def test_a_list_that_cannot_be_stored_is_not_taken(tmp_path: Path) -> None:
    alice = owner()
    d = BanDirectory(oracle=None, own_peer_id=ME, store=FailingStore(tmp_path / BANS_DB))
    try:
        bl = signed(alice, 1, [A], issued_at=0)
        assert not await d.offer(bl.to_wire(), forwarder=PEER)
        assert d.get(bl.world_id) is None and d.stats.store_failures == 1
        with pytest.raises(StateStoreError):
            await d.publish_local(bl.to_wire())
        assert d.get(bl.world_id) is None
    finally:
        await close(d)


async def test_full_book_refuses_new_worlds(tmp_path: Path) -> None:
    d = directory(tmp_path, book=BanBook(max_worlds=1))
    try:
        alice, bob = owner(), owner()
        assert await d.offer(signed(alice, 1, [A]).to_wire(), forwarder=PEER)
        with pytest.raises(BanListInvalid) as info:
            await d.publish_local(signed(bob, 1, [A]).to_wire())
        assert info.value.reason == "full"
        assert await d.offer(signed(alice, 2, [B]).to_wire(), forwarder=PEER)  # held world
        assert len(stored_rows(tmp_path)) == 1
    finally:
        await close(d)


async def test_land_world_without_a_chain_fails_closed() -> None:
    d = directory()
    bl = signed(owner(), 1, [A], world_id="land:42")
    assert not await d.offer(bl.to_wire(), forwarder=PEER)
    assert d.rejections == {"chain_unavailable": 1}
    assert d.get("land:42") is None


async def test_a_list_that_is_no_news_costs_no_signature_check() -> None:
    alice = owner()
    d = directory()
    assert await d.offer(signed(alice, 5, [A]).to_wire(), forwarder=PEER)
    calls = 0
    verify = d._verify

    async def counting(ban_list: BanList) -> BanList:
        nonlocal calls
        calls += 1
        return await verify(ban_list)

    d._verify = counting  # type: ignore[method-assign]
    old_forgery = signed(owner(), 3, [], world_id=f"{alice.address.lower()}/plaza")
    assert not await d.offer(old_forgery.to_wire(), forwarder=PEER)
    assert calls == 0 and d.stats.stale == 1 and d.stats.rejected == 0
    assert await d.offer(signed(alice, 6, []).to_wire(), forwarder=PEER)
    assert calls == 1
