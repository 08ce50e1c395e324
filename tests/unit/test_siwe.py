"""Sign-In with Ethereum (EIP-4361): parser, writer, checks, nonces, signatures, EIP-1271.

Signatures come from eth-account keys made at run time; EIP-1271 is a fake async callable (and a
fake web3 for `eip1271_check`); tests/interop/test_siwe_js.py covers viem and a real anvil.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.address import to_checksum_address as ref_checksum
from eth_utils.crypto import keccak as ref_keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxnode.chain.rpc import ChainUnavailable
from fluxnode.chain.siwe_verify import (
    EIP1271_MAGIC,
    SiweVerifier,
    eip191_hash,
    eip1271_check,
    eip1271_checker,
    recover_address,
    signature_from_hex,
    verify_signature,
)
from fluxnode.core.errors import LocalError, RemoteError
from fluxnode.core.siwe import (
    MAX_MESSAGE_CHARS,
    NonceBook,
    SiweError,
    SiweMessage,
    SiweUsageError,
    format_timestamp,
    is_checksum_address,
    is_uri,
    keccak256,
    parse_siwe,
    parse_timestamp,
    to_checksum_address,
    validate,
)

# The three examples of ERC-4361 (implicit scheme, explicit port, explicit scheme).
SPEC_BODY = """ wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

I accept the ExampleOrg Terms of Service: https://example.com/tos

URI: https://example.com/login
Version: 1
Chain ID: 1
Nonce: 32891756
Issued At: 2021-09-30T16:25:24Z
Resources:
- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/
- https://example.com/my-web2-claim.json"""
SPEC_EXAMPLES = [
    ("example.com" + SPEC_BODY, None, "example.com"),
    ("example.com:3388" + SPEC_BODY, None, "example.com:3388"),
    ("https://example.com" + SPEC_BODY, "https", "example.com"),
]

ADDR = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SKEW = timedelta(seconds=30)


def full_message(**changes: Any) -> SiweMessage:
    base = SiweMessage(
        scheme="https",
        domain="worlds.example:8443",
        address=ADDR,
        statement="Enter world 7.",
        uri="https://worlds.example:8443/enter?world=7",
        chain_id=80002,
        nonce="abcDEF12345",
        issued_at="2026-01-01T12:00:00.000Z",
        expiration_time="2026-01-01T12:10:00.000Z",
        not_before="2026-01-01T11:59:00Z",
        request_id="req-1",
        resources=("ipfs://bafy/world.json", "https://worlds.example/tos"),
    )
    return replace(base, **changes)


FULL_TEXT = full_message().to_text()


def reason_of(text: str) -> str:
    with pytest.raises(SiweError) as info:
        parse_siwe(text)
    assert info.value.code == "siwe_invalid"
    assert isinstance(info.value, RemoteError)
    return info.value.reason


# -- keccak / EIP-55 ---------------------------------------------------------------------------


def test_keccak256_known_vectors() -> None:
    empty = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak256(b"").hex() == empty
    abc = "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    assert keccak256(b"abc").hex() == abc


@given(st.binary(max_size=600))
def test_keccak256_matches_eth_utils(data: bytes) -> None:
    assert keccak256(data) == ref_keccak(data)


def test_keccak256_at_rate_boundaries() -> None:
    for n in (135, 136, 137, 271, 272, 273):
        data = os.urandom(n)
        assert keccak256(data) == ref_keccak(data), n


@pytest.mark.parametrize(
    "address",
    [  # the examples of EIP-55
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ],
)
def test_eip55_examples(address: str) -> None:
    assert to_checksum_address(address.lower()) == address
    assert to_checksum_address(address.upper().replace("0X", "0x")) == address
    assert is_checksum_address(address)
    assert not is_checksum_address(address.lower())


@given(st.binary(min_size=20, max_size=20))
def test_checksum_matches_eth_utils(raw: bytes) -> None:
    assert to_checksum_address("0x" + raw.hex()) == ref_checksum("0x" + raw.hex())


# -- parsing the spec's examples and round trips -----------------------------------------------


@pytest.mark.parametrize(("text", "scheme", "domain"), SPEC_EXAMPLES)
def test_spec_examples_parse_and_round_trip(text: str, scheme: str | None, domain: str) -> None:
    msg = parse_siwe(text)
    assert msg.scheme == scheme
    assert msg.domain == domain
    assert msg.address == ADDR
    assert msg.statement == "I accept the ExampleOrg Terms of Service: https://example.com/tos"
    assert msg.uri == "https://example.com/login"
    assert msg.version == "1"
    assert msg.chain_id == 1
    assert msg.nonce == "32891756"
    assert msg.issued_at == "2021-09-30T16:25:24Z"
    assert msg.issued_at_dt == datetime(2021, 9, 30, 16, 25, 24, tzinfo=UTC)
    assert msg.expiration_time is None and msg.not_before is None and msg.request_id is None
    assert msg.resources == (
        "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
        "https://example.com/my-web2-claim.json",
    )
    assert msg.to_text() == text


def test_every_field_round_trips() -> None:
    msg = parse_siwe(FULL_TEXT)
    assert msg == full_message()
    assert msg.to_text() == FULL_TEXT
    assert msg.expiration_time_dt == datetime(2026, 1, 1, 12, 10, tzinfo=UTC)
    assert msg.not_before_dt == datetime(2026, 1, 1, 11, 59, tzinfo=UTC)


def test_minimal_message_layout() -> None:
    text = (
        "example.com wants you to sign in with your Ethereum account:\n"
        f"{ADDR}\n\n\n"
        "URI: https://example.com\nVersion: 1\nChain ID: 137\nNonce: 12345678\n"
        "Issued At: 2021-09-30T16:25:24Z"
    )
    msg = parse_siwe(text)
    assert msg.statement is None and msg.resources is None and msg.scheme is None
    assert msg.to_text() == text


