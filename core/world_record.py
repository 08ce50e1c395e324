"""Signed world records: the pointer "world X is now at CID Y", signed by the world's owner.

A record is ``{world_id, cid, seq, visibility, access, owner, issued_at}`` plus a 65-byte EOA
signature. Every node validates a record before it stores or relays it; the highest valid `seq`
wins (like IPNS). This module is pure (stdlib + fluxnode.core): the model, the canonical signed
text and the strict wire form; `fluxnode.core.record_book` keeps the best record per world.
Signature recovery and the on-chain land check live at the I/O edge, `fluxnode.chain.records`.

Signature scheme: EIP-191 ``personal_sign`` of the canonical text below. Chosen over EIP-712
because every wallet supports it, wallets show the text verbatim (the user reads exactly what
they authorise), it is the scheme SIWE already uses here (one recovery path, `recover_address`),
and the canonical text needs no ABI type encoding. The text starts with a fixed header that no
SIWE message can start with, so a sign-in signature can never be replayed as a record or back.

Canonical text (lines joined by ``\\n``; no trailing newline; no line has leading or trailing
spaces; every value is ASCII and can hold neither ``\\n`` nor ``": "``, so the text is unambiguous
and `UnsignedRecord.signing_text` is a bijection on valid records)::

    Flux world record v1
    world: <world_id, canonical: land:<decimal> or <lower-case 0x address>/<slug>>
    cid: <CID in its canonical text form: base58btc for v0, base32 lower-case for v1>
    seq: <decimal, 1 .. 2**63-1>
    visibility: <public | private | friends | ticketed>
    owner: <EIP-55 address of the signer>
    issued at: <YYYY-MM-DDTHH:MM:SSZ> (<unix seconds, decimal>)
    access: <n> address(es)          (or "access: none" when n = 0)
    <address 1, lower-case>          (n lines, sorted, unique)
    ...

Wire form: compact JSON (keys sorted, separators ``,`` and ``:``, ASCII), chosen over msgpack
for debuggability (a record is readable in logs and curl output) at the cost of a few bytes::

    {"access":[...],"cid":"...","issued_at":N,"owner":"0x...","seq":N,
     "signature":"0x<130 hex>","v":1,"visibility":"...","world_id":"..."}

`from_wire` is strict: at most `MAX_WIRE_BYTES`, UTF-8 JSON object, exactly these keys, exact
types (a bool is not an int), every bound, and the bytes must be the canonical encoding of the
record they describe (so one record has exactly one wire form; anything else is rejected).

Limits: the access list holds at most `MAX_RECORD_ACCESS` (300) addresses, which keeps a
record under the 16 KiB wire limit (1000 addresses, `core.access.MAX_ALLOWLIST`, would need
45 KB) and keeps the signed text short enough for a wallet to display. It must be empty for
public and ticketed worlds (only private/friends use it), so each record has one meaning.

Freshness (`check_freshness`, applied by `RecordBook`): `issued_at` may be at most
`max_future_skew` (default 5 minutes) ahead of the node's clock (clock drift between nodes and
wallets) and at most `max_age` (default 30 days) old. An owner's node therefore re-signs its
worlds (same CID, next `seq`) well within `max_age`, as IPNS republishes; records of abandoned
worlds age out of the network.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from fluxnode.core.access import (
    MAX_ALLOWLIST,
    AccessRule,
    WorldRef,
    canonical_world_id,
    normalize_addresses,
)
from fluxnode.core.cid import Cid
from fluxnode.core.errors import BadRequest, RemoteError
from fluxnode.core.errors import RecordInvalid as RecordInvalid  # re-exported
from fluxnode.core.siwe import is_checksum_address
from fluxnode.core.world import Visibility

__all__ = [
    "HEADER",
    "MAX_ISSUED_AT",
    "MAX_RECORD_ACCESS",
    "MAX_SEQ",
    "MAX_WIRE_BYTES",
    "RecordInvalid",
    "UnsignedRecord",
    "WorldRecord",
    "check_freshness",
    "check_owner_matches_id",
    "from_wire",
    "normalize_access",
]

HEADER: Final = "Flux world record v1"
WIRE_VERSION: Final = 1
MAX_WIRE_BYTES: Final = 16 * 1024
MAX_SEQ: Final = 2**63 - 1
#: 9999-12-31T23:59:59Z: the last second an ISO date with four year digits can show.
MAX_ISSUED_AT: Final = 253_402_300_799
MAX_RECORD_ACCESS: Final = 300
SIGNATURE_BYTES: Final = 65
assert MAX_RECORD_ACCESS <= MAX_ALLOWLIST

DEFAULT_MAX_FUTURE_SKEW: Final = 5 * 60
DEFAULT_MAX_AGE: Final = 30 * 24 * 3600

_LOWER_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
_SIGNATURE_HEX = re.compile(r"0x[0-9a-f]{130}")
_WIRE_KEYS: Final = frozenset(
    {"access", "cid", "issued_at", "owner", "seq", "signature", "v", "visibility", "world_id"}
)


def _malformed(message: str) -> RecordInvalid:
    return RecordInvalid("malformed", message)


def _show(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def normalize_access(addresses: Any) -> tuple[str, ...]:
    """Any iterable of 0x addresses (any letter case) as the canonical access tuple: lower-case,
    sorted, unique. Raises RecordInvalid("malformed") for a non-address or too many."""
    try:
        return normalize_addresses(addresses, what="access", limit=MAX_RECORD_ACCESS)
    except BadRequest as exc:
        raise _malformed(str(exc)) from None


@dataclass(frozen=True)
class UnsignedRecord:
    """The signed payload. Construction validates every field (RecordInvalid "malformed")."""

    world_id: str
    cid: Cid
    seq: int
    visibility: Visibility
    #: Lower-case addresses, sorted, unique; empty unless visibility is private or friends.
    access: tuple[str, ...]
    #: EIP-55 address of the signer.
    owner: str
    #: Unix seconds.
    issued_at: int

    def __post_init__(self) -> None:
        try:
            canonical_world_id(self.world_id)
        except BadRequest as exc:
            raise _malformed(str(exc)) from None
        if not isinstance(self.cid, Cid):
            raise _malformed("cid must be a Cid")
        if type(self.seq) is not int or not 1 <= self.seq <= MAX_SEQ:
            raise _malformed(f"seq must be an integer in 1 .. 2**63-1, not {_show(self.seq)}")
        if not isinstance(self.visibility, Visibility):
            raise _malformed("visibility must be a Visibility")
        if not isinstance(self.access, tuple) or normalize_access(self.access) != self.access:
            raise _malformed("access must be a sorted tuple of unique lower-case addresses")
        if self.access and self.visibility not in (Visibility.PRIVATE, Visibility.FRIENDS):
            raise _malformed(f"a {self.visibility.value} world has no access list")
        if not isinstance(self.owner, str) or not is_checksum_address(self.owner):
            raise _malformed(f"owner must be an EIP-55 checksummed address: {_show(self.owner)}")
        if type(self.issued_at) is not int or not 0 <= self.issued_at <= MAX_ISSUED_AT:
            raise _malformed(f"issued_at must be unix seconds 0 .. {MAX_ISSUED_AT}")

    @property
    def ref(self) -> WorldRef:
        return WorldRef.parse(self.world_id)

    def access_rule(self) -> AccessRule:
        return AccessRule(self.visibility, frozenset(self.access))

    def signing_text(self) -> str:
        """The exact text the owner's wallet signs (EIP-191); format in the module docstring."""
        when = datetime.fromtimestamp(self.issued_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        n = len(self.access)
        lines = [
            HEADER,
            f"world: {self.world_id}",
            f"cid: {self.cid}",
            f"seq: {self.seq}",
            f"visibility: {self.visibility.value}",
            f"owner: {self.owner}",
            f"issued at: {when} ({self.issued_at})",
            "access: none" if n == 0 else f"access: {n} address{'es' if n > 1 else ''}",
            *self.access,
        ]
        return "\n".join(lines)

    def signed(self, signature: bytes) -> WorldRecord:
        return WorldRecord(
            self.world_id,
            self.cid,
            self.seq,
            self.visibility,
            self.access,
            self.owner,
            self.issued_at,
            bytes(signature),
        )


@dataclass(frozen=True)
class WorldRecord(UnsignedRecord):
    """A signed record. The signature is only checked for shape here (65 bytes, v = 27/28);
    `fluxnode.chain.records.verify_record` checks that it recovers to `owner`."""

    signature: bytes

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_BYTES:
            raise _malformed("signature must be 65 bytes (r || s || v)")
        if self.signature[64] not in (27, 28):
            raise _malformed(f"signature v must be 27 or 28, not {self.signature[64]}")

    def unsigned(self) -> UnsignedRecord:
        return UnsignedRecord(
            self.world_id,
            self.cid,
            self.seq,
            self.visibility,
            self.access,
            self.owner,
            self.issued_at,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "access": list(self.access),
            "cid": str(self.cid),
            "issued_at": self.issued_at,
            "owner": self.owner,
            "seq": self.seq,
            "signature": "0x" + self.signature.hex(),
            "v": WIRE_VERSION,
            "visibility": self.visibility.value,
            "world_id": self.world_id,
        }

    def to_wire(self) -> bytes:
        return json.dumps(
            self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        ).encode("ascii")

    @classmethod
    def from_wire(cls, data: bytes | bytearray | memoryview) -> WorldRecord:
        return from_wire(data)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        dup = next(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
        raise _malformed(f"duplicate key {_show(dup)}")
    return obj


def _no_constant(name: str) -> Any:
    raise _malformed(f"{name} is not allowed in a record")


def _int_field(obj: dict[str, Any], key: str) -> int:
    value = obj[key]
    if type(value) is not int:
        raise _malformed(f"{key} must be an integer, not {type(value).__name__}")
    return value


def _str_field(obj: dict[str, Any], key: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise _malformed(f"{key} must be a string, not {type(value).__name__}")
    return value


def from_wire(data: bytes | bytearray | memoryview) -> WorldRecord:
    """Parse and validate a record's wire bytes (strict; see the module docstring). Raises
    RecordInvalid with reason ``too_large`` or ``malformed``; never another exception."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _malformed(f"wire form must be bytes, not {type(data).__name__}")
    if len(data) > MAX_WIRE_BYTES:
        raise RecordInvalid("too_large", f"record is {len(data)} bytes, over {MAX_WIRE_BYTES}")
    raw = bytes(data)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise _malformed("record must be ASCII JSON") from None
    try:
        obj = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=lambda s: _no_constant(f"non-integer number {_show(s)}"),
        )
    except RecordInvalid:
        raise
    except (ValueError, RecursionError) as exc:
        raise _malformed(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(obj, dict):
        raise _malformed("record must be a JSON object")
    keys = set(obj)
    if keys != _WIRE_KEYS:
        missing, extra = sorted(_WIRE_KEYS - keys), sorted(keys - _WIRE_KEYS)
        raise _malformed(f"wrong keys: missing {missing}, unexpected {_show(extra)}")
    if _int_field(obj, "v") != WIRE_VERSION:
        raise _malformed(f"unsupported record version {obj['v']}")
    try:
        cid = Cid.parse(_str_field(obj, "cid"))
    except RemoteError as exc:
        raise _malformed(str(exc)) from None
    try:
        visibility = Visibility(_str_field(obj, "visibility"))
    except ValueError:
        raise _malformed(f"unknown visibility {_show(obj['visibility'])}") from None
    access = obj["access"]
    if not isinstance(access, list) or not all(isinstance(a, str) for a in access):
        raise _malformed("access must be a list of strings")
    if len(access) > MAX_RECORD_ACCESS:
        raise _malformed(f"access list has {len(access)} entries, over {MAX_RECORD_ACCESS}")
    if not all(_LOWER_ADDRESS.fullmatch(a) for a in access):
        raise _malformed("access entries must be lower-case 0x addresses")
    signature = _str_field(obj, "signature")
    if not _SIGNATURE_HEX.fullmatch(signature):
        raise _malformed("signature must be 0x + 130 lower-case hex digits")
    record = WorldRecord(
        world_id=_str_field(obj, "world_id"),
        cid=cid,
        seq=_int_field(obj, "seq"),
        visibility=visibility,
        access=tuple(access),
        owner=_str_field(obj, "owner"),
        issued_at=_int_field(obj, "issued_at"),
        signature=bytes.fromhex(signature[2:]),
    )
    if record.to_wire() != raw:
        raise _malformed("not the canonical encoding (compact JSON, sorted keys, canonical CID)")
    return record


# -- rules shared by the edge and the book ------------------------------------------------------


def check_owner_matches_id(record: UnsignedRecord) -> None:
    """A personal world (`<address>/<slug>`) may only be signed by that address."""
    personal = record.ref.personal_owner
    if personal is not None and record.owner.lower() != personal:
        raise RecordInvalid(
            "not_world_owner", f"{record.world_id} belongs to {personal}, not {record.owner}"
        )


def check_freshness(
    record: UnsignedRecord,
    now: int,
    *,
    max_future_skew: int = DEFAULT_MAX_FUTURE_SKEW,
    max_age: int = DEFAULT_MAX_AGE,
) -> None:
    if record.issued_at > now + max_future_skew:
        raise RecordInvalid(
            "from_future", f"issued {record.issued_at - now} s in the future (clock skew?)"
        )
    if record.issued_at < now - max_age:
        raise RecordInvalid(
            "expired", f"issued {now - record.issued_at} s ago, over the {max_age} s limit"
        )
