"""The gossiped hosting record: `decode_hosting` refuses anything but a well-formed record with
`HostingRecordInvalid` (never another exception), and round-trips what `encode_hosting` makes."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxnode.core.errors import StateStoreError
from fluxnode.core.replication import (
    MAX_CLAIMS_PER_RECORD,
    ClaimState,
    HostingPolicy,
    HostingRecord,
)
from fluxnode.node.hosting import Hosting
from fluxnode.node.hosting_store import HostingStore
from fluxnode.node.hosting_wire import (
    MAX_HOSTING_BYTES,
    MAX_PEER_ID_CHARS,
    HostingRecordInvalid,
    decode_claim_state,
    decode_hosting,
    encode_claim_state,
    encode_hosting,
)

CID_V0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
CID_V1 = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
PEER = "12D3KooWGzBNw3Rz1ULk1rTrM5FmS5ZxknKi4nwBAWEL5fKKUV1n"


def body(**changes: Any) -> dict[str, Any]:
    good: dict[str, Any] = {
        "v": 1,
        "peer": PEER,
        "cids": [CID_V0],
        "free": 1000,
        "at": 1700000000.5,
        "auto": True,
        "doubts": [["other", CID_V1]],
    }
    good.update(changes)
    return good


def raw(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def test_a_well_formed_record_decodes() -> None:
    record = decode_hosting(raw(body()))
    assert record == HostingRecord(
        PEER, frozenset({CID_V0}), 1000, 1700000000.5, True, frozenset({("other", CID_V1)})
    )


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"{", "not JSON"),
        (b"[" * 30_000 + b"]" * 30_000, "too large"),
        # RecursionError inside json, or (under a higher recursion limit) a list, not a record
        (b"[" * 20_000 + b"]" * 20_000, "not JSON|unexpected fields"),
        (b" " * (MAX_HOSTING_BYTES + 1), "too large"),
        (raw([1, 2]), "unexpected fields"),
        (raw({**body(), "extra": 1}), "unexpected fields"),
        (raw({k: v for k, v in body().items() if k != "auto"}), "unexpected fields"),
        (b'{"v":1,"v":1,"peer":"p","cids":[],"free":0,"at":0,"auto":true,"doubts":[]}', "dup"),
    ],
)
def test_malformed_bytes_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(HostingRecordInvalid, match=why):
        decode_hosting(data)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"v": True}, "version"),  # True == 1 in Python: a bool is not a version
        ({"v": 1.0}, "version"),
        ({"v": 2}, "version"),
        ({"peer": 5}, "peer"),
        ({"peer": ""}, "peer"),
        ({"peer": "p" * (MAX_PEER_ID_CHARS + 1)}, "peer"),
        ({"free": True}, "free"),
        ({"free": -1}, "free"),
        ({"free": 1.5}, "free"),
        ({"free": 2**63}, "free"),
        ({"free": "1"}, "free"),
        ({"at": True}, "at"),
        ({"at": False}, "at"),
        ({"at": -1}, "at"),
        ({"at": "1"}, "at"),
        ({"at": 1e300}, "at"),
        ({"at": 10**30}, "at"),
        ({"auto": 1}, "auto"),
        ({"cids": CID_V0}, "cids"),
        ({"cids": [1]}, "cids must be strings"),
        ({"cids": ["not a cid"]}, "invalid CID"),
        ({"cids": [0] * (MAX_CLAIMS_PER_RECORD + 1)}, "at most"),
        ({"doubts": [0] * (MAX_CLAIMS_PER_RECORD + 1)}, "at most"),
        ({"doubts": [["p"]]}, "doubts"),
        ({"doubts": [["p", CID_V0, "x"]]}, "doubts"),
        ({"doubts": [[1, CID_V0]]}, "peer"),
        ({"doubts": [["p", "not a cid"]]}, "invalid CID"),
        ({"doubts": "x"}, "doubts"),
    ],
)
def test_wrong_types_and_out_of_bounds_values_are_refused(
    changes: dict[str, Any], why: str
) -> None:
    with pytest.raises(HostingRecordInvalid, match=why):
        decode_hosting(raw(body(**changes)))


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinities_are_refused(constant: str) -> None:
    data = raw(body(at=0)).replace(b'"at": 0', f'"at": {constant}'.encode())
    assert constant.encode() in data
    with pytest.raises(HostingRecordInvalid, match="not a number"):
        decode_hosting(data)


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"9" * 5000, b"1" + b"0" * 400])
@pytest.mark.parametrize("key", [b"at", b"free"])
def test_huge_numbers_are_refused(number: bytes, key: bytes) -> None:
    data = raw(body(at=0, free=0)).replace(b'"' + key + b'": 0', b'"' + key + b'": ' + number)
    assert number in data
    with pytest.raises(HostingRecordInvalid):
        decode_hosting(data)


def test_cids_are_kept_in_canonical_text() -> None:
    upper = "B" + CID_V1[1:].upper()
    record = decode_hosting(raw(body(cids=[upper], doubts=[["p", upper]])))
    assert record.cids == {CID_V1}
    assert record.doubts == {("p", CID_V1)}


# -- properties ---------------------------------------------------------------------------------

peers = st.text(st.characters(codec="utf-8"), min_size=1, max_size=MAX_PEER_ID_CHARS)
records = st.builds(
    HostingRecord,
    peer_id=peers,
    cids=st.frozensets(st.sampled_from([CID_V0, CID_V1]), max_size=2),
    free_bytes=st.integers(0, 2**63 - 1),
    issued_at=st.floats(0, 253_402_300_799, allow_nan=False).map(lambda x: round(x, 3)),
    auto=st.booleans(),
    doubts=st.frozensets(st.tuples(peers, st.sampled_from([CID_V0, CID_V1])), max_size=3),
)


@settings(max_examples=200)
@given(records)
def test_encode_then_decode_is_the_identity(record: HostingRecord) -> None:
    assert decode_hosting(encode_hosting(record)) == record


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([CID_V0, CID_V1, PEER]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(sorted(body())), json_values))
def test_any_json_object_is_either_a_record_or_refused_cleanly(fields: dict[str, Any]) -> None:
    data = json.dumps({**body(), **fields}).encode()
    try:
        record = decode_hosting(data)
    except HostingRecordInvalid:
        return
    assert math.isfinite(record.issued_at)
    assert type(record.free_bytes) is int
    assert record.free_bytes >= 0


@settings(max_examples=300)
@given(st.binary(max_size=2048))
def test_any_bytes_are_either_a_record_or_refused_cleanly(data: bytes) -> None:
    with contextlib.suppress(HostingRecordInvalid):
        decode_hosting(data)


# -- claims and challenge marks across a restart -----------------------------------------------


def test_claim_state_round_trips_and_damaged_states_are_refused() -> None:
    record = HostingRecord(PEER, frozenset({CID_V0}), 5, 100.0, True)
    state = ClaimState(record, ((CID_V0, 120.0),), frozenset({CID_V1}))
    assert decode_claim_state(encode_claim_state(state)) == state
    for damaged in (
        b"{}",
        b"[" * 5000,
        encode_claim_state(state).replace(b"120.0", b"NaN"),
        encode_claim_state(state).replace(b'"passed":[', b'"passed":[1,'),
        encode_claim_state(state).replace(b'\\"free\\":5', b'\\"free\\":true'),
    ):
        with pytest.raises(HostingRecordInvalid):
            decode_claim_state(damaged)


def claim(peer: str, at: float) -> bytes:
    return encode_hosting(HostingRecord(peer, frozenset({CID_V0}), 0, at))


def hosting(path: Path, now: float = 1000.0) -> Hosting:
    return Hosting(
        me="me",
        host=None,  # type: ignore[arg-type]
        repo=None,  # type: ignore[arg-type]
        worlds=None,  # type: ignore[arg-type]
        policy=HostingPolicy(),
        interval_s=10.0,
        clock=lambda: now,
        store=HostingStore(path),
    )


async def test_a_failed_challenge_is_remembered_across_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "hosting.db"
    first = hosting(db)
    assert first.validate(
        encode_hosting(HostingRecord("liar", frozenset({CID_V0}), 0, 990.0)), "liar"
    )
    assert first.validate(
        encode_hosting(HostingRecord("honest", frozenset({CID_V0}), 0, 990.0)), "honest"
    )
    first.table.challenge_failed("liar", CID_V0, 995.0)
    first.table.challenge_passed("honest", CID_V0)
    await first.save_state()
    assert first.store is not None
    await first.store.aclose()

    again = hosting(db)
    assert await again.load_state() == 2
    assert again.stats.claims_loaded == 2
    # the liar does not count as a holder again just because we restarted, and we still
    # pass the doubt on in our own hosting record
    assert again.table.holders(CID_V0, 1000.0) == {"honest"}
    assert again.table.my_doubts() == {("liar", CID_V0)}
    assert again.table.failures() == {"liar": [CID_V0]}
    # an older record of a restored peer is still refused
    assert not again.validate(claim("liar", 980.0), "liar")
    assert again.store is not None
    await again.store.aclose()


async def test_a_damaged_stored_claim_is_dropped_and_the_rest_load(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "hosting.db"
    first = hosting(db)
    for peer in ("p1", "p2"):
        first.validate(encode_hosting(HostingRecord(peer, frozenset({CID_V0}), 0, 990.0)), peer)
    await first.save_state()
    assert first.store is not None
    await first.store.aclose()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE claims SET state = ? WHERE peer = 'p1'", (b"garbage",))
        conn.execute(
            "INSERT INTO claims VALUES ('p3', ?)",
            (conn.execute("SELECT state FROM claims WHERE peer = 'p2'").fetchone()[0],),
        )  # under another name
    again = hosting(db)
    assert await again.load_state() == 1
    assert again.table.holders(CID_V0, 1000.0) == {"p2"}
    assert again.store is not None
    await again.store.aclose()
    with sqlite3.connect(db) as conn:
        assert [p for (p,) in conn.execute("SELECT peer FROM claims ORDER BY peer")] == ["p2"]


class FailingStore(HostingStore):
    async def save(self, changed: list[ClaimState], removed: list[str]) -> None:
        raise StateStoreError("disk full")


async def test_changes_that_could_not_be_stored_are_retried(tmp_path: Path) -> None:
    db = tmp_path / "hosting.db"
    h = hosting(db)
    real = h.store
    h.store = FailingStore(db)
    h.validate(encode_hosting(HostingRecord("p1", frozenset({CID_V0}), 0, 990.0)), "p1")
    await h.save_state()
    assert h.stats.store_failures == 1
    await h.store.aclose()
    h.store = real
    await h.save_state()  # nothing changed since, but the failed round's change is stored now
    assert real is not None
    await real.aclose()
    again = hosting(db)
    assert await again.load_state() == 1
    assert again.store is not None
    await again.store.aclose()