def test_empty_statement_request_id_and_resources_are_kept_apart_from_absent() -> None:
    msg = full_message(statement="", request_id="", resources=())
    text = msg.to_text()
    assert f"{ADDR}\n\n\n\nURI: " in text  # empty statement line between the two empty lines
    assert "\nRequest ID: \n" in text
    assert text.endswith("\nResources:")
    again = parse_siwe(text)
    assert again == msg
    assert again.statement == "" and again.request_id == "" and again.resources == ()
    absent = full_message(statement=None, request_id=None, resources=None)
    assert parse_siwe(absent.to_text()) == absent
    assert absent.to_text() != text


def test_statement_that_looks_like_a_field_is_a_statement() -> None:
    msg = full_message(statement="URI: https://evil.example")
    assert parse_siwe(msg.to_text()).statement == "URI: https://evil.example"


def test_scheme_variants() -> None:
    for scheme in ("http", "https", "chrome-extension", "a+b.c-d"):
        msg = full_message(scheme=scheme)
        assert parse_siwe(msg.to_text()).scheme == scheme
    assert parse_siwe(full_message(scheme=None).to_text()).scheme is None


@pytest.mark.parametrize(
    "domain",
    ["localhost", "127.0.0.1:3000", "[::1]:8080", "[v1.fe]", "user:pw@host.example", "a.b-c.d"],
)
def test_domain_authorities(domain: str) -> None:
    msg = full_message(domain=domain)
    assert parse_siwe(msg.to_text()).domain == domain


# -- every field error -------------------------------------------------------------------------


def swap_line(text: str, prefix: str, new_line: str | None) -> str:
    lines = text.split("\n")
    idx = next(i for i, line in enumerate(lines) if line.startswith(prefix))
    if new_line is None:
        del lines[idx]
    else:
        lines[idx] = new_line
    return "\n".join(lines)


HEADER = FULL_TEXT.split("\n")[0]


@pytest.mark.parametrize(
    ("prefix", "new_line", "reason"),
    [
        # header
        (
            HEADER,
            "https://worlds.example:8443 wants you to sign in with your account:",
            "bad_header",
        ),
        (
            HEADER,
            "https://worlds.example wants you to sign in with your Ethereum account: ",
            "bad_header",
        ),
        (
            HEADER,
            "ht_tp://worlds.example wants you to sign in with your Ethereum account:",
            "bad_scheme",
        ),
        (
            HEADER,
            "://worlds.example wants you to sign in with your Ethereum account:",
            "bad_scheme",
        ),
        (
            HEADER,
            "1https://worlds.example wants you to sign in with your Ethereum account:",
            "bad_scheme",
        ),
        (HEADER, " wants you to sign in with your Ethereum account:", "bad_domain"),
        (HEADER, "https:// wants you to sign in with your Ethereum account:", "bad_domain"),
        (HEADER, "wor lds.example wants you to sign in with your Ethereum account:", "bad_domain"),
        (HEADER, "worlds.example/x wants you to sign in with your Ethereum account:", "bad_domain"),
        (
            HEADER,
            "worlds.example:80a wants you to sign in with your Ethereum account:",
            "bad_domain",
        ),
        (HEADER, "[::1 wants you to sign in with your Ethereum account:", "bad_domain"),
        (HEADER, "[fe80::1%25eth0] wants you to sign in with your Ethereum account:", "bad_domain"),
        (HEADER, "a@b@c wants you to sign in with your Ethereum account:", "bad_domain"),
        (HEADER, "WORLDS.EXAMPLE wants you to sign in with your ethereum account:", "bad_header"),
        # address
        (ADDR, ADDR.lower(), "bad_checksum"),
        (ADDR, ADDR.replace("C02aaA", "C02aAA"), "bad_checksum"),
        (ADDR, ADDR[:-1], "bad_address"),
        (ADDR, ADDR + "0", "bad_address"),
        (ADDR, "0X" + ADDR[2:], "bad_address"),
        (ADDR, ADDR[:-1] + "g", "bad_address"),
        (ADDR, " " + ADDR, "bad_address"),
        (ADDR, "vitalik.eth", "bad_address"),
        # statement
        ("Enter world 7.", "Enter world 7 «now»", "bad_message"),
        ("Enter world 7.", "100% sure", "bad_statement"),
        ("Enter world 7.", 'say "hi"', "bad_statement"),
        ("Enter world 7.", "tab\there", "bad_statement"),
        ("Enter world 7.", "a{b}", "bad_statement"),
        # uri
        ("URI: ", "URI: ", "bad_uri"),
        ("URI: ", "URI: /relative/path", "bad_uri"),
        ("URI: ", "URI: https://worlds.example/a b", "bad_uri"),
        ("URI: ", "URI: https://worlds.example/%zz", "bad_uri"),
        ("URI: ", "URI: https://[::1/", "bad_uri"),
        ("URI: ", "URI: https://h/a#b#c", "bad_uri"),
        ("URI: ", "URI: 1http://h/", "bad_uri"),
        ("URI: ", "URI:https://h/", "missing_field"),
        # version
        ("Version: ", "Version: 2", "bad_version"),
        ("Version: ", "Version: 1.0", "bad_version"),
        ("Version: ", "Version:  1", "bad_version"),
        # chain id
        ("Chain ID: ", "Chain ID: 0x1", "bad_chain_id"),
        ("Chain ID: ", "Chain ID: 080002", "bad_chain_id"),
        ("Chain ID: ", "Chain ID: -1", "bad_chain_id"),
        ("Chain ID: ", "Chain ID: ", "bad_chain_id"),
        ("Chain ID: ", "Chain ID: 1 ", "bad_chain_id"),
        ("Chain ID: ", "Chain ID: " + "9" * 79, "bad_chain_id"),
        ("Chain ID: ", "Chain ID: " + str(2**256), "bad_chain_id"),
        ("Chain ID: ", "Chain ID: ٣", "bad_message"),
        # nonce
        ("Nonce: ", "Nonce: abc1234", "bad_nonce"),
        ("Nonce: ", "Nonce: abcd-12345", "bad_nonce"),
        ("Nonce: ", "Nonce: ", "bad_nonce"),
        # timestamps
        ("Issued At: ", "Issued At: 2026-01-01 12:00:00Z", "bad_issued_at"),
        ("Issued At: ", "Issued At: 2026-01-01T12:00:00", "bad_issued_at"),
        ("Issued At: ", "Issued At: 2026-02-30T12:00:00Z", "bad_issued_at"),
        ("Issued At: ", "Issued At: 2026-01-01T24:00:00Z", "bad_issued_at"),
        ("Issued At: ", "Issued At: 2026-01-01T12:60:00Z", "bad_issued_at"),
        ("Issued At: ", "Issued At: 2026-01-01T12:00:61Z", "bad_issued_at"),
        ("Issued At: ", "Issued At: 2026-01-01T12:00:00+24:00", "bad_issued_at"),
        ("Issued At: ", "Issued At: 2026-01-01T12:00:00+0100", "bad_issued_at"),
        ("Issued At: ", "Issued At: 2026-01-01T12:00:00.Z", "bad_issued_at"),
        ("Issued At: ", "Issued At: 0000-01-01T00:00:00Z", "bad_issued_at"),
        ("Issued At: ", "Issued At: 1700000000", "bad_issued_at"),
        ("Expiration Time: ", "Expiration Time: tomorrow", "bad_expiration_time"),
        ("Not Before: ", "Not Before: 2026-13-01T00:00:00Z", "bad_not_before"),
        # request id, resources
        ("Request ID: ", "Request ID: a b", "bad_request_id"),
        ("Request ID: ", "Request ID: a?b", "bad_request_id"),
        ("- ipfs://", "- not a uri", "bad_resource"),
        ("- ipfs://", "-ipfs://bafy/world.json", "unexpected_line"),
        ("- ipfs://", "-  ipfs://bafy/world.json", "bad_resource"),
        # layout
        ("URI: ", None, "missing_field"),
        ("Version: ", None, "missing_field"),
        ("Chain ID: ", None, "missing_field"),
        ("Nonce: ", None, "missing_field"),
        ("Issued At: ", None, "missing_field"),
        ("Resources:", "Resources: ", "unexpected_line"),
        ("Resources:", "resources:", "unexpected_line"),
        ("Request ID: ", "Request Id: req-1", "unexpected_line"),
        ("Request ID: ", "Comment: hello", "unexpected_line"),
    ],
)
def test_field_errors(prefix: str, new_line: str | None, reason: str) -> None:
    assert reason_of(swap_line(FULL_TEXT, prefix, new_line)) == reason


