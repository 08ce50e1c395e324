"""Sign-In with Ethereum (EIP-4361) messages: strict parser, canonical writer, checks, nonces.

Pure and sans-IO: stdlib only, the clock is always passed in. Signature recovery (eth-account)
and the EIP-1271 contract-wallet call live in `fluxnode.chain.siwe_verify`.

Grammar (EIP-4361's ABNF, lines joined by LF only, no trailing LF)::

    [ scheme "://" ] domain " wants you to sign in with your Ethereum account:"
    address
    (empty line)
    [ statement LF ]
    (empty line)
    "URI: " uri
    "Version: 1"
    "Chain ID: " chain-id
    "Nonce: " nonce
    "Issued At: " issued-at
    [ "Expiration Time: " expiration-time ]
    [ "Not Before: " not-before ]
    [ "Request ID: " request-id ]
    [ "Resources:" *( LF "- " URI ) ]

Where we are stricter than the ABNF (each refusal is a clear `SiweError`): the address must be
EIP-55 checksummed (the ABNF leaves it "where applicable"), the domain needs a non-empty host,
the chain id has no leading zeros (so the text is the canonical form of the parsed value) and is
at most 2**256 - 1, years start at 0001 (Python's `datetime`), and the whole message is at most
`MAX_MESSAGE_CHARS` characters. Everything else the ABNF allows is accepted, including an empty
statement (kept apart from an absent one), an empty request id and a "Resources:" line with no
resources, because JS libraries produce those and the signed text must round-trip exactly.

Timestamps are kept as the exact text that was signed (`issued_at` etc.); `*_dt` properties give
them as aware UTC datetimes. A leap second (":60") is read as the next second.

EIP-55 needs keccak-256, which hashlib lacks; a small pure-Python Keccak-f[1600] below keeps
core free of third-party packages (one 40-byte hash per message: ~0.25 ms).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import string
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from fluxnode.core.errors import LocalError, RemoteError

__all__ = [
    "HEADER_SUFFIX",
    "MAX_MESSAGE_CHARS",
    "NonceBook",
    "NonceStats",
    "SiweError",
    "SiweMessage",
    "SiweUsageError",
    "format_timestamp",
    "is_checksum_address",
    "is_uri",
    "keccak256",
    "parse_siwe",
    "parse_timestamp",
    "to_checksum_address",
    "validate",
]

#: Upper bound on a message we are willing to parse (characters; a valid message is ASCII).
MAX_MESSAGE_CHARS = 8 * 1024
HEADER_SUFFIX = " wants you to sign in with your Ethereum account:"
_MAX_CHAIN_ID = 2**256 - 1


class SiweError(RemoteError):
    """A sign-in message, its signature or its nonce is unacceptable.

    `reason` names the failed rule (e.g. "bad_address", "wrong_domain", "expired",
    "nonce_reused", "wrong_signer"); `code` is always "siwe_invalid". Malformed input answers
    400, a well-formed sign-in that is refused answers 401.
    """

    code = "siwe_invalid"
    reason: str

    def __init__(self, reason: str, message: str, *, http_status: int = 400) -> None:
        self.reason = reason
        self.message = message
        self.http_status = http_status
        super().__init__(f"{reason}: {message}")


class SiweUsageError(LocalError):
    """We called the SIWE code wrongly (naive datetime, negative skew, bad settings)."""

    code = "siwe_usage"


def _refused(reason: str, message: str) -> SiweError:
    return SiweError(reason, message, http_status=401)


# -- keccak-256 (the original Keccak padding, as Ethereum uses; not NIST SHA3-256) ---------------

_MASK64 = (1 << 64) - 1


def _round_constants() -> tuple[int, ...]:
    out = []
    r = 1  # LFSR x^8 + x^6 + x^5 + x^4 + 1 (FIPS 202, algorithm 5)
    for _ in range(24):
        rc = 0
        for j in range(7):
            if r & 1:
                rc |= 1 << ((1 << j) - 1)
            r = ((r << 1) ^ 0x71) & 0xFF if r & 0x80 else r << 1
        out.append(rc)
    return tuple(out)


def _rho_pi() -> tuple[tuple[int, int, int], ...]:
    """(source lane, destination lane, rotation) for the combined rho and pi steps."""
    rot = [0] * 25
    x, y = 1, 0
    for t in range(24):
        rot[x + 5 * y] = ((t + 1) * (t + 2) // 2) % 64
        x, y = y, (2 * x + 3 * y) % 5
    return tuple(
        (x + 5 * y, y + 5 * ((2 * x + 3 * y) % 5), rot[x + 5 * y])
        for x in range(5)
        for y in range(5)
    )


_RC = _round_constants()
_RHO_PI = _rho_pi()
_RATE = 136  # bytes, for a 256-bit output


def _keccak_f(a: list[int]) -> list[int]:
    for rc in _RC:
        c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in range(5)]
        d = [
            c[(x - 1) % 5] ^ (((c[(x + 1) % 5] << 1) | (c[(x + 1) % 5] >> 63)) & _MASK64)
            for x in range(5)
        ]
        a = [a[i] ^ d[i % 5] for i in range(25)]
        b = [0] * 25
        for src, dst, n in _RHO_PI:
            v = a[src]
            b[dst] = ((v << n) | (v >> (64 - n))) & _MASK64 if n else v
        a = [b[i] ^ (~b[(i + 1) % 5 + i - i % 5] & b[(i + 2) % 5 + i - i % 5]) for i in range(25)]
        a[0] ^= rc
    return a


def keccak256(data: bytes) -> bytes:
    """Keccak-256 as used by Ethereum (padding 0x01...0x80)."""
    padded = bytearray(data)
    padded.append(0x01)
    padded.extend(b"\x00" * (-len(padded) % _RATE))
    padded[-1] |= 0x80
    state = [0] * 25
    for off in range(0, len(padded), _RATE):
        block = padded[off : off + _RATE]
        for i in range(_RATE // 8):
            state[i] ^= int.from_bytes(block[8 * i : 8 * i + 8], "little")
        state = _keccak_f(state)
    return b"".join(lane.to_bytes(8, "little") for lane in state[:4])


_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def to_checksum_address(address: str) -> str:
    """EIP-55 mixed-case form of a `0x` + 40 hex digit address (any case in)."""
    if not _HEX_ADDRESS.fullmatch(address):
        raise SiweError("bad_address", f"not 0x followed by 40 hex digits: {_show(address)}")
    body = address[2:].lower()
    digest = keccak256(body.encode("ascii")).hex()
    return "0x" + "".join(
        ch.upper() if ch.isalpha() and int(digest[i], 16) >= 8 else ch for i, ch in enumerate(body)
    )


def is_checksum_address(address: str) -> bool:
    return bool(_HEX_ADDRESS.fullmatch(address)) and to_checksum_address(address) == address


# -- RFC 3986 pieces ---------------------------------------------------------------------------

_PCT = r"%[0-9A-Fa-f]{2}"
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_USERINFO_RE = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*")
_REG_NAME_RE = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*")
_IPVFUTURE_RE = re.compile(rf"[vV][0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+")
_PORT_RE = re.compile(r"[0-9]*")
_URI_RE = re.compile(rf"({_SCHEME_RE.pattern}):([^?#]*)(?:\?([^#]*))?(?:#(.*))?", re.DOTALL)
_PATH_ABEMPTY_RE = re.compile(rf"(?:/{_PCHAR}*)*")
# path-absolute / path-rootless / path-empty (a hier-part not starting with "//")
_PATH_NOAUTH_RE = re.compile(rf"/?(?:{_PCHAR}+(?:/{_PCHAR}*)*)?")
_QUERY_RE = re.compile(rf"(?:{_PCHAR}|[/?])*")
_STATEMENT_RE = re.compile(rf"[{_UNRESERVED}:/?#\[\]@{_SUB_DELIMS} ]*")
_REQUEST_ID_RE = re.compile(rf"{_PCHAR}*")
_NONCE_RE = re.compile(r"[A-Za-z0-9]{8,}")
_CHAIN_ID_RE = re.compile(r"0|[1-9][0-9]{0,77}")


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


def _is_authority(text: str, *, require_host: bool) -> bool:
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
        if not _is_authority(authority, require_host=False):
            return False
        if not _PATH_ABEMPTY_RE.fullmatch(path):
            return False
    elif not _PATH_NOAUTH_RE.fullmatch(hier):
        return False
    return all(part is None or _QUERY_RE.fullmatch(part) for part in (query, fragment))


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
        raise SiweError(reason, f"{field} is not an RFC 3339 date-time: {_show(text)}")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7)
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    if m.group(8):
        offset = timedelta(0)
    else:
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise SiweError(reason, f"{field} has an impossible UTC offset: {_show(text)}")
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
        raise SiweError(
            reason, f"{field} is not a valid date-time ({exc}): {_show(text)}"
        ) from None


def format_timestamp(dt: datetime) -> str:
    """`dt` as RFC 3339 UTC text with milliseconds, like JS `Date.toISOString()`."""
    _require_aware(dt, "dt")
    u = dt.astimezone(UTC)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}Z"


def _require_aware(dt: datetime, name: str) -> None:
    if not isinstance(dt, datetime) or dt.tzinfo is None or dt.utcoffset() is None:
        raise SiweUsageError(f"{name} must be a timezone-aware datetime, got {dt!r}")


def _show(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


# -- the message -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SiweMessage:
    """One EIP-4361 message. Constructing it checks every field (raises `SiweError`)."""

    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    version: str = "1"
    scheme: str | None = None
    #: None: no statement line; "" is an empty statement line (the ABNF allows both).
    statement: str | None = None
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    #: None: no "Resources:" line; () is that line with no resources after it.
    resources: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.scheme is not None and not (
            isinstance(self.scheme, str) and _SCHEME_RE.fullmatch(self.scheme)
        ):
            raise SiweError("bad_scheme", f"not an RFC 3986 scheme: {self.scheme!r}")
        if not (isinstance(self.domain, str) and _is_authority(self.domain, require_host=True)):
            raise SiweError("bad_domain", f"not an RFC 3986 authority: {self.domain!r}")
        if not (isinstance(self.address, str) and _HEX_ADDRESS.fullmatch(self.address)):
            raise SiweError("bad_address", f"not 0x followed by 40 hex digits: {self.address!r}")
        if to_checksum_address(self.address) != self.address:
            raise SiweError(
                "bad_checksum",
                f"address is not EIP-55 checksummed: {self.address} "
                f"(expected {to_checksum_address(self.address)})",
            )
        if self.statement is not None and not (
            isinstance(self.statement, str) and _STATEMENT_RE.fullmatch(self.statement)
        ):
            raise SiweError(
                "bad_statement",
                "statement may hold only RFC 3986 reserved/unreserved characters and spaces "
                f"(no line breaks): {_show(str(self.statement))}",
            )
        if not (isinstance(self.uri, str) and is_uri(self.uri)):
            raise SiweError("bad_uri", f"not an RFC 3986 URI: {_show(str(self.uri))}")
        if self.version != "1":
            raise SiweError("bad_version", f"version must be 1, not {self.version!r}")
        if type(self.chain_id) is not int or not 0 <= self.chain_id <= _MAX_CHAIN_ID:
            raise SiweError("bad_chain_id", f"not a chain id: {self.chain_id!r}")
        if not (isinstance(self.nonce, str) and _NONCE_RE.fullmatch(self.nonce)):
            raise SiweError(
                "bad_nonce", f"nonce must be 8 or more letters/digits: {_show(str(self.nonce))}"
            )
        for name, value in (
            ("issued at", self.issued_at),
            ("expiration time", self.expiration_time),
            ("not before", self.not_before),
        ):
            if value is not None:
                if not isinstance(value, str):
                    raise SiweError(f"bad_{name.replace(' ', '_')}", f"{name}: {value!r}")
                parse_timestamp(value, name)
        if self.request_id is not None and not (
            isinstance(self.request_id, str) and _REQUEST_ID_RE.fullmatch(self.request_id)
        ):
            raise SiweError(
                "bad_request_id",
                f"request id may hold only RFC 3986 pchar: {_show(str(self.request_id))}",
            )
        if self.resources is not None:
            if isinstance(self.resources, list):
                object.__setattr__(self, "resources", tuple(self.resources))
            if not isinstance(self.resources, tuple):
                raise SiweError("bad_resource", f"resources must be a tuple: {self.resources!r}")
            for i, res in enumerate(self.resources):
                if not (isinstance(res, str) and is_uri(res)):
                    raise SiweError(
                        "bad_resource", f"resource {i + 1} is not an RFC 3986 URI: {_show(res)}"
                    )
        text_len = len(self.to_text())
        if text_len > MAX_MESSAGE_CHARS:
            raise SiweError(
                "too_long", f"message is {text_len} characters, over {MAX_MESSAGE_CHARS}"
            )

    @property
    def issued_at_dt(self) -> datetime:
        return parse_timestamp(self.issued_at, "issued at")

    @property
    def expiration_time_dt(self) -> datetime | None:
        if self.expiration_time is None:
            return None
        return parse_timestamp(self.expiration_time, "expiration time")

    @property
    def not_before_dt(self) -> datetime | None:
        if self.not_before is None:
            return None
        return parse_timestamp(self.not_before, "not before")

    def to_text(self) -> str:
        """The canonical EIP-4361 text: what the wallet signs (round-trips with `parse_siwe`)."""
        return "\n".join(self._lines())

    def _lines(self) -> Iterator[str]:
        origin = self.domain if self.scheme is None else f"{self.scheme}://{self.domain}"
        yield origin + HEADER_SUFFIX
        yield self.address
        yield ""
        if self.statement is not None:
            yield self.statement
        yield ""
        yield f"URI: {self.uri}"
        yield f"Version: {self.version}"
        yield f"Chain ID: {self.chain_id}"
        yield f"Nonce: {self.nonce}"
        yield f"Issued At: {self.issued_at}"
        if self.expiration_time is not None:
            yield f"Expiration Time: {self.expiration_time}"
        if self.not_before is not None:
            yield f"Not Before: {self.not_before}"
        if self.request_id is not None:
            yield f"Request ID: {self.request_id}"
        if self.resources is not None:
            yield "Resources:"
            for res in self.resources:
                yield f"- {res}"


def parse_siwe(text: str) -> SiweMessage:
    """Parse an EIP-4361 message exactly as signed; any deviation raises `SiweError`."""
    if not isinstance(text, str):
        raise SiweError("bad_message", f"message must be text, not {type(text).__name__}")
    if len(text) > MAX_MESSAGE_CHARS:
        raise SiweError("too_long", f"message is {len(text)} characters, over {MAX_MESSAGE_CHARS}")
    if not text.isascii():
        raise SiweError("bad_message", "message must be ASCII")
    if "\r" in text:
        raise SiweError("bad_line_ending", "lines must end with LF only (found CR)")
    lines = text.split("\n")
    n = len(lines)

    header = lines[0]
    if not header.endswith(HEADER_SUFFIX):
        raise SiweError("bad_header", f"line 1 must end with {HEADER_SUFFIX!r}: {_show(header)}")
    origin = header[: -len(HEADER_SUFFIX)]
    scheme: str | None
    if "://" in origin:
        scheme, domain = origin.split("://", 1)
    else:
        scheme, domain = None, origin
    if n < 2:
        raise SiweError("missing_field", "line 2 must be the address")
    address = lines[1]
    if n < 3 or lines[2] != "":
        raise SiweError("bad_layout", "line 3 must be empty")

    statement: str | None
    if n > 4 and lines[3] == "" and lines[4] != "":
        statement, i = None, 4
    elif n > 4 and lines[4] == "":
        statement, i = lines[3], 5
    else:
        raise SiweError(
            "bad_layout",
            "after the address: an empty line, an optional statement line and an empty line",
        )

    def take(tag: str) -> str:
        nonlocal i
        if i >= n:
            raise SiweError("missing_field", f"line {i + 1}: expected {tag!r}, message ends")
        line = lines[i]
        if not line.startswith(tag):
            raise SiweError("missing_field", f"line {i + 1}: expected {tag!r}, got {_show(line)}")
        i += 1
        return line[len(tag) :]

    def optional(tag: str) -> str | None:
        return take(tag) if i < n and lines[i].startswith(tag) else None

    uri = take("URI: ")
    version = take("Version: ")
    chain_text = take("Chain ID: ")
    if not _CHAIN_ID_RE.fullmatch(chain_text):
        raise SiweError(
            "bad_chain_id",
            f"chain id must be decimal digits without leading zeros, at most 2**256-1: "
            f"{_show(chain_text)}",
        )
    chain_id = int(chain_text)
    nonce = take("Nonce: ")
    issued_at = take("Issued At: ")
    expiration_time = optional("Expiration Time: ")
    not_before = optional("Not Before: ")
    request_id = optional("Request ID: ")
    resources: tuple[str, ...] | None = None
    if i < n and lines[i] == "Resources:":
        i += 1
        items = []
        while i < n and lines[i].startswith("- "):
            items.append(lines[i][2:])
            i += 1
        resources = tuple(items)
    if i < n:
        raise SiweError(
            "unexpected_line",
            f"line {i + 1}: {_show(lines[i])} (unknown, repeated or out-of-order field, "
            "or a trailing line break)",
        )
    return SiweMessage(
        scheme=scheme,
        domain=domain,
        address=address,
        statement=statement,
        uri=uri,
        version=version,
        chain_id=chain_id,
        nonce=nonce,
        issued_at=issued_at,
        expiration_time=expiration_time,
        not_before=not_before,
        request_id=request_id,
        resources=resources,
    )


def _uri_has_prefix(uri: str, prefix: str) -> bool:
    """`prefix` matches whole components: "https://a.example" does not cover
    "https://a.example.evil.org/" nor "https://a.example@evil.org/"."""
    if not uri.startswith(prefix):
        return False
    if len(uri) == len(prefix) or prefix.endswith(("/", "?", "#")):
        return True
    return uri[len(prefix)] in "/?#"


def validate(
    msg: SiweMessage,
    *,
    expected_domain: str,
    expected_chain_id: int,
    now: datetime,
    skew: timedelta,
    expected_uri_prefix: str | None = None,
    expected_scheme: str | None = None,
) -> None:
    """Check a parsed message against what this relying party expects at time `now`.

    `skew` is the clock difference tolerated in every time check. `expected_scheme`, when
    given, must equal the message's scheme ("https" when the message names none, per EIP-4361).
    Raises `SiweError` whose `reason` names the first failed check: wrong_domain,
    wrong_scheme, wrong_chain, wrong_uri, issued_in_future, expired, not_yet_valid.
    """
    _require_aware(now, "now")
    if skew < timedelta(0):
        raise SiweUsageError(f"skew must not be negative: {skew}")
    if msg.domain != expected_domain:
        raise _refused("wrong_domain", f"message is for {msg.domain!r}, not {expected_domain!r}")
    if expected_scheme is not None and (msg.scheme or "https") != expected_scheme:
        raise _refused(
            "wrong_scheme", f"message scheme is {msg.scheme or 'https'!r}, not {expected_scheme!r}"
        )
    if msg.chain_id != expected_chain_id:
        raise _refused(
            "wrong_chain", f"message is for chain {msg.chain_id}, not {expected_chain_id}"
        )
    if expected_uri_prefix is not None and not _uri_has_prefix(msg.uri, expected_uri_prefix):
        raise _refused("wrong_uri", f"URI {msg.uri!r} is not under {expected_uri_prefix!r}")
    if msg.issued_at_dt > now + skew:
        raise _refused("issued_in_future", f"issued at {msg.issued_at}, now is {now.isoformat()}")
    expires = msg.expiration_time_dt
    if expires is not None and now - skew >= expires:
        raise _refused("expired", f"expired at {msg.expiration_time}, now is {now.isoformat()}")
    not_before = msg.not_before_dt
    if not_before is not None and now + skew < not_before:
        raise _refused(
            "not_yet_valid", f"not valid before {msg.not_before}, now is {now.isoformat()}"
        )


# -- nonces ------------------------------------------------------------------------------------

_NONCE_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class NonceStats:
    outstanding: int
    #: Spent nonces still remembered (to tell a replay from an unknown nonce).
    remembered_spent: int
    issued: int
    consumed: int
    expired: int
    evicted: int
    rejected_unknown: int
    rejected_reused: int


class NonceBook:
    """Single-use sign-in nonces with a time to live and a cap on how many are outstanding.

    `issue` hands out a fresh random nonce (22 letters/digits, ~131 bits); `consume` accepts
    each one once before it expires. When `max_outstanding` nonces are waiting, issuing another
    evicts the oldest. Spent nonces are remembered until they would have expired (same cap) so
    a replay is reported as "nonce_reused" rather than "nonce_invalid".
    """

    NONCE_LENGTH = 22

    def __init__(self, *, ttl: timedelta = timedelta(minutes=10), max_outstanding: int = 10_000):
        if ttl <= timedelta(0):
            raise SiweUsageError(f"nonce ttl must be positive: {ttl}")
        if max_outstanding < 1:
            raise SiweUsageError(f"max_outstanding must be at least 1: {max_outstanding}")
        self.ttl = ttl
        self.max_outstanding = max_outstanding
        self._outstanding: OrderedDict[str, datetime] = OrderedDict()  # nonce -> expiry
        self._spent: OrderedDict[str, datetime] = OrderedDict()
        self._issued = self._consumed = self._expired = self._evicted = 0
        self._rejected_unknown = self._rejected_reused = 0

    def issue(self, now: datetime) -> str:
        _require_aware(now, "now")
        self._prune(now)
        while len(self._outstanding) >= self.max_outstanding:
            self._outstanding.popitem(last=False)
            self._evicted += 1
        while True:
            nonce = "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(self.NONCE_LENGTH))
            if nonce not in self._outstanding and nonce not in self._spent:
                break
        self._outstanding[nonce] = now + self.ttl
        self._issued += 1
        return nonce

    def check(self, nonce: str, now: datetime) -> None:
        """Raise like `consume` would, but spend nothing."""
        _require_aware(now, "now")
        expiry = self._outstanding.get(nonce)
        if expiry is not None and now < expiry:
            return
        if nonce in self._spent:
            raise _refused("nonce_reused", "this nonce was already used to sign in")
        if expiry is not None:
            raise _refused("nonce_invalid", "nonce expired: ask for a new one")
        raise _refused("nonce_invalid", "unknown nonce: ask for a new one")

    def consume(self, nonce: str, now: datetime) -> None:
        """Spend `nonce`; SiweError "nonce_invalid" (unknown or expired) or "nonce_reused"."""
        _require_aware(now, "now")
        self._prune(now)
        expiry = self._outstanding.pop(nonce, None)
        if expiry is None:
            if nonce in self._spent:
                self._rejected_reused += 1
                raise _refused("nonce_reused", "this nonce was already used to sign in")
            self._rejected_unknown += 1
            raise _refused("nonce_invalid", "unknown or expired nonce: ask for a new one")
        if now >= expiry:  # out-of-order clock: _prune only looks at the oldest entries
            self._expired += 1
            self._rejected_unknown += 1
            raise _refused("nonce_invalid", "nonce expired: ask for a new one")
        self._consumed += 1
        self._spent[nonce] = expiry
        while len(self._spent) > self.max_outstanding:
            self._spent.popitem(last=False)

    def _prune(self, now: datetime) -> None:
        for book, counts in ((self._outstanding, True), (self._spent, False)):
            while book:
                oldest, expiry = next(iter(book.items()))
                if expiry > now:
                    break
                del book[oldest]
                if counts:
                    self._expired += 1

    def __len__(self) -> int:
        return len(self._outstanding)

    def statistics(self) -> NonceStats:
        return NonceStats(
            outstanding=len(self._outstanding),
            remembered_spent=len(self._spent),
            issued=self._issued,
            consumed=self._consumed,
            expired=self._expired,
            evicted=self._evicted,
            rejected_unknown=self._rejected_unknown,
            rejected_reused=self._rejected_reused,
        )
