"""Who may enter a world: the access decision as a pure function of the world's rule, the
visitor's (verified) address and the chain facts the oracle could establish.

Fail closed: when a rule needs a chain fact and the chain could not be read (`facts is None`
or the needed fact is unknown), the answer is DENY with reason `chain unavailable` — never a
silent allow. Public worlds need no chain at all.

World ids: `land:<tokenId>` (owned by whoever owns that FluxLand token, on chain) or
`<0xaddress>/<slug>` (a personal world owned by that address; no chain needed to know it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fluxnode.core.errors import BadRequest
from fluxnode.core.world import Visibility

_LAND = re.compile(r"^land:(0|[1-9][0-9]{0,76})$")
_PERSONAL = re.compile(r"^(0x[0-9a-fA-F]{40})/([a-z0-9][a-z0-9-]{0,62})$")
MAX_ALLOWLIST = 1000


@dataclass(frozen=True)
class WorldRef:
    world_id: str
    land_token: int | None
    personal_owner: str | None

    @property
    def canonical_id(self) -> str:
        """The spelling FluxTickets hashes into a world key (lower-case address)."""
        if self.personal_owner is not None:
            return f"{self.personal_owner}/{self.world_id.split('/', 1)[1]}"
        return self.world_id

    @classmethod
    def parse(cls, world_id: str) -> WorldRef:
        if m := _LAND.match(world_id):
            return cls(world_id, int(m.group(1)), None)
        if m := _PERSONAL.match(world_id):
            return cls(world_id, None, m.group(1).lower())
        raise BadRequest(
            f"bad world id {world_id!r}: expected land:<tokenId> or <0xaddress>/<slug>"
        )


@dataclass(frozen=True)
class AccessRule:
    visibility: Visibility
    #: Addresses (lower-case hex) let in besides the owner: friends, or a private guest list.
    allow: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if len(self.allow) > MAX_ALLOWLIST:
            raise BadRequest(f"access list longer than {MAX_ALLOWLIST} addresses")


@dataclass(frozen=True)
class ChainFacts:
    """What the oracle established, at a confirmed block. None = could not be determined."""

    land_owner: str | None = None
    has_valid_ticket: bool | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


CHAIN_UNAVAILABLE = "chain unavailable"


def owner_of(world: WorldRef, facts: ChainFacts | None) -> str | None:
    if world.personal_owner is not None:
        return world.personal_owner
    return facts.land_owner.lower() if facts and facts.land_owner else None


def needs_chain(world: WorldRef, rule: AccessRule) -> tuple[bool, bool]:
    """(needs the land owner, needs the visitor's tickets) for this rule."""
    if rule.visibility is Visibility.PUBLIC:
        return False, False
    land = world.land_token is not None
    return land, rule.visibility is Visibility.TICKETED


def decide(
    world: WorldRef, rule: AccessRule, visitor: str | None, facts: ChainFacts | None
) -> Decision:
    """`visitor` is an address whose control was proven (SIWE), or None for anonymous."""
    if rule.visibility is Visibility.PUBLIC:
        return Decision(True, "public world")
    if visitor is None:
        return Decision(False, "sign-in required")
    who = visitor.lower()
    need_owner = needs_chain(world, rule)[0]
    owner = owner_of(world, facts)
    if need_owner and owner is None:
        return Decision(False, CHAIN_UNAVAILABLE)
    if who == owner:
        return Decision(True, "world owner")
    if rule.visibility in (Visibility.PRIVATE, Visibility.FRIENDS):
        if who in rule.allow:
            return Decision(True, "on the world's access list")
        return Decision(False, f"{rule.visibility.value} world: not on the access list")
    # ticketed
    if facts is None or facts.has_valid_ticket is None:
        return Decision(False, CHAIN_UNAVAILABLE)
    if facts.has_valid_ticket:
        return Decision(True, "valid ticket")
    return Decision(False, "no valid ticket for this world")


_ANY_CASE_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def normalize_addresses(addresses: object, *, what: str, limit: int) -> tuple[str, ...]:
    """Any iterable of 0x addresses (any letter case) as a canonical tuple: lower-case, sorted,
    unique, at most `limit`. Raises BadRequest naming `what` (the field) for anything else; the
    signed records that carry address lists (access lists, ban lists) wrap it in their own
    error."""
    if isinstance(addresses, str | bytes) or not hasattr(addresses, "__iter__"):
        raise BadRequest(f"{what} must be a list of addresses, not a string")
    out = set()
    for a in addresses:
        if not isinstance(a, str) or not _ANY_CASE_ADDRESS.fullmatch(a):
            shown = repr(a) if len(repr(a)) <= 60 else repr(a)[:60] + "..."
            raise BadRequest(f"{what} entry {shown} is not 0x + 40 hex digits")
        out.add(a.lower())
    if len(out) > limit:
        raise BadRequest(f"{what} list has {len(out)} addresses, over {limit}")
    return tuple(sorted(out))


def canonical_world_id(world_id: object) -> str:
    """`world_id` if it is a world id in its canonical spelling; BadRequest otherwise."""
    if not isinstance(world_id, str):
        raise BadRequest("world_id must be a string")
    canonical = WorldRef.parse(world_id).canonical_id
    if canonical != world_id:
        raise BadRequest(f"world_id must be canonical (lower-case address): {canonical!r}")
    return world_id