def test_layout_errors() -> None:
    lines = FULL_TEXT.split("\n")
    assert reason_of(FULL_TEXT + "\n") == "unexpected_line"  # trailing line break
    assert reason_of(FULL_TEXT.replace("\n", "\r\n")) == "bad_line_ending"
    assert reason_of("") == "bad_header"
    assert reason_of(lines[0]) == "missing_field"
    assert reason_of("\n".join(lines[:2])) == "bad_layout"
    # out-of-order optional fields
    swapped = lines[:]
    swapped[10], swapped[11] = swapped[11], swapped[10]  # Expiration Time <-> Not Before
    assert swapped[10].startswith("Not Before: ")
    assert reason_of("\n".join(swapped)) == "unexpected_line"
    # repeated field
    assert reason_of("\n".join([*lines[:11], lines[10], *lines[11:]])) == "unexpected_line"
    # required fields out of order
    swapped = lines[:]
    swapped[6], swapped[7] = swapped[7], swapped[6]
    assert reason_of("\n".join(swapped)) == "missing_field"
    # statement without its empty lines, statement over two lines, missing empty line 3
    assert reason_of("\n".join([*lines[:3], *lines[5:]])) == "bad_layout"
    two = "\n".join([*lines[:3], "line one", "line two", "", *lines[5:]])
    assert reason_of(two) == "bad_layout"
    assert reason_of("\n".join([lines[0], lines[1], "x", *lines[3:]])) == "bad_layout"
    # a blank line somewhere in the fields
    assert reason_of("\n".join([*lines[:7], "", *lines[7:]])) == "missing_field"
    assert reason_of(FULL_TEXT.replace("\nResources:", "\n\nResources:")) == "unexpected_line"


def test_length_limit() -> None:
    room = MAX_MESSAGE_CHARS - (len(FULL_TEXT) - len("Enter world 7."))
    fits = full_message(statement="x" * room)
    assert len(fits.to_text()) == MAX_MESSAGE_CHARS
    assert parse_siwe(fits.to_text()) == fits
    too_big = fits.to_text().replace("x" * room, "x" * (room + 1))
    assert reason_of(too_big) == "too_long"
    with pytest.raises(SiweError, match="too_long"):
        full_message(statement="x" * (room + 1))
    assert reason_of("a" * 10_000_000) == "too_long"  # refused before any work


