"""EIP-4361 messages: the spec's examples, round trips, every field and layout error, fuzzing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eth_utils.address import to_checksum_address as ref_checksum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxnode.core.siwe import (
    MAX_MESSAGE_CHARS,
    SiweError,
    SiweMessage,
    parse_siwe,
)
from tests.unit.siwe_samples import (
    ADDR,
    FULL_TEXT,
    SPEC_EXAMPLES,
    full_message,
    reason_of,
)

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
