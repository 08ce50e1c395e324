"""The grammars under EIP-4361: RFC 3339 date-times and RFC 3986 URIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fluxnode.core.siwe import (
    SiweError,
    SiweUsageError,
    format_timestamp,
    is_uri,
    parse_siwe,
    parse_timestamp,
)
from tests.unit.siwe_samples import (
    full_message,
)

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