def test_non_text_input() -> None:
    assert reason_of(FULL_TEXT.encode()) == "bad_message"  # type: ignore[arg-type]


def test_constructor_checks_fields_too() -> None:
    with pytest.raises(SiweError, match="bad_nonce"):
        full_message(nonce="short")
    with pytest.raises(SiweError, match="bad_chain_id"):
        full_message(chain_id=True)
    with pytest.raises(SiweError, match="bad_chain_id"):
        full_message(chain_id=-1)
    with pytest.raises(SiweError, match="bad_statement"):
        full_message(statement="two\nlines")
    with pytest.raises(SiweError, match="bad_version"):
        full_message(version="2")
    with pytest.raises(SiweError, match="bad_resource"):
        full_message(resources=("https://ok.example", "no scheme"))
    with pytest.raises(SiweError, match="bad_issued_at"):
        full_message(issued_at="now")
    with pytest.raises(SiweError, match="too_long"):
        full_message(resources=("https://x.example/" + "a" * MAX_MESSAGE_CHARS,))


# -- RFC 3339 / RFC 3986 details -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-09-30T16:25:24Z", datetime(2021, 9, 30, 16, 25, 24, tzinfo=UTC)),
        ("2021-09-30t16:25:24z", datetime(2021, 9, 30, 16, 25, 24, tzinfo=UTC)),
        ("2021-09-30T16:25:24.5Z", datetime(2021, 9, 30, 16, 25, 24, 500000, tzinfo=UTC)),
        ("2021-09-30T16:25:24.123456789Z", datetime(2021, 9, 30, 16, 25, 24, 123456, tzinfo=UTC)),
        ("2021-09-30T18:25:24+02:00", datetime(2021, 9, 30, 16, 25, 24, tzinfo=UTC)),
        ("2021-09-30T16:25:24-00:30", datetime(2021, 9, 30, 16, 55, 24, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2017, 1, 1, tzinfo=UTC)),  # leap second
        ("2024-02-29T00:00:00Z", datetime(2024, 2, 29, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_rfc3339_timestamps(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected
    assert parse_siwe(full_message(issued_at=text).to_text()).issued_at == text


@pytest.mark.parametrize(
    "text",
    [
        "2023-02-29T00:00:00Z",
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:60Z",
        "2021-9-30T1:2:3Z",
    ],
)
def test_rfc3339_rejects(text: str) -> None:
    with pytest.raises(SiweError):
        parse_timestamp(text)


def test_format_timestamp() -> None:
    when = datetime(2026, 1, 1, 13, 0, 0, 123999, tzinfo=timezone(timedelta(hours=1)))
    assert format_timestamp(when) == "2026-01-01T12:00:00.123Z"
    with pytest.raises(SiweUsageError):
        format_timestamp(datetime(2026, 1, 1))  # naive


@pytest.mark.parametrize(
    "uri",
    [
        "https://example.com",
        "https://example.com/",
        "https://user:pw@example.com:8080/a/b;c=d?q=1&r=/x?#frag/?",
        "http://[2001:db8::7]/c=GB?objectClass?one",
        "http://[v7.fe:80]/",
        "ldap://[2001:db8::7]/c=GB?objectClass?one",
        "mailto:John.Doe@example.com",
        "urn:oasis:names:specification:docbook:dtd:xml:4.1.2",
        "tel:+1-816-555-1212",
        "did:pkh:eip155:1:0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
        "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
        "file:///etc/hosts",
        "x:",
        "x:/",
        "news:comp.infosystems.www.servers.unix",
        "https://example.com/%E2%82%AC",
        "https://example.com:/",
        "https://",
    ],
)
def test_valid_uris(uri: str) -> None:
    assert is_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "example.com",
        "//example.com/",
        "/path",
        "https://exa mple.com",
        "https://example.com/%2",
        "https://example.com/%g0",
        "https://example.com/<x>",
        "https://example.com/a|b",
        "https://example.com:8x/",
        "https://[::1/",
        "https://[::g]/",
        "https://[fe80::1%25en0]/",
        "https://ex@mple@example.com/",
        "https://example.com/#a#b",
        "https://example.com/\n",
        "https://例え.jp/",
        "1abc:x",
        "x://a:b/",
    ],
)
def test_invalid_uris(uri: str) -> None:
    assert not is_uri(uri)


# -- fuzzing: nothing but SiweError, and what parses round-trips ---------------------------------


def parse_or_siwe_error(text: str) -> None:
    """Anything but SiweError escapes and fails the test; what parses round-trips exactly."""
    try:
        msg = parse_siwe(text)
    except SiweError as exc:
        error: SiweError | None = exc
    else:
        error = None
        assert msg.to_text() == text
    assert error is None or (error.reason and error.code == "siwe_invalid")


@settings(max_examples=300)
@given(st.text(max_size=400))
def test_fuzz_random_text(text: str) -> None:
    parse_or_siwe_error(text)


FIELD_ALPHABET = st.sampled_from(
    [*"abcXYZ0189:/?#[]@!$&'()*+,;=-._~% \n\r\t\"<>{}|\\^`", "é", "\x00", "\u2028"]
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutations_of_a_valid_message(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from([FULL_TEXT, SPEC_EXAMPLES[0][0], SPEC_EXAMPLES[2][0]]))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["insert", "delete", "replace", "lines", "dup", "cut"]))
        pos = data.draw(st.integers(0, len(text)))
        if op == "insert":
            text = (
                text[:pos] + data.draw(st.text(FIELD_ALPHABET, min_size=1, max_size=5)) + text[pos:]
            )
        elif op == "delete":
            text = text[:pos] + text[pos + data.draw(st.integers(1, 8)) :]
        elif op == "replace":
            text = text[:pos] + data.draw(FIELD_ALPHABET) + text[pos + 1 :]
        elif op == "cut":
            text = text[:pos]
        else:
            lines = text.split("\n")
            i = data.draw(st.integers(0, len(lines) - 1))
            j = data.draw(st.integers(0, len(lines) - 1))
            if op == "lines":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines.insert(j, lines[i])
            text = "\n".join(lines)
    parse_or_siwe_error(text)


