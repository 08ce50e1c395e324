"""Owner-signed ban lists: canonical text, strict wire form, signature checks, highest seq wins."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from fluxnode.chain.bans import sign_ban_list, verify_ban_list
from fluxnode.core.errors import BanListInvalid
from fluxnode.core.session.bans import (
    BAN_HEADER,
    MAX_BAN_WIRE_BYTES,
    MAX_BANNED,
    BanBook,
    BanList,
    UnsignedBanList,
    ban_list_from_wire,
)
from fluxnode.core.world_record import HEADER as RECORD_HEADER

NOW = 1_780_000_000
A = "0x" + "ab" * 20
B = "0x" + "0c" * 20


def account() -> LocalAccount:
    acct: LocalAccount = Account.create()
    return acct


def signed(acct: LocalAccount, **kw: Any) -> BanList:
    args: dict[str, Any] = {
        "world_id": f"{acct.address.lower()}/plaza",
        "seq": 1,
        "banned": [A.upper().replace("0X", "0x"), B, B],
        "issued_at": NOW,
    }
    args.update(kw)
    return sign_ban_list(account=acct, **args)


def test_signing_text_and_wire_round_trip() -> None:
    acct = account()
    bl = signed(acct)
    assert bl.banned == (B, A)  # lower-case, sorted, unique
    lines = bl.signing_text().split("\n")
    assert lines[0] == BAN_HEADER != RECORD_HEADER
    assert lines[-3:] == ["banned: 2 addresses", B, A]
    assert ban_list_from_wire(bl.to_wire()) == bl
    assert bl.is_banned(A.upper().replace("0X", "0x"))
    empty = signed(acct, banned=[])
    assert empty.signing_text().endswith("banned: none")


async def test_verify_personal_world() -> None:
    acct = account()
    await verify_ban_list(signed(acct), oracle=None, now=NOW)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("from_future", "from_future"),
        ("other_signer", "signer_mismatch"),
        ("other_world", "not_world_owner"),
        ("land_without_chain", "chain_unavailable"),
        ("bad_signature", "bad_signature"),
    ],
)
async def test_verify_refuses(case: str, expected: str) -> None:
    acct, mallory = account(), account()
    bl = signed(acct)
    if case == "from_future":
        bl = signed(acct, issued_at=NOW + 301)
    elif case == "other_signer":
        bl = replace(signed(mallory, world_id=bl.world_id), owner=acct.address)
    elif case == "other_world":
        bl = signed(mallory, world_id=bl.world_id)
    elif case == "land_without_chain":
        bl = signed(acct, world_id="land:7")
    elif case == "bad_signature":
        bl = replace(bl, signature=b"\x00" * 64 + b"\x1b")
    with pytest.raises(BanListInvalid) as info:
        await verify_ban_list(bl, oracle=None, now=NOW)
    assert info.value.reason == expected


def test_wire_is_strict() -> None:
    good = signed(account())
    obj = json.loads(good.to_wire())

    def wire(**changes: Any) -> bytes:
        o = {**obj, **changes}
        return json.dumps(o, sort_keys=True, separators=(",", ":")).encode()

    bad = [
        b"",
        b"[]",
        b"\xff",
        good.to_wire().replace(b",", b", ", 1),  # not canonical
        good.to_wire()[:-1] + b',"x":1}',
        wire(seq=True),
        wire(seq=1.0),
        wire(seq=0),
        wire(v=2),
        wire(banned=[A.upper()]),
        wire(banned=[A, A]),  # canonical form has no duplicates
        wire(banned="0x"),
        wire(owner=obj["owner"].lower()),
        wire(world_id="land:01"),
        wire(signature="0x" + "00" * 64 + "05"),
        wire(signature="0x00"),
        b'{"seq":1,"seq":2}',
        b'{"seq":NaN}',
    ]
    for data in bad:
        with pytest.raises(BanListInvalid) as info:
            ban_list_from_wire(data)
        assert info.value.reason == "malformed", data
    with pytest.raises(BanListInvalid) as info:
        ban_list_from_wire(b" " * (MAX_BAN_WIRE_BYTES + 1))
    assert info.value.reason == "too_large"
    with pytest.raises(BanListInvalid):
        signed(account(), banned=[f"0x{i:040x}" for i in range(MAX_BANNED + 1)])


def test_a_full_list_fits_the_wire_bound() -> None:
    bl = signed(account(), banned=[f"0x{i:040x}" for i in range(MAX_BANNED)])
    assert len(bl.to_wire()) <= MAX_BAN_WIRE_BYTES
    assert ban_list_from_wire(bl.to_wire()) == bl


def test_model_checks() -> None:
    with pytest.raises(BanListInvalid):
        UnsignedBanList(world_id="x", seq=1, banned=(), owner=A, issued_at=NOW)


def test_ban_book_highest_seq_wins() -> None:
    acct = account()
    book = BanBook(max_worlds=1)
    one, two = signed(acct, seq=1), signed(acct, seq=2, banned=[])
    assert book.offer(one)
    assert book.offer(two)
    assert not book.offer(one)  # stale
    assert not book.offer(signed(acct, seq=2))  # same seq, another payload: keep the held one
    assert book.get(one.world_id) == two
    assert not book.offer(signed(account()))  # full: a new world is refused, nothing evicted
    assert len(book) == 1
