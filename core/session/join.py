"""The join decision: may this visitor enter this world on this node, and if not, why not.

`decide_join` is pure: it takes the world's verified record, the chain facts the oracle could
establish (`fluxnode.chain.oracle.Oracle.facts`: the land owner and whether the visitor holds a
valid, unexpired FluxTickets ticket, both at a confirmed block; None when the chain could not be
read), the visitor's proven address (from a checked entry proof), the owner's verified ban list,
this node operator's address denylist and the time. The checks, in order:

1. the operator's denylist (a node-local refusal; it applies to everyone, the owner included);
2. the world record's age (a record past `max_age` is no longer served, so nobody enters);
3. the owner's bans (never against the owner: an owner cannot lock themselves out);
4. `fluxnode.core.access.decide` over the record's visibility and access list, fail closed:
   a private, friends or ticketed world whose facts are unknown is ``denied: chain
   unavailable``, never a silent allow. Public worlds need no chain.

Every `Deny.reason` is one of the ``DENIED_*`` sentences below, shown to the visitor as is.
"""

from __future__ import annotations

import re
from collections.abc import Set
from dataclasses import dataclass
from typing import Final

from fluxnode.core.access import CHAIN_UNAVAILABLE, ChainFacts, decide, owner_of
from fluxnode.core.errors import BadRequest, LocalError, RecordInvalid
from fluxnode.core.session.bans import UnsignedBanList
from fluxnode.core.world import Visibility
from fluxnode.core.world_record import DEFAULT_MAX_AGE, UnsignedRecord, check_freshness

__all__ = [
    "DENIED_BANNED",
    "DENIED_CHAIN_UNAVAILABLE",
    "DENIED_NOT_FRIEND",
    "DENIED_NO_TICKET",
    "DENIED_OPERATOR",
    "DENIED_PRIVATE",
    "DENIED_RECORD_EXPIRED",
    "DENIED_SIGN_IN",
    "Admit",
    "Deny",
    "JoinDecision",
    "decide_join",
]

DENIED_NO_TICKET: Final = "denied: no valid ticket for this world"
DENIED_PRIVATE: Final = "denied: this world is private"
DENIED_NOT_FRIEND: Final = "denied: not on the owner's friends list"
DENIED_BANNED: Final = "denied: banned by the world owner"
DENIED_OPERATOR: Final = "denied: this node's operator does not admit this address"
DENIED_CHAIN_UNAVAILABLE: Final = "denied: chain unavailable"
DENIED_SIGN_IN: Final = "denied: sign-in required"
DENIED_RECORD_EXPIRED: Final = "denied: this world's record has expired"

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class Admit:
    """Let in; `reason` says on what grounds ("public world", "world owner", "valid ticket",
    "on the world's access list")."""

    reason: str


@dataclass(frozen=True)
class Deny:
    """Refused; `reason` is one of the ``DENIED_*`` sentences."""

    reason: str


JoinDecision = Admit | Deny


def decide_join(
    world_record: UnsignedRecord,
    access_facts: ChainFacts | None,
    visitor: str | None,
    bans: UnsignedBanList | None,
    operator_denylist: Set[str],
    now: int,
    *,
    max_record_age: int = DEFAULT_MAX_AGE,
) -> JoinDecision:
    """Admit or Deny `visitor` (an address proven by an entry proof; None = anonymous) into the
    world of `world_record` at unix time `now`. `operator_denylist` holds lower-case addresses.
    `bans` must be for this world (else LocalError: the caller mixed worlds up)."""
    if visitor is not None and not (isinstance(visitor, str) and _ADDRESS.fullmatch(visitor)):
        raise BadRequest(f"visitor must be a 0x address, not {str(visitor)[:60]!r}")
    if bans is not None and bans.world_id != world_record.world_id:
        raise LocalError(f"ban list for {bans.world_id} given for {world_record.world_id}")
    who = None if visitor is None else visitor.lower()
    if who is not None and who in operator_denylist:
        return Deny(DENIED_OPERATOR)
    try:
        check_freshness(world_record, now, max_future_skew=2**63, max_age=max_record_age)
    except RecordInvalid:
        return Deny(DENIED_RECORD_EXPIRED)
    world = world_record.ref
    # For a land world whose owner is unknown (chain down) the owner is not exempted:
    # failing closed costs the owner a retry, failing open would let a banned address in.
    banned = who is not None and bans is not None and who in bans.banned
    if banned and who != owner_of(world, access_facts):
        return Deny(DENIED_BANNED)
    rule = world_record.access_rule()
    decision = decide(world, rule, who, access_facts)
    if decision.allowed:
        return Admit(decision.reason)
    if decision.reason == CHAIN_UNAVAILABLE:
        return Deny(DENIED_CHAIN_UNAVAILABLE)
    if who is None:
        return Deny(DENIED_SIGN_IN)
    if rule.visibility is Visibility.PRIVATE:
        return Deny(DENIED_PRIVATE)
    if rule.visibility is Visibility.FRIENDS:
        return Deny(DENIED_NOT_FRIEND)
    return Deny(DENIED_NO_TICKET)
