"""Sample sign-in messages and helpers shared by the SIWE tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fluxnode.core.errors import RemoteError
from fluxnode.core.siwe import (
    SiweError,
    SiweMessage,
    parse_siwe,
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
