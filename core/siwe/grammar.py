"""The text grammars EIP-4361 builds on: RFC 3986 URIs and authorities, RFC 3339 date-times,
and the patterns of the message's own fields (statement, request id, nonce, chain id)."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta, timezone

from fluxnode.core.errors import SiweError, SiweUsageError


def show(text: str, limit: int = 80) -> str:
    """`text` quoted for an error message, cut at `limit` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


# -- RFC 3986 pieces ---------------------------------------------------------------------------

_PCT = r"%[0-9A-Fa-f]{2}"
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_USERINFO_RE = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*")
_REG_NAME_RE = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*")
_IPVFUTURE_RE = re.compile(rf"[vV][0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+")
_PORT_RE = re.compile(r"[0-9]*")
_URI_RE = re.compile(rf"({SCHEME_RE.pattern}):([^?#]*)(?:\?([^#]*))?(?:#(.*))?", re.DOTALL)
_PATH_ABEMPTY_RE = re.compile(rf"(?:/{_PCHAR}*)*")
# path-absolute / path-rootless / path-empty (a hier-part not starting with "//")
_PATH_NOAUTH_RE = re.compile(rf"/?(?:{_PCHAR}+(?:/{_PCHAR}*)*)?")
_QUERY_RE = re.compile(rf"(?:{_PCHAR}|[/?])*")
STATEMENT_RE = re.compile(rf"[{_UNRESERVED}:/?#\[\]@{_SUB_DELIMS} ]*")
REQUEST_ID_RE = re.compile(rf"{_PCHAR}*")
NONCE_RE = re.compile(r"[A-Za-z0-9]{8,}")
CHAIN_ID_RE = re.compile(r"0|[1-9][0-9]{0,77}")


def _is_ip_literal(text: str) -> bool:
    """`"[" ( IPv6address / IPvFuture ) "]"`."""
    if len(text) < 2 or text[0] != "[" or text[-1] != "]":
        return False
    inner = text[1:-1]
    if _IPVFUTURE_RE.fullmatch(inner):
        return True
    if "%" in inner or not inner.isascii():  # ipaddress accepts zone ids; RFC 3986 does not
        return False
    try:
        ipaddress.IPv6Address(inner)
    except ValueError:
        return False
    return True


def is_authority(text: str, *, require_host: bool) -> bool:
    """`[ userinfo "@" ] host [ ":" port ]` (RFC 3986 §3.2)."""
    userinfo, at, hostport = text.partition("@")
    if not at:
        userinfo, hostport = "", text
    elif not _USERINFO_RE.fullmatch(userinfo):
        return False
    if hostport.startswith("["):
        end = hostport.find("]")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        if end < 0 or not _is_ip_literal(host):
            return False
        return not rest or (rest[0] == ":" and bool(_PORT_RE.fullmatch(rest[1:])))
    host, colon, port = hostport.partition(":")
    if colon and not _PORT_RE.fullmatch(port):
        return False
    if require_host and not host:
        return False
    return bool(_REG_NAME_RE.fullmatch(host))


def is_uri(text: str) -> bool:
    """RFC 3986 `URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ]` (absolute URI)."""
    m = _URI_RE.fullmatch(text)
    if m is None:
        return False
    hier, query, fragment = m.group(2), m.group(3), m.group(4)
    if hier.startswith("//"):
        slash = hier.find("/", 2)
        authority, path = (hier[2:], "") if slash < 0 else (hier[2:slash], hier[slash:])
        if not is_authority(authority, require_host=False):
            return False
        if not _PATH_ABEMPTY_RE.fullmatch(path):
            return False
    elif not _PATH_NOAUTH_RE.fullmatch(hier):
        return False
    return all(part is None or _QUERY_RE.fullmatch(part) for part in (query, fragment))


def uri_has_prefix(uri: str, prefix: str) -> bool:
    """`prefix` matches whole components: "https://a.example" does not cover
    "https://a.example.evil.org/" nor "https://a.example@evil.org/"."""
    if not uri.startswith(prefix):
        return False
    if len(uri) == len(prefix) or prefix.endswith(("/", "?", "#")):
        return True
    return uri[len(prefix)] in "/?#"


# -- RFC 3339 date-time ------------------------------------------------------------------------

_DATE_TIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


def parse_timestamp(text: str, field: str = "timestamp") -> datetime:
    """An RFC 3339 `date-time` as an aware UTC datetime (fraction truncated to microseconds)."""
    reason = "bad_" + field.replace(" ", "_").lower()
    m = _DATE_TIME_RE.fullmatch(text)
    if m is None:
        raise SiweError(reason, f"{field} is not an RFC 3339 date-time: {show(text)}")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7)
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    if m.group(8):
        offset = timedelta(0)
    else:
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise SiweError(reason, f"{field} has an impossible UTC offset: {show(text)}")
        offset = timedelta(hours=oh, minutes=om) * (-1 if m.group(9) == "-" else 1)
    leap = second == 60
    try:
        if leap:
            second = 59
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError("time out of range")
        dt = datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone(offset))
        if leap:
            dt += timedelta(seconds=1)
        return dt.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise SiweError(reason, f"{field} is not a valid date-time ({exc}): {show(text)}") from None


def format_timestamp(dt: datetime) -> str:
    """`dt` as RFC 3339 UTC text with milliseconds, like JS `Date.toISOString()`."""
    require_aware(dt, "dt")
    u = dt.astimezone(UTC)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}Z"


def require_aware(dt: datetime, name: str) -> None:
    if not isinstance(dt, datetime) or dt.tzinfo is None or dt.utcoffset() is None:
        raise SiweUsageError(f"{name} must be a timezone-aware datetime, got {dt!r}")
