"""Owner-signed ban lists: "these addresses may not enter world X", signed by X's owner.

A ban list is its own small signed record beside the world record (whose signed text stays as
it is, so every record already signed keeps its meaning): ``{world_id, seq, banned, owner,
issued_at}`` plus a 65-byte EOA signature. Every node enforces the best list it holds on join
(`fluxnode.core.session.join.decide_join`). The highest `seq` wins, like world records; a
second list with the same `seq` and another payload is a conflict and the one held is kept.

Signature scheme: EIP-191 ``personal_sign`` of the canonical text below, for the reasons given
in `fluxnode.core.world_record` (every wallet, text shown verbatim). Its fixed first line differs
from the world record's and no SIWE message can start with it, so no signature of one kind can
be replayed as another::

    Flux world bans v1
    world: <world_id, canonical>
    seq: <decimal, 1 .. 2**63-1>
    owner: <EIP-55 address of the signer>
    issued at: <YYYY-MM-DDTHH:MM:SSZ> (<unix seconds>)
    banned: <n> address(es)          (or "banned: none" when n = 0: every ban lifted)
    <address, lower-case>            (n lines, sorted, unique)

Wire form: compact JSON with sorted keys, like the world record; `from_wire` is just as strict
(exact keys and types, canonical bytes only). At most `MAX_BANNED` (300) addresses, which keeps a
list under the 16 KiB wire bound and short enough for a wallet to display.

Freshness: a list may be at most `max_future_skew` ahead of the node's clock, but it never ages
out — a ban must not lapse because the owner did not re-sign it. Signature recovery and the
land-ownership check are at the I/O edge, `fluxnode.chain.bans`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from fluxnode.core.access import WorldRef, canonical_world_id, normalize_addresses
from fluxnode.core.errors import BadRequest, BanListInvalid
from fluxnode.core.siwe import is_checksum_address
from fluxnode.core.world_record import DEFAULT_MAX_FUTURE_SKEW, MAX_ISSUED_AT, MAX_SEQ

__all__ = [
    "BAN_HEADER",
    "MAX_BANNED",
    "MAX_BAN_WIRE_BYTES",
    "BanBook",
    "BanList",
    "UnsignedBanList",
    "ban_list_from_wire",
    "check_ban_not_from_future",
    "check_ban_owner_matches_id",
    "normalize_banned",
]

BAN_HEADER: Final = "Flux world bans v1"
MAX_BANNED: Final = 300
MAX_BAN_WIRE_BYTES: Final = 16 * 1024
WIRE_VERSION: Final = 1
_WIRE_KEYS: Final = frozenset({"banned", "issued_at", "owner", "seq", "signature", "v", "world_id"})
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_LOWER_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
_SIGNATURE_HEX = re.compile(r"0x[0-9a-f]{130}")


def _malformed(message: str) -> BanListInvalid:
    return BanListInvalid("malformed", message)


def normalize_banned(addresses: Any) -> tuple[str, ...]:
    """Any iterable of 0x addresses as the canonical tuple: lower-case, sorted, unique."""
    try:
        return normalize_addresses(addresses, what="banned", limit=MAX_BANNED)
    except BadRequest as exc:
        raise _malformed(str(exc)) from None


@dataclass(frozen=True)
class UnsignedBanList:
    """The signed payload. Construction validates every field (BanListInvalid "malformed")."""

    world_id: str
    seq: int
    #: Lower-case addresses, sorted, unique.
    banned: tuple[str, ...]
    #: EIP-55 address of the signer.
    owner: str
    #: Unix seconds.
    issued_at: int

    def __post_init__(self) -> None:
        try:
            canonical_world_id(self.world_id)
        except BadRequest as exc:
            raise _malformed(str(exc)) from None
        if type(self.seq) is not int or not 1 <= self.seq <= MAX_SEQ:
            raise _malformed("seq must be an integer in 1 .. 2**63-1")
        if not isinstance(self.banned, tuple) or normalize_banned(self.banned) != self.banned:
            raise _malformed("banned must be a sorted tuple of unique lower-case addresses")
        if not isinstance(self.owner, str) or not is_checksum_address(self.owner):
            raise _malformed("owner must be an EIP-55 checksummed address")
        if type(self.issued_at) is not int or not 0 <= self.issued_at <= MAX_ISSUED_AT:
            raise _malformed(f"issued_at must be unix seconds 0 .. {MAX_ISSUED_AT}")

    @property
    def ref(self) -> WorldRef:
        return WorldRef.parse(self.world_id)

    def is_banned(self, address: str) -> bool:
        return address.lower() in self.banned

    def signing_text(self) -> str:
        """The exact text the owner's wallet signs (EIP-191); format in the module docstring."""
        when = datetime.fromtimestamp(self.issued_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        n = len(self.banned)
        return "\n".join(
            [
                BAN_HEADER,
                f"world: {self.world_id}",
                f"seq: {self.seq}",
                f"owner: {self.owner}",
                f"issued at: {when} ({self.issued_at})",
                "banned: none" if n == 0 else f"banned: {n} address{'es' if n > 1 else ''}",
                *self.banned,
            ]
        )

    def signed(self, signature: bytes) -> BanList:
        return BanList(
            self.world_id, self.seq, self.banned, self.owner, self.issued_at, bytes(signature)
        )


@dataclass(frozen=True)
class BanList(UnsignedBanList):
    """A signed ban list; the signature is checked for shape only here (65 bytes, v 27/28)."""

    signature: bytes

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.signature, bytes) or len(self.signature) != 65:
            raise _malformed("signature must be 65 bytes (r || s || v)")
        if self.signature[64] not in (27, 28):
            raise _malformed(f"signature v must be 27 or 28, not {self.signature[64]}")

    def unsigned(self) -> UnsignedBanList:
        return UnsignedBanList(self.world_id, self.seq, self.banned, self.owner, self.issued_at)

    def to_wire(self) -> bytes:
        obj = {
            "banned": list(self.banned),
            "issued_at": self.issued_at,
            "owner": self.owner,
            "seq": self.seq,
            "signature": "0x" + self.signature.hex(),
            "v": WIRE_VERSION,
            "world_id": self.world_id,
        }
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("ascii")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        dup = next(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
        raise _malformed(f"duplicate key {dup[:40]!r}")
    return obj


def _reject_number(text: str) -> Any:
    raise _malformed(f"{text[:40]} is not allowed in a ban list")


def ban_list_from_wire(data: bytes | bytearray | memoryview) -> BanList:
    """Parse a ban list's wire bytes (strict). Raises BanListInvalid, never another exception."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _malformed(f"wire form must be bytes, not {type(data).__name__}")
    if len(data) > MAX_BAN_WIRE_BYTES:
        raise BanListInvalid("too_large", f"{len(data)} bytes, over {MAX_BAN_WIRE_BYTES}")
    raw = bytes(data)
    try:
        obj = json.loads(
            raw.decode("ascii"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_number,
            parse_float=_reject_number,
        )
    except BanListInvalid:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _malformed(f"not ASCII JSON: {type(exc).__name__}") from None
    if not isinstance(obj, dict) or set(obj) != _WIRE_KEYS:
        raise _malformed(f"a ban list is a JSON object with keys {sorted(_WIRE_KEYS)}")
    for key in ("seq", "issued_at", "v"):
        if type(obj[key]) is not int:
            raise _malformed(f"{key} must be an integer")
    if obj["v"] != WIRE_VERSION:
        raise _malformed(f"unsupported ban list version {obj['v']}")
    for key in ("world_id", "owner", "signature"):
        if not isinstance(obj[key], str):
            raise _malformed(f"{key} must be a string")
    banned = obj["banned"]
    if not isinstance(banned, list) or len(banned) > MAX_BANNED:
        raise _malformed(f"banned must be a list of at most {MAX_BANNED} addresses")
    if not all(isinstance(a, str) and _LOWER_ADDRESS.fullmatch(a) for a in banned):
        raise _malformed("banned entries must be lower-case 0x addresses")
    if not _SIGNATURE_HEX.fullmatch(obj["signature"]):
        raise _malformed("signature must be 0x + 130 lower-case hex digits")
    ban_list = BanList(
        world_id=obj["world_id"],
        seq=obj["seq"],
        banned=tuple(banned),
        owner=obj["owner"],
        issued_at=obj["issued_at"],
        signature=bytes.fromhex(obj["signature"][2:]),
    )
    if ban_list.to_wire() != raw:
        raise _malformed("not the canonical encoding (compact JSON, sorted keys)")
    return ban_list


def check_ban_owner_matches_id(ban_list: UnsignedBanList) -> None:
    """A personal world (`<address>/<slug>`) may only be banned for by that address."""
    personal = ban_list.ref.personal_owner
    if personal is not None and ban_list.owner.lower() != personal:
        raise BanListInvalid(
            "not_world_owner", f"{ban_list.world_id} belongs to {personal}, not {ban_list.owner}"
        )


def check_ban_not_from_future(
    ban_list: UnsignedBanList, now: int, *, max_future_skew: int = DEFAULT_MAX_FUTURE_SKEW
) -> None:
    if ban_list.issued_at > now + max_future_skew:
        raise BanListInvalid(
            "from_future", f"issued {ban_list.issued_at - now} s in the future (clock skew?)"
        )


class BanBook:
    """The best verified ban list per world: highest `seq` wins; same `seq` with another
    payload keeps the one held (as `RecordBook` does). Bounded by `max_worlds`: when full, a
    list for a new world is refused (never evicting a ban that is being enforced)."""

    def __init__(self, *, max_worlds: int = 100_000) -> None:
        self.max_worlds = max_worlds
        self._lists: dict[str, BanList] = {}

    def offer(self, ban_list: BanList) -> bool:
        """Keep `ban_list` (its signature and owner verified by the caller) if it is newer.
        True when it replaced or added a list (the caller relays it), False otherwise."""
        current = self._lists.get(ban_list.world_id)
        if current is not None and ban_list.seq <= current.seq:
            return False
        if current is None and len(self._lists) >= self.max_worlds:
            return False
        self._lists[ban_list.world_id] = ban_list
        return True

    def get(self, world_id: str) -> BanList | None:
        return self._lists.get(world_id)

    def lists(self) -> list[BanList]:
        """Every list held, by world id."""
        return [self._lists[w] for w in sorted(self._lists)]

    def __len__(self) -> int:
        return len(self._lists)
