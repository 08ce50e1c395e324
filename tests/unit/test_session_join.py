"""The join decision: every visibility x allowed/denied x bans x operator denylist x chain down."""

from __future__ import annotations

from typing import Any

import pytest

from fluxnode.core.access import ChainFacts
from fluxnode.core.cid import Cid
from fluxnode.core.errors import BadRequest, LocalError
from fluxnode.core.session.bans import UnsignedBanList
from fluxnode.core.session.join import (
    DENIED_BANNED,
    DENIED_CHAIN_UNAVAILABLE,
    DENIED_NO_TICKET,
    DENIED_NOT_FRIEND,
    DENIED_OPERATOR,
    DENIED_PRIVATE,
    DENIED_RECORD_EXPIRED,
    DENIED_SIGN_IN,
    Admit,
    Deny,
    decide_join,
)
from fluxnode.core.siwe import to_checksum_address
from fluxnode.core.world import Visibility
from fluxnode.core.world_record import DEFAULT_MAX_AGE, UnsignedRecord

OWNER = to_checksum_address("0x" + "a1" * 20)
FRIEND = to_checksum_address("0x" + "b2" * 20)
STRANGER = to_checksum_address("0x" + "c3" * 20)
NOW = 1_780_000_000
CID = Cid.parse("bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354")
PERSONAL = f"{OWNER.lower()}/plaza"
LAND = "land:7"
LISTED = (Visibility.PRIVATE, Visibility.FRIENDS)


def record(world_id: str, visibility: Visibility, *, issued_at: int = NOW) -> UnsignedRecord:
    return UnsignedRecord(
        world_id=world_id,
        cid=CID,
        seq=1,
        visibility=visibility,
        access=(FRIEND.lower(),) if visibility in LISTED else (),
        owner=OWNER,
        issued_at=issued_at,
    )


def bans(world_id: str, *banned: str) -> UnsignedBanList:
    return UnsignedBanList(
        world_id=world_id,
        seq=1,
        banned=tuple(sorted(a.lower() for a in banned)),
        owner=OWNER,
        issued_at=NOW,
    )


def facts(world_id: str, ticket: bool | None) -> ChainFacts:
    """What the oracle gives when the chain answers: the land owner (land worlds) and, for
    ticketed worlds, whether the visitor holds a valid ticket at a confirmed block."""
    return ChainFacts(
        land_owner=OWNER.lower() if world_id == LAND else None, has_valid_ticket=ticket
    )


PUB, PRIV, FRI, TIX = (
    Visibility.PUBLIC,
    Visibility.PRIVATE,
    Visibility.FRIENDS,
    Visibility.TICKETED,
)

# (visibility, world, visitor, has_valid_ticket, expected) with a readable chain.
CHAIN_UP: list[tuple[Visibility, str, str, bool | None, str | None]] = []
for world in (PERSONAL, LAND):
    CHAIN_UP += [
        (PUB, world, STRANGER, None, None),
        (PUB, world, OWNER, None, None),
        (PRIV, world, OWNER, None, None),
        (PRIV, world, FRIEND, None, None),  # a private world's guest list
        (PRIV, world, STRANGER, None, DENIED_PRIVATE),
        (FRI, world, OWNER, None, None),
        (FRI, world, FRIEND, None, None),
        (FRI, world, STRANGER, None, DENIED_NOT_FRIEND),
        (TIX, world, OWNER, False, None),  # the owner needs no ticket
        (TIX, world, STRANGER, True, None),
        (TIX, world, STRANGER, False, DENIED_NO_TICKET),
        (TIX, world, FRIEND, False, DENIED_NO_TICKET),
    ]


def ident(row: tuple[Any, ...]) -> str:
    vis, world, visitor, ticket, expected = row
    who = {OWNER: "owner", FRIEND: "friend", STRANGER: "stranger"}[visitor]
    kind = "land" if world == LAND else "personal"
    return f"{vis.value}-{kind}-{who}-ticket={ticket}-{'admit' if expected is None else 'deny'}"


@pytest.mark.parametrize("row", CHAIN_UP, ids=[ident(r) for r in CHAIN_UP])
def test_chain_up(row: tuple[Visibility, str, str, bool | None, str | None]) -> None:
    vis, world, visitor, ticket, expected = row
    decision = decide_join(record(world, vis), facts(world, ticket), visitor, None, set(), NOW)
    if expected is None:
        assert isinstance(decision, Admit), decision
    else:
        assert decision == Deny(expected)
    # Bans refuse anyone the rule would admit, except the owner; the operator refuses everyone.
    banned = decide_join(
        record(world, vis), facts(world, ticket), visitor, bans(world, visitor), set(), NOW
    )
    if visitor == OWNER:
        assert banned == decision
    else:
        assert banned == Deny(DENIED_BANNED)
    denied = decide_join(
        record(world, vis), facts(world, ticket), visitor, bans(world), {visitor.lower()}, NOW
    )
    assert denied == Deny(DENIED_OPERATOR)


