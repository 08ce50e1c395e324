"""The access decision, fail-closed, over every visibility."""

from __future__ import annotations

import pytest

from fluxnode.core.access import (
    CHAIN_UNAVAILABLE,
    AccessRule,
    ChainFacts,
    WorldRef,
    decide,
)
from fluxnode.core.errors import BadRequest
from fluxnode.core.world import Visibility

OWNER = "0x" + "a" * 40
FRIEND = "0x" + "b" * 40
STRANGER = "0x" + "c" * 40
LAND = WorldRef.parse("land:42")
PERSONAL = WorldRef.parse(f"{OWNER}/my-world")


def rule(v: Visibility, *allow: str) -> AccessRule:
    return AccessRule(v, frozenset(allow))


def test_world_ids() -> None:
    assert LAND.land_token == 42
    assert PERSONAL.personal_owner == OWNER
    for bad in ["land:", "land:01", "land:-1", "0x12/x", f"{OWNER}/Caps", f"{OWNER}/", "x"]:
        with pytest.raises(BadRequest):
            WorldRef.parse(bad)


def test_public_needs_no_sign_in_and_no_chain() -> None:
    assert decide(LAND, rule(Visibility.PUBLIC), None, None).allowed


@pytest.mark.parametrize("v", [Visibility.PRIVATE, Visibility.FRIENDS, Visibility.TICKETED])
def test_everything_else_needs_sign_in(v: Visibility) -> None:
    d = decide(PERSONAL, rule(v), None, ChainFacts(OWNER, True))
    assert not d.allowed
    assert d.reason == "sign-in required"


def test_friends_and_private_lists() -> None:
    r = rule(Visibility.FRIENDS, FRIEND)
    assert decide(PERSONAL, r, OWNER.upper().replace("X", "x"), None).allowed  # owner, no chain
    assert decide(PERSONAL, r, FRIEND, None).allowed
    assert not decide(PERSONAL, r, STRANGER, None).allowed


def test_land_worlds_fail_closed_without_the_chain() -> None:
    r = rule(Visibility.PRIVATE, FRIEND)
    assert decide(LAND, r, OWNER, ChainFacts(land_owner=OWNER)).allowed
    d = decide(LAND, r, OWNER, None)
    assert (d.allowed, d.reason) == (False, CHAIN_UNAVAILABLE)
    d = decide(LAND, r, FRIEND, ChainFacts(land_owner=None))
    assert (d.allowed, d.reason) == (False, CHAIN_UNAVAILABLE)


def test_tickets() -> None:
    r = rule(Visibility.TICKETED)
    assert decide(PERSONAL, r, STRANGER, ChainFacts(has_valid_ticket=True)).allowed
    assert not decide(PERSONAL, r, STRANGER, ChainFacts(has_valid_ticket=False)).allowed
    d = decide(PERSONAL, r, STRANGER, ChainFacts(has_valid_ticket=None))
    assert (d.allowed, d.reason) == (False, CHAIN_UNAVAILABLE)
    assert decide(PERSONAL, r, OWNER, None).allowed  # a personal world's owner needs no ticket
    d = decide(LAND, r, OWNER, None)
    assert (d.allowed, d.reason) == (False, CHAIN_UNAVAILABLE)


def test_access_list_is_bounded() -> None:
    with pytest.raises(BadRequest):
        AccessRule(Visibility.FRIENDS, frozenset(f"0x{i:040x}" for i in range(1001)))