hosts = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,6}){0,2}", fullmatch=True)
domains = st.builds(
    lambda h, p: h + (f":{p}" if p is not None else ""), hosts, st.none() | st.integers(0, 65535)
)
pchars = st.lists(
    st.sampled_from([*"abcXYZ019-._~!$&'()*+,;=:@", "%20", "%C3%A9"]), max_size=12
).map("".join)
uris = st.builds(
    lambda s, d, path, q: f"{s}://{d}/{path}" + (f"?{q}" if q is not None else ""),
    st.sampled_from(["https", "http", "ipfs", "ar"]),
    domains,
    pchars,
    st.none() | pchars,
)
timestamps = st.builds(
    lambda dt, frac, off: (
        dt.strftime("%Y-%m-%dT%H:%M:%S")
        + frac
        + (
            "Z"
            if off is None
            else f"{'+' if off >= 0 else '-'}{abs(off) // 60:02d}:{abs(off) % 60:02d}"
        )
    ),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["", ".0", ".123", ".123456789"]),
    st.none() | st.integers(-23 * 60 - 59, 23 * 60 + 59),
)
messages = st.builds(
    SiweMessage,
    scheme=st.none() | st.sampled_from(["https", "http", "app+x"]),
    domain=domains,
    address=st.binary(min_size=20, max_size=20).map(lambda b: ref_checksum("0x" + b.hex())),
    statement=st.none()
    | st.text(st.sampled_from(list("abc XYZ 019:/?#[]@!$&'()*+,;=-._~")), max_size=60),
    uri=uris,
    chain_id=st.integers(0, 2**256 - 1),
    nonce=st.from_regex(r"[A-Za-z0-9]{8,40}", fullmatch=True),
    issued_at=timestamps,
    expiration_time=st.none() | timestamps,
    not_before=st.none() | timestamps,
    request_id=st.none() | pchars,
    resources=st.none() | st.lists(uris, max_size=4).map(tuple),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_generated_messages_round_trip(msg: SiweMessage) -> None:
    text = msg.to_text()
    assert parse_siwe(text) == msg
    assert parse_siwe(text).to_text() == text


# -- validate() --------------------------------------------------------------------------------


def check(msg: SiweMessage, now: datetime = T0, **kw: Any) -> None:
    args: dict[str, Any] = {
        "expected_domain": "worlds.example:8443",
        "expected_chain_id": 80002,
        "now": now,
        "skew": SKEW,
        "expected_uri_prefix": None,
    }
    args.update(kw)
    validate(msg, **args)


def check_reason(msg: SiweMessage, now: datetime = T0, **kw: Any) -> str:
    with pytest.raises(SiweError) as info:
        check(msg, now, **kw)
    assert info.value.http_status == 401
    return info.value.reason


def test_validate_accepts_a_good_message() -> None:
    check(full_message())
    check(full_message(), expected_uri_prefix="https://worlds.example:8443/enter")
    check(full_message(), expected_uri_prefix="https://worlds.example:8443/")
    check(full_message(), expected_scheme="https")
    check(full_message(scheme=None), expected_scheme="https")  # https is the default


def test_validate_domain_chain_scheme_uri() -> None:
    msg = full_message()
    assert check_reason(msg, expected_domain="worlds.example") == "wrong_domain"
    assert check_reason(msg, expected_domain="evil.example:8443") == "wrong_domain"
    assert check_reason(msg, expected_chain_id=137) == "wrong_chain"
    assert check_reason(msg, expected_scheme="http") == "wrong_scheme"
    assert check_reason(full_message(scheme="http"), expected_scheme="https") == "wrong_scheme"
    assert check_reason(msg, expected_uri_prefix="https://other.example/") == "wrong_uri"
    # a prefix only matches whole components
    evil = full_message(uri="https://worlds.example:8443@evil.org/enter")
    assert check_reason(evil, expected_uri_prefix="https://worlds.example:8443") == "wrong_uri"
    evil = full_message(uri="https://worlds.example:84431/enter")
    assert check_reason(evil, expected_uri_prefix="https://worlds.example:8443") == "wrong_uri"
    check(
        full_message(uri="https://worlds.example:8443"),
        expected_uri_prefix="https://worlds.example:8443",
    )
    check(
        full_message(uri="https://worlds.example:8443?x"),
        expected_uri_prefix="https://worlds.example:8443",
    )


def test_validate_times_with_skew() -> None:
    msg = full_message()  # issued 12:00:00, not before 11:59:00, expires 12:10:00
    issued, expires, not_before = msg.issued_at_dt, msg.expiration_time_dt, msg.not_before_dt
    assert expires is not None and not_before is not None
    check(msg, issued - SKEW)  # issued up to `skew` in our future
    assert check_reason(msg, issued - SKEW - timedelta(microseconds=1)) == "issued_in_future"
    check(msg, expires + SKEW - timedelta(microseconds=1))
    assert check_reason(msg, expires + SKEW) == "expired"
    assert check_reason(msg, expires + timedelta(days=365)) == "expired"
    early = full_message(issued_at="2026-01-01T11:00:00Z")  # issued long before not-before
    check(early, not_before - SKEW)
    assert check_reason(early, not_before - SKEW - timedelta(microseconds=1)) == "not_yet_valid"
    # no expiration: valid forever as far as validate() cares (the nonce TTL bounds it)
    check(full_message(expiration_time=None), T0 + timedelta(days=3650))
    # offsets are honoured
    check(full_message(issued_at="2026-01-01T13:00:00+01:00"), T0)
    assert (
        check_reason(full_message(issued_at="2026-01-01T13:00:00-01:00"), T0) == "issued_in_future"
    )


def test_validate_usage_errors() -> None:
    with pytest.raises(SiweUsageError):
        check(full_message(), datetime(2026, 1, 1, 12))  # naive
    with pytest.raises(SiweUsageError):
        check(full_message(), skew=timedelta(seconds=-1))
    assert isinstance(SiweUsageError("x"), LocalError)


# -- NonceBook ---------------------------------------------------------------------------------


def nonce_reason(book: NonceBook, nonce: str, now: datetime) -> str:
    with pytest.raises(SiweError) as info:
        book.consume(nonce, now)
    return info.value.reason


def test_nonce_single_use() -> None:
    book = NonceBook(ttl=timedelta(minutes=5))
    nonce = book.issue(T0)
    assert len(nonce) >= 8 and nonce.isalnum() and nonce.isascii()
    book.check(nonce, T0)
    book.consume(nonce, T0 + timedelta(seconds=1))
    assert nonce_reason(book, nonce, T0 + timedelta(seconds=2)) == "nonce_reused"
    with pytest.raises(SiweError, match="nonce_reused"):
        book.check(nonce, T0)
    assert nonce_reason(book, "neverIssued123", T0) == "nonce_invalid"
    assert nonce_reason(book, "", T0) == "nonce_invalid"
    stats = book.statistics()
    assert (stats.issued, stats.consumed, stats.rejected_reused, stats.rejected_unknown) == (
        1,
        1,
        1,
        2,
    )
    assert stats.outstanding == 0 and stats.remembered_spent == 1


def test_nonces_are_distinct_and_random() -> None:
    book = NonceBook()
    nonces = {book.issue(T0) for _ in range(1000)}
    assert len(nonces) == 1000
    assert all(len(n) == NonceBook.NONCE_LENGTH for n in nonces)


def test_nonce_expiry() -> None:
    book = NonceBook(ttl=timedelta(minutes=5))
    a = book.issue(T0)
    b = book.issue(T0 + timedelta(minutes=1))
    book.consume(b, T0 + timedelta(minutes=5, seconds=59))
    assert nonce_reason(book, a, T0 + timedelta(minutes=5)) == "nonce_invalid"  # expired
    with pytest.raises(SiweError, match="nonce_invalid"):
        book.check(a, T0 + timedelta(minutes=5))
    assert book.statistics().expired == 1
    # the spent b is forgotten once it would have expired: then it is merely unknown
    assert nonce_reason(book, b, T0 + timedelta(minutes=6)) == "nonce_invalid"


def test_nonce_expiry_with_a_clock_that_went_back() -> None:
    book = NonceBook(ttl=timedelta(minutes=5))
    late = book.issue(T0 + timedelta(hours=1))
    early = book.issue(T0)  # clock stepped back: issued after `late` but expires first
    assert nonce_reason(book, early, T0 + timedelta(minutes=5)) == "nonce_invalid"
    book.consume(late, T0 + timedelta(minutes=5))


def test_nonce_eviction_of_the_oldest() -> None:
    book = NonceBook(max_outstanding=3)
    first, *rest = [book.issue(T0 + timedelta(seconds=i)) for i in range(4)]
    assert len(book) == 3
    assert nonce_reason(book, first, T0 + timedelta(seconds=5)) == "nonce_invalid"
    for n in rest:
        book.consume(n, T0 + timedelta(seconds=5))
    stats = book.statistics()
    assert stats.evicted == 1 and stats.consumed == 3
    assert stats.remembered_spent == 3  # capped at max_outstanding too
    book.issue(T0)
    book.consume(book.issue(T0), T0)
    assert book.statistics().remembered_spent == 3


def test_nonce_book_usage_errors() -> None:
    with pytest.raises(SiweUsageError):
        NonceBook(ttl=timedelta(0))
    with pytest.raises(SiweUsageError):
        NonceBook(max_outstanding=0)
    with pytest.raises(SiweUsageError):
        NonceBook().issue(datetime(2026, 1, 1))


# -- signatures ----------------------------------------------------------------------------------


def sign(key: Any, text: str) -> bytes:
    return bytes(key.sign_message(encode_defunct(text=text)).signature)


def signed_message(key: Any, **changes: Any) -> tuple[SiweMessage, str]:
    msg = full_message(address=key.address, **changes)
    return msg, msg.to_text()


async def sig_reason(
    msg: SiweMessage,
    text: str,
    sig: Any,
    is_valid_1271: Callable[..., Awaitable[bool]] | None = None,
) -> str:
    with pytest.raises(SiweError) as info:
        await verify_signature(msg, text, sig, is_valid_1271=is_valid_1271)
    return info.value.reason


async def test_eoa_signature_verifies() -> None:
    key = Account.create()
    msg, text = signed_message(key)
    sig = sign(key, text)
    assert recover_address(text, sig) == key.address
    await verify_signature(msg, text, sig, is_valid_1271=None)
    # v as 0/1 (some hardware wallets) is the same signature
    await verify_signature(msg, text, sig[:64] + bytes([sig[64] - 27]))
    await verify_signature(msg, text, bytearray(sig))  # type: ignore[arg-type]


async def test_another_keys_signature_is_rejected() -> None:
    key, other = Account.create(), Account.create()
    msg, text = signed_message(key)
    assert await sig_reason(msg, text, sign(other, text)) == "wrong_signer"
    # a signature by the right key over different text
    _, other_text = signed_message(key, nonce="zzzzzzzzzzz")
    assert await sig_reason(msg, text, sign(key, other_text)) == "wrong_signer"


@pytest.mark.parametrize(
    "sig",
    [
        b"",
        b"\x00" * 64,
        b"\x00" * 66,
        b"\x00" * 65,
        b"\xff" * 65,
        b"\x01" * 64 + b"\x05",
        b"\x01" * 64 + b"\x25",  # EIP-155 style v: not for messages
        b"\x00" * 64 + b"\x1b",
        "0x" + "00" * 65,
        None,
        12345,
    ],
)
async def test_malformed_signatures_are_rejected_cleanly(sig: Any) -> None:
    key = Account.create()
    msg, text = signed_message(key)
    assert await sig_reason(msg, text, sig) in ("bad_signature", "wrong_signer")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_recover_garbage_never_crashes(sig: bytes) -> None:
    try:
        recover_address(FULL_TEXT, sig)
    except SiweError as exc:
        reason: str | None = exc.reason
    else:
        reason = None  # 65 bytes that happen to recover some key
    assert reason in (None, "bad_signature")


async def test_text_must_be_the_messages_text() -> None:
    key = Account.create()
    msg, text = signed_message(key)
    with pytest.raises(SiweUsageError):
        await verify_signature(msg, text + " ", sign(key, text))


class Fake1271:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.calls: list[tuple[str, bytes, bytes]] = []

    async def __call__(self, address: str, message_hash: bytes, signature: bytes) -> bool:
        self.calls.append((address, message_hash, signature))
        return self.answer


async def test_contract_wallet_is_asked_for_non_eoa_signatures() -> None:
    wallet = to_checksum_address("0x" + os.urandom(20).hex())
    msg = full_message(address=wallet)
    text = msg.to_text()
    safe_sig = os.urandom(130)  # e.g. two owners' signatures
    fake = Fake1271(True)
    await verify_signature(msg, text, safe_sig, is_valid_1271=fake)
    assert fake.calls == [(wallet, eip191_hash(text), safe_sig)]
    assert eip191_hash(text) == ref_keccak(
        b"\x19Ethereum Signed Message:\n" + str(len(text)).encode() + text.encode()
    )
    # a 65-byte signature by some owner key (not the wallet address) goes to the contract too
    owner = Account.create()
    fake.calls.clear()
    await verify_signature(msg, text, sign(owner, text), is_valid_1271=fake)
    assert len(fake.calls) == 1
    # an empty signature (e.g. a Safe's on-chain approved message) is the contract's call
    fake.calls.clear()
    await verify_signature(msg, text, b"", is_valid_1271=fake)
    assert fake.calls[0][2] == b""


async def test_contract_wallet_saying_no_is_wrong_signer() -> None:
    wallet = to_checksum_address("0x" + os.urandom(20).hex())
    msg = full_message(address=wallet)
    fake = Fake1271(False)
    assert await sig_reason(msg, msg.to_text(), os.urandom(70), fake) == "wrong_signer"
    assert len(fake.calls) == 1


async def test_contract_wallet_not_asked_when_the_eoa_signature_holds() -> None:
    key = Account.create()
    msg, text = signed_message(key)
    fake = Fake1271(False)
    await verify_signature(msg, text, sign(key, text), is_valid_1271=fake)
    assert fake.calls == []


async def test_oversized_signature_is_refused_before_the_contract_call() -> None:
    msg = full_message()
    fake = Fake1271(True)
    assert await sig_reason(msg, msg.to_text(), b"\x00" * 20_000, fake) == "bad_signature"
    assert fake.calls == []


async def test_a_failing_1271_call_propagates() -> None:
    async def down(address: str, message_hash: bytes, signature: bytes) -> bool:
        raise ChainUnavailable("no RPC")

    msg = full_message()
    with pytest.raises(ChainUnavailable):
        await verify_signature(msg, msg.to_text(), b"\x01" * 70, is_valid_1271=down)


def test_signature_from_hex() -> None:
    assert signature_from_hex("0x" + "ab" * 65) == b"\xab" * 65
    assert signature_from_hex("0x") == b""
    for bad in ("ab" * 65, "0x" + "a" * 129, "0xzz", "0x" + "00" * 20_000, 5):
        with pytest.raises(SiweError, match="bad_signature"):
            signature_from_hex(bad)  # type: ignore[arg-type]


# -- eip1271_check with a stand-in web3 ------------------------------------------------------------


class FakeEth:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.calls: list[tuple[dict[str, Any], Any]] = []

    async def call(self, tx: dict[str, Any], block: Any) -> bytes:
        self.calls.append((tx, block))
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return bytes(self.outcome)


class FakeW3:
    def __init__(self, outcome: Any) -> None:
        self.eth = FakeEth(outcome)

    @staticmethod
    def to_checksum_address(address: str) -> str:
        return ref_checksum(address)


async def test_eip1271_check_call_and_answers() -> None:
    from eth_abi.abi import decode
    from web3.exceptions import ContractLogicError

    addr, h, sig = ADDR, os.urandom(32), os.urandom(77)
    ok = FakeW3(EIP1271_MAGIC + bytes(28))
    assert await eip1271_check(ok, addr.lower(), h, sig)  # type: ignore[arg-type]
    tx, block = ok.eth.calls[0]
    assert tx["to"] == ADDR and block == "latest"
    assert tx["data"][:4] == bytes.fromhex("1626ba7e")
    assert ref_keccak(b"isValidSignature(bytes32,bytes)")[:4] == EIP1271_MAGIC
    assert decode(["bytes32", "bytes"], tx["data"][4:]) == (h, sig)
    for answer in (
        b"",  # no code at the address
        EIP1271_MAGIC,  # too short
        EIP1271_MAGIC + b"\x00" * 27 + b"\x01",  # dirty padding
        bytes(32),
        b"\xff" * 32,
    ):
        assert not await eip1271_check(FakeW3(answer), addr, h, sig)  # type: ignore[arg-type]
    assert await eip1271_check(FakeW3(EIP1271_MAGIC + bytes(60)), addr, h, sig)  # type: ignore[arg-type]
    reverted = FakeW3(ContractLogicError("execution reverted"))
    assert not await eip1271_check(reverted, addr, h, sig)  # type: ignore[arg-type]
    with pytest.raises(ChainUnavailable):
        await eip1271_check(FakeW3(ConnectionError("refused")), addr, h, sig)  # type: ignore[arg-type]
    with pytest.raises(SiweUsageError):
        await eip1271_check(ok, addr, b"short", sig)  # type: ignore[arg-type]


async def test_eip1271_checker_runs_through_a_pool_call() -> None:
    w3 = FakeW3(EIP1271_MAGIC + bytes(28))
    seen: list[int] = []

    async def call(fn: Callable[[Any], Awaitable[bool]]) -> bool:
        seen.append(1)
        return await fn(w3)

    checker = eip1271_checker(call)
    assert await checker(ADDR, bytes(32), b"sig")
    assert seen == [1]


# -- SiweVerifier ------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def verifier(clock: Clock, **kw: Any) -> SiweVerifier:
    args: dict[str, Any] = {
        "domain": "worlds.example:8443",
        "chain_id": 80002,
        "uri_prefix": "https://worlds.example:8443/",
        "scheme": "https",
        "skew": SKEW,
        "clock": clock,
    }
    args.update(kw)
    return SiweVerifier(**args)


def sign_in(key: Any, v: SiweVerifier, clock: Clock, **changes: Any) -> tuple[str, bytes]:
    fields: dict[str, Any] = {
        "nonce": v.issue_nonce(),
        "issued_at": format_timestamp(clock.now),
        "expiration_time": format_timestamp(clock.now + timedelta(minutes=5)),
        "not_before": None,
    }
    fields.update(changes)
    msg = full_message(address=key.address, **fields)
    text = msg.to_text()
    return text, sign(key, text)


async def verifier_reason(v: SiweVerifier, text: str, sig: bytes) -> str:
    with pytest.raises(SiweError) as info:
        await v.verify(text, sig)
    return info.value.reason


async def test_verifier_end_to_end() -> None:
    clock = Clock(T0)
    v = verifier(clock)
    key = Account.create()
    text, sig = sign_in(key, v, clock)
    clock.now += timedelta(seconds=3)
    msg = await v.verify(text, sig)
    assert msg.address == key.address
    assert await verifier_reason(v, text, sig) == "nonce_reused"  # replay
    stats = v.statistics()
    assert stats.verified == 1 and stats.rejected == {"nonce_reused": 1}
    assert stats.nonces.consumed == 1


async def test_verifier_rejections() -> None:
    clock = Clock(T0)
    v = verifier(clock)
    key, other = Account.create(), Account.create()
    cases = {
        "wrong_domain": sign_in(key, v, clock, domain="evil.example"),
        "wrong_chain": sign_in(key, v, clock, chain_id=137),
        "wrong_uri": sign_in(key, v, clock, uri="https://evil.example/"),
        "wrong_scheme": sign_in(key, v, clock, scheme="http"),
        "nonce_invalid": sign_in(key, v, clock, nonce="madeUpNonce1"),
        "issued_in_future": sign_in(
            key, v, clock, issued_at=format_timestamp(T0 + timedelta(hours=1))
        ),
        "expired": sign_in(
            key, v, clock, expiration_time=format_timestamp(T0 - timedelta(hours=1))
        ),
        "not_yet_valid": sign_in(
            key, v, clock, not_before=format_timestamp(T0 + timedelta(hours=1))
        ),
    }
    for reason, (text, sig) in cases.items():
        assert await verifier_reason(v, text, sig) == reason, reason
    text, _ = sign_in(key, v, clock)
    assert await verifier_reason(v, text, sign(other, text)) == "wrong_signer"
    # the nonce is spent by the failed attempt: one signature check per nonce
    assert await verifier_reason(v, text, sign(key, text)) == "nonce_reused"
    assert await verifier_reason(v, "garbage", b"") == "bad_header"
    text, sig = sign_in(key, v, clock)
    clock.now += timedelta(minutes=11)  # past the nonce TTL (10 min) and the expiration
    assert await verifier_reason(v, text, sig) == "expired"
    text, sig = sign_in(key, v, clock, expiration_time=None)
    clock.now += timedelta(minutes=11)
    assert await verifier_reason(v, text, sig) == "nonce_invalid"
    assert v.statistics().verified == 0


async def test_verifier_with_contract_wallet() -> None:
    clock = Clock(T0)
    fake = Fake1271(True)
    v = verifier(clock, is_valid_1271=fake)
    wallet = to_checksum_address("0x" + os.urandom(20).hex())
    msg = full_message(
        address=wallet,
        nonce=v.issue_nonce(),
        issued_at=format_timestamp(T0),
        expiration_time=None,
        not_before=None,
    )
    assert (await v.verify(msg.to_text(), b"\x42" * 100)).address == wallet
    assert fake.calls == [(wallet, eip191_hash(msg.to_text()), b"\x42" * 100)]
