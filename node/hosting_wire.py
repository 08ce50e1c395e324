"""The hosting record on the wire (`/flux/1/hosting`) and a claim's state on disk.

`decode_hosting` is strict: HostingRecordInvalid, and nothing else, for any input that is not
exactly what `encode_hosting` makes (a bool is not a number, no NaN or infinities, every field
and list bounded). The stored claim state wraps the same wire form, so what is read back at
start passes the same checks as what gossip brings.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fluxnode.core.cid import Cid
from fluxnode.core.errors import FluxError, RemoteError
from fluxnode.core.errors import HostingRecordInvalid as HostingRecordInvalid  # re-exported
from fluxnode.core.replication import MAX_CLAIMS_PER_RECORD, ClaimState, HostingRecord

MAX_HOSTING_BYTES = 48 * 1024


def encode_hosting(record: HostingRecord) -> bytes:
    body = {
        "v": 1,
        "peer": record.peer_id,
        "cids": sorted(record.cids),
        "free": record.free_bytes,
        "at": round(record.issued_at, 3),
        "auto": record.auto,
        "doubts": sorted([p, c] for p, c in record.doubts),
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


_HOSTING_KEYS = frozenset({"v", "peer", "cids", "free", "at", "auto", "doubts"})
#: A libp2p peer id in text is 46-59 characters; anything far longer is not one.
MAX_PEER_ID_CHARS = 128
MAX_FREE_BYTES = 2**63 - 1
#: 9999-12-31T23:59:59Z. Also refuses NaN and infinities (every comparison with NaN is false).
MAX_ISSUED_AT = 253_402_300_799.0


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    body = dict(pairs)
    if len(body) != len(pairs):
        raise HostingRecordInvalid("duplicate key")
    return body


def _no_constant(name: str) -> Any:
    raise HostingRecordInvalid(f"{name} is not a number")


def _peer_field(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_PEER_ID_CHARS:
        raise HostingRecordInvalid(f"{what} must be a peer id (1..{MAX_PEER_ID_CHARS} chars)")
    return value


def _cid_field(value: Any) -> str:
    if not isinstance(value, str):
        raise HostingRecordInvalid("cids must be strings")
    try:
        return str(Cid.parse(value))
    except RemoteError as exc:
        raise HostingRecordInvalid(str(exc)) from None


def decode_hosting(data: bytes) -> HostingRecord:
    """Parse a gossiped hosting record strictly; HostingRecordInvalid and nothing else for any
    input: exact keys, exact types (a bool is not a number), finite bounded numbers, CIDs in
    canonical text, bounded lists."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise HostingRecordInvalid(f"hosting record must be bytes, not {type(data).__name__}")
    if len(data) > MAX_HOSTING_BYTES:
        raise HostingRecordInvalid("hosting record too large")
    try:
        body = json.loads(bytes(data), object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except HostingRecordInvalid:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise HostingRecordInvalid(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(body, dict) or set(body) != _HOSTING_KEYS:
        raise HostingRecordInvalid("unexpected fields")
    if type(body["v"]) is not int or body["v"] != 1:
        raise HostingRecordInvalid("bad version")
    peer = _peer_field(body["peer"], "peer")
    free, at = body["free"], body["at"]
    if type(free) is not int or not 0 <= free <= MAX_FREE_BYTES:
        raise HostingRecordInvalid(f"free must be an integer in 0 .. {MAX_FREE_BYTES}")
    if type(at) not in (int, float) or not 0 <= at <= MAX_ISSUED_AT:
        raise HostingRecordInvalid("at must be unix seconds (a finite number)")
    if not isinstance(body["auto"], bool):
        raise HostingRecordInvalid("bad auto")
    cids, doubts = body["cids"], body["doubts"]
    if not isinstance(cids, list) or len(cids) > MAX_CLAIMS_PER_RECORD:
        raise HostingRecordInvalid(f"cids must be a list of at most {MAX_CLAIMS_PER_RECORD}")
    if not isinstance(doubts, list) or len(doubts) > MAX_CLAIMS_PER_RECORD:
        raise HostingRecordInvalid(f"doubts must be a list of at most {MAX_CLAIMS_PER_RECORD}")
    if not all(isinstance(d, list) and len(d) == 2 for d in doubts):
        raise HostingRecordInvalid("bad doubts: each is [peer id, cid]")
    try:
        return HostingRecord(
            peer,
            frozenset(_cid_field(c) for c in cids),
            free,
            float(at),
            body["auto"],
            frozenset((_peer_field(p, "a doubt's peer"), _cid_field(c)) for p, c in doubts),
        )
    except FluxError as exc:
        raise HostingRecordInvalid(str(exc)) from None


def encode_claim_state(state: ClaimState) -> bytes:
    body = {
        "record": encode_hosting(state.record).decode(),
        "failed": [[cid, at] for cid, at in state.failed],
        "passed": sorted(state.passed),
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def decode_claim_state(data: bytes) -> ClaimState:
    """A stored claim state; HostingRecordInvalid if it is not one `encode_claim_state` made."""
    if len(data) > 4 * MAX_HOSTING_BYTES:
        raise HostingRecordInvalid("stored claim state too large")
    try:
        body = json.loads(data, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except HostingRecordInvalid:
        raise
    except (ValueError, RecursionError) as exc:
        raise HostingRecordInvalid(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(body, dict) or set(body) != {"record", "failed", "passed"}:
        raise HostingRecordInvalid("unexpected fields in a stored claim state")
    if not isinstance(body["record"], str):
        raise HostingRecordInvalid("stored record must be a string")
    record = decode_hosting(body["record"].encode())
    failed, passed = body["failed"], body["passed"]
    if not isinstance(failed, list) or not isinstance(passed, list):
        raise HostingRecordInvalid("failed and passed must be lists")
    if len(failed) > MAX_CLAIMS_PER_RECORD or len(passed) > MAX_CLAIMS_PER_RECORD:
        raise HostingRecordInvalid("too many challenge marks")
    marks = []
    for entry in failed:
        if not (isinstance(entry, list) and len(entry) == 2 and type(entry[1]) in (int, float)):
            raise HostingRecordInvalid("a failed mark is [cid, unix seconds]")
        if not math.isfinite(entry[1]):
            raise HostingRecordInvalid("a failed mark's time must be finite")
        marks.append((_cid_field(entry[0]), float(entry[1])))
    return ClaimState(record, tuple(sorted(marks)), frozenset(_cid_field(c) for c in passed))
