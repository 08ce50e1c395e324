"""Signed world records: model, canonical text, strict wire form, RecordBook, signatures.

Signatures come from eth-account keys made at run time; the land check against a real chain is
tests/chain/test_records.py.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxnode.chain.records import recover_owner, verify_record
from fluxnode.core.cid import DAG_JSON, IDENTITY, Cid, encode_varint
from fluxnode.core.errors import RemoteError
from fluxnode.core.world import Visibility
from fluxnode.core.world_record import (
    MAX_RECORD_ACCESS,
    MAX_SEQ,
    MAX_WIRE_BYTES,
    RecordInvalid,
    WorldRecord,
    from_wire,
    normalize_access,
)
from tests.unit.record_samples import (
    CID_V0,
    CID_V1,
    FAKE_SIG,
    NOW,
    OWNER,
    new_account,
    personal_id,
    signed,
    unsigned,
)


def wire_dict(record: WorldRecord) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(record.to_wire())
    return out


def encode(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def reason_of(data: bytes) -> str:
    with pytest.raises(RecordInvalid) as info:
        from_wire(data)
    return info.value.reason


# -- canonical text ------------------------------------------------------------------------------

GOLDEN_TEXT = (
    "Flux world record v1\n"
    "world: 0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed/plaza\n"
    "cid: QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn\n"
    "seq: 7\n"
    "visibility: private\n"
    "owner: 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\n"
    "issued at: 2026-01-01T00:00:00Z (1767225600)\n"
    "access: 2 addresses\n"
    "0x1111111111111111111111111111111111111111\n"
    "0xabababababababababababababababababababab"
)


def test_canonical_text_golden_vector() -> None:
    assert unsigned().signing_text() == GOLDEN_TEXT
    text = unsigned(visibility=Visibility.PUBLIC, access=(), world_id="land:42").signing_text()
    assert text.splitlines()[1] == "world: land:42"
    assert text.endswith("\naccess: none")
    one = unsigned(access=("0x" + "11" * 20,)).signing_text()
    assert "\naccess: 1 address\n0x1111" in one
    for t in (GOLDEN_TEXT, text, one):
        assert all(line == line.strip() for line in t.split("\n"))
        assert not t.endswith("\n")
        assert t.isascii()


def test_golden_wire_form() -> None:
    record = unsigned().signed(FAKE_SIG)
    assert record.to_wire() == (
        b'{"access":["0x1111111111111111111111111111111111111111",'
        b'"0xabababababababababababababababababababab"],'
        b'"cid":"QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn","issued_at":1767225600,'
        b'"owner":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","seq":7,'
        b'"signature":"0x' + FAKE_SIG.hex().encode() + b'","v":1,'
        b'"visibility":"private","world_id":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed/plaza"}'
    )
    assert from_wire(record.to_wire()) == record
    assert WorldRecord.from_wire(bytearray(record.to_wire())) == record


def test_different_fields_give_different_texts() -> None:
    base = unsigned()
    variants = [
        unsigned(seq=8),
        unsigned(cid=Cid.parse(CID_V1)),
        unsigned(visibility=Visibility.FRIENDS),
        unsigned(access=("0x" + "11" * 20,)),
        unsigned(issued_at=NOW + 1),
        unsigned(world_id=f"{OWNER.lower()}/plaza2"),
    ]
    texts = {base.signing_text(), *(v.signing_text() for v in variants)}
    assert len(texts) == len(variants) + 1


# -- model validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"world_id": "nope"},
        {"world_id": f"{OWNER}/plaza"},  # not canonical (mixed case)
        {"world_id": "land:007"},
        {"world_id": 5},
        {"cid": CID_V0},  # str, not Cid
        {"seq": 0},
        {"seq": -1},
        {"seq": MAX_SEQ + 1},
        {"seq": True},
        {"seq": 1.0},
        {"visibility": "private"},
        {"access": ["0x" + "11" * 20]},  # list, not tuple
        {"access": ("0x" + "ab" * 20, "0x" + "11" * 20)},  # unsorted
        {"access": ("0x" + "11" * 20, "0x" + "11" * 20)},  # duplicate
        {"access": ("0x" + "AB" * 20,)},  # upper case
        {"access": ("0x1234",)},
        {"access": tuple(sorted(f"0x{i:040x}" for i in range(MAX_RECORD_ACCESS + 1)))},
        {"visibility": Visibility.PUBLIC},  # public with an access list
        {"visibility": Visibility.TICKETED},
        {"owner": OWNER.lower()},  # not checksummed
        {"owner": "0x123"},
        {"issued_at": -1},
        {"issued_at": 253_402_300_800},
        {"issued_at": False},
    ],
)
def test_bad_fields_are_malformed(kw: dict[str, Any]) -> None:
    with pytest.raises(RecordInvalid) as info:
        unsigned(**kw)
    assert info.value.reason == "malformed"
    assert info.value.code == "record_invalid"
    assert isinstance(info.value, RemoteError)


@pytest.mark.parametrize("sig", [b"", b"\x00" * 64, b"\x00" * 66, b"\x00" * 64 + b"\x00"])
def test_bad_signature_shape(sig: bytes) -> None:
    with pytest.raises(RecordInvalid, match="signature"):
        unsigned().signed(sig)


def test_normalize_access() -> None:
    a, b = "0x" + "AB" * 20, "0x" + "11" * 20
    assert normalize_access([a, b, a.lower()]) == (b, a.lower())
    for bad in ("0x" + "11" * 20, [1], ["0x12"]):
        with pytest.raises(RecordInvalid):
            normalize_access(bad)
    assert unsigned().access_rule().allow == frozenset(unsigned().access)


def test_largest_record_fits_the_wire_limit() -> None:
    big_cid = Cid.from_bytes(
        encode_varint(1) + encode_varint(DAG_JSON) + bytes([IDENTITY, 64]) + b"\xff" * 64
    )
    record = unsigned(
        world_id=f"{OWNER.lower()}/" + "a" * 63,
        cid=big_cid,
        seq=MAX_SEQ,
        access=tuple(sorted(f"0x{i:040x}" for i in range(MAX_RECORD_ACCESS))),
        issued_at=253_402_300_799,
    ).signed(FAKE_SIG)
    wire = record.to_wire()
    assert len(wire) <= MAX_WIRE_BYTES
    assert from_wire(wire) == record


# -- strict wire parsing -----------------------------------------------------------------------


def good_wire() -> dict[str, Any]:
    return wire_dict(unsigned().signed(FAKE_SIG))


def mutated(**changes: Any) -> bytes:
    d = good_wire()
    for k, v in changes.items():
        if v is KeyError:
            del d[k]
        else:
            d[k] = v
    return encode(d)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b"null",
        b"{",
        b"\xff\xfe",
        "{\u00e9}".encode(),
        b'{"a":NaN}',
        mutated(extra=1),
        mutated(seq=KeyError),
        mutated(v=2),
        mutated(v="1"),
        mutated(seq="7"),
        mutated(seq=7.0),
        mutated(seq=True),
        mutated(seq=0),
        mutated(seq=2**63),
        mutated(issued_at=-5),
        mutated(issued_at=None),
        mutated(cid="not a cid"),
        mutated(cid=123),
        mutated(cid="B" + str(Cid.parse(CID_V1))[1:].upper()),  # valid but not canonical
        mutated(visibility="secret"),
        mutated(visibility=None),
        mutated(access="0x" + "11" * 20),
        mutated(access=[1]),
        mutated(access=["0x" + "AB" * 20]),
        mutated(access=["0x" + "ab" * 20, "0x" + "11" * 20]),
        mutated(access=["0x" + "11" * 20] * 2),
        mutated(access=[f"0x{i:040x}" for i in range(MAX_RECORD_ACCESS + 1)]),
        mutated(visibility="public"),  # access list on a public world
        mutated(owner=OWNER.lower()),
        mutated(owner=None),
        mutated(world_id="land:-1"),
        mutated(world_id=f"{OWNER}/plaza"),
        mutated(world_id=["land:1"]),
        mutated(signature="0x" + "00" * 64),
        mutated(signature="0x" + FAKE_SIG.hex().upper()),
        mutated(signature=FAKE_SIG.hex()),
        mutated(signature="0x" + "00" * 64 + "05"),
        # non-canonical encodings of a valid record
        json.dumps(good_wire(), sort_keys=True).encode(),
        json.dumps(dict(reversed(good_wire().items())), separators=(",", ":")).encode(),
        encode(good_wire()) + b" ",
        b" " + encode(good_wire()),
        encode(good_wire()).replace(b'"seq":7', b'"seq":7e0'),
        encode(good_wire()).replace(b'"seq":7', b'"seq":7,"seq":7'),
        encode(good_wire()).replace(b'plaza"', b'\\u0070laza"'),
    ],
)
def test_from_wire_rejects(data: bytes) -> None:
    assert reason_of(data) == "malformed"


def test_from_wire_rejects_oversized_before_parsing() -> None:
    assert reason_of(b" " * (MAX_WIRE_BYTES + 1)) == "too_large"
    with pytest.raises(RecordInvalid):
        from_wire("{}")  # type: ignore[arg-type]


def test_from_wire_rejects_deep_nesting_cleanly() -> None:
    assert reason_of(b"[" * 10_000 + b"]" * 10_000) == "too_large"
    assert reason_of(b"[" * 8000) == "malformed"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_from_wire_fuzz_bytes(data: bytes) -> None:
    try:
        record = from_wire(data)
    except RecordInvalid as exc:
        assert exc.reason in ("malformed", "too_large")  # noqa: PT017
    else:
        assert record.to_wire() == data


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(good_wire())), _json)
def test_from_wire_fuzz_one_field(key: str, value: Any) -> None:
    d = good_wire()
    d[key] = value
    data = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
    try:
        record = from_wire(data)
    except RecordInvalid as exc:
        assert exc.reason == "malformed"  # noqa: PT017
    else:
        assert record.to_wire() == data


# -- signatures ----------------------------------------------------------------------------------


def verify(record: WorldRecord, now: int = NOW) -> None:
    asyncio.run(verify_record(record, oracle=None, now=now))


def verify_reason(record: WorldRecord, now: int = NOW) -> str:
    with pytest.raises(RecordInvalid) as info:
        verify(record, now)
    return info.value.reason


def test_good_signature_verifies() -> None:
    acct = new_account()
    record = signed(acct, visibility="friends", access=["0x" + "AB" * 20])
    assert record.owner == acct.address
    assert record.access == ("0x" + "ab" * 20,)
    assert recover_owner(record) == acct.address
    verify(record)
    again = from_wire(record.to_wire())
    verify(again)


def test_wrong_key_is_signer_mismatch() -> None:
    alice, mallory = new_account(), new_account()
    forged = signed(mallory, world_id=personal_id(alice))
    # mallory's own key signed a record naming alice as owner
    forged = replace(forged, owner=alice.address)
    assert verify_reason(forged) == "signer_mismatch"


def test_personal_world_of_someone_else_is_not_world_owner() -> None:
    alice, mallory = new_account(), new_account()
    record = signed(mallory, world_id=personal_id(alice))
    assert recover_owner(record) == mallory.address
    assert verify_reason(record) == "not_world_owner"


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 2},
        {"cid": Cid.parse(CID_V0)},
        {"visibility": Visibility.TICKETED},
        {"issued_at": NOW + 1},
        {"world_id": "land:1"},
    ],
)
def test_tampered_field_fails(change: dict[str, Any]) -> None:
    acct = new_account()
    tampered = replace(signed(acct), **change)
    assert verify_reason(tampered) in ("signer_mismatch", "bad_signature")


def test_tampered_access_fails() -> None:
    acct = new_account()
    record = signed(acct, visibility="private", access=["0x" + "11" * 20])
    tampered = replace(record, access=("0x" + "11" * 20, "0x" + "22" * 20))
    assert verify_reason(tampered) in ("signer_mismatch", "bad_signature")


def test_garbage_signature_is_bad_signature() -> None:
    acct = new_account()
    record = replace(signed(acct), signature=b"\x00" * 64 + b"\x1b")
    assert verify_reason(record) == "bad_signature"


def test_land_record_without_chain_fails_closed() -> None:
    acct = new_account()
    record = signed(acct, world_id="land:3")
    reason = verify_reason(record)
    assert reason == "chain_unavailable"


def test_verify_checks_freshness_first() -> None:
    acct = new_account()
    assert verify_reason(signed(acct), now=NOW - 301) == "from_future"
    assert verify_reason(signed(acct), now=NOW + 30 * 86400 + 1) == "expired"
    verify(signed(acct), now=NOW - 300)


def test_sign_record_rejects_bad_input() -> None:
    acct = new_account()
    for kw in ({"cid": "nope"}, {"visibility": "secret"}, {"seq": 0}, {"world_id": "x"}):
        with pytest.raises(RecordInvalid):
            signed(acct, **kw)
