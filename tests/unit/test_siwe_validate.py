"""validate(): a relying party's checks of domain, scheme, chain, URI and times, with skew."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from fluxnode.core.errors import LocalError
from fluxnode.core.siwe import (
    SiweUsageError,
)
from tests.unit.siwe_samples import (
    SKEW,
    T0,
    check,
    check_reason,
    full_message,
)

# -- validate() --------------------------------------------------------------------------------


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