# Chain unavailable (facts None): fail closed wherever a chain fact is needed.
CHAIN_DOWN: list[tuple[Visibility, str, str, str | None]] = [
    (PUB, LAND, STRANGER, None),  # public worlds need no chain
    (PUB, PERSONAL, STRANGER, None),
    (PRIV, LAND, OWNER, DENIED_CHAIN_UNAVAILABLE),  # who owns the land is unknown
    (PRIV, LAND, FRIEND, DENIED_CHAIN_UNAVAILABLE),
    (PRIV, LAND, STRANGER, DENIED_CHAIN_UNAVAILABLE),
    (FRI, LAND, FRIEND, DENIED_CHAIN_UNAVAILABLE),
    (FRI, LAND, STRANGER, DENIED_CHAIN_UNAVAILABLE),
    (TIX, LAND, OWNER, DENIED_CHAIN_UNAVAILABLE),
    (TIX, LAND, STRANGER, DENIED_CHAIN_UNAVAILABLE),
    (TIX, PERSONAL, STRANGER, DENIED_CHAIN_UNAVAILABLE),  # tickets are on chain
    (TIX, PERSONAL, OWNER, None),  # a personal world's owner is in its id
    (PRIV, PERSONAL, FRIEND, None),  # the list is in the signed record
    (PRIV, PERSONAL, STRANGER, DENIED_PRIVATE),
    (FRI, PERSONAL, STRANGER, DENIED_NOT_FRIEND),
]


@pytest.mark.parametrize(
    "row", CHAIN_DOWN, ids=[ident((r[0], r[1], r[2], None, r[3])) for r in CHAIN_DOWN]
)
@pytest.mark.parametrize("down", [None, ChainFacts()], ids=["no-facts", "unknown-facts"])
def test_chain_down(row: tuple[Visibility, str, str, str | None], down: ChainFacts | None) -> None:
    vis, world, visitor, expected = row
    decision = decide_join(record(world, vis), down, visitor, None, frozenset(), NOW)
    if expected is None:
        assert isinstance(decision, Admit), decision
    else:
        assert decision == Deny(expected)


def test_land_owner_on_own_ban_list_with_chain_down_fails_closed() -> None:
    # The owner of a land world is only known from the chain: without it the ban applies.
    world = record(LAND, PUB)
    assert decide_join(world, None, OWNER, bans(LAND, OWNER), set(), NOW) == Deny(DENIED_BANNED)
    up = decide_join(world, facts(LAND, None), OWNER, bans(LAND, OWNER), set(), NOW)
    assert up == Admit("public world")


def test_operator_denylist_comes_first() -> None:
    world = record(PERSONAL, PRIV)
    decision = decide_join(world, None, STRANGER, bans(PERSONAL, STRANGER), {STRANGER.lower()}, NOW)
    assert decision == Deny(DENIED_OPERATOR)
    assert decide_join(world, None, OWNER, None, {OWNER.lower()}, NOW) == Deny(DENIED_OPERATOR)


def test_admit_reasons() -> None:
    assert decide_join(record(PERSONAL, PUB), None, None, None, set(), NOW) == Admit("public world")
    assert decide_join(record(PERSONAL, PRIV), None, OWNER, None, set(), NOW) == Admit(
        "world owner"
    )
    tix = decide_join(record(LAND, TIX), facts(LAND, True), STRANGER, None, set(), NOW)
    assert tix == Admit("valid ticket")


def test_anonymous_visitors() -> None:
    for vis in (PRIV, FRI, TIX):
        decision = decide_join(record(PERSONAL, vis), facts(PERSONAL, True), None, None, set(), NOW)
        assert decision == Deny(DENIED_SIGN_IN)
    assert isinstance(decide_join(record(LAND, PUB), None, None, bans(LAND), set(), NOW), Admit)


def test_expired_record_admits_nobody() -> None:
    old = record(PERSONAL, PUB, issued_at=NOW - DEFAULT_MAX_AGE - 1)
    assert decide_join(old, None, OWNER, None, set(), NOW) == Deny(DENIED_RECORD_EXPIRED)
    assert isinstance(decide_join(old, None, OWNER, None, set(), NOW - 1), Admit)


def test_bad_input() -> None:
    with pytest.raises(BadRequest):
        decide_join(record(PERSONAL, PUB), None, "0x1234", None, set(), NOW)
    with pytest.raises(LocalError):
        decide_join(record(PERSONAL, PUB), None, STRANGER, bans(LAND, STRANGER), set(), NOW)
