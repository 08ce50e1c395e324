"""EIP-4361 messages: `SiweMessage` (every field checked), `parse_siwe` (the exact signed text),
`to_text` (the canonical writer) and `validate` (a relying party's checks at time `now`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from fluxnode.core.errors import SiweError, SiweUsageError
from fluxnode.core.siwe.address import HEX_ADDRESS, to_checksum_address
from fluxnode.core.siwe.grammar import (
    CHAIN_ID_RE,
    NONCE_RE,
    REQUEST_ID_RE,
    SCHEME_RE,
    STATEMENT_RE,
    is_authority,
    is_uri,
    parse_timestamp,
    require_aware,
    show,
    uri_has_prefix,
)

_refused = SiweError.refused  # 401: well-formed, but refused

#: Upper bound on a message we are willing to parse (characters; a valid message is ASCII).
MAX_MESSAGE_CHARS = 8 * 1024
HEADER_SUFFIX = " wants you to sign in with your Ethereum account:"
_MAX_CHAIN_ID = 2**256 - 1


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
            isinstance(self.scheme, str) and SCHEME_RE.fullmatch(self.scheme)
        ):
            raise SiweError("bad_scheme", f"not an RFC 3986 scheme: {self.scheme!r}")
        if not (isinstance(self.domain, str) and is_authority(self.domain, require_host=True)):
            raise SiweError("bad_domain", f"not an RFC 3986 authority: {self.domain!r}")
        if not (isinstance(self.address, str) and HEX_ADDRESS.fullmatch(self.address)):
            raise SiweError("bad_address", f"not 0x followed by 40 hex digits: {self.address!r}")
        if to_checksum_address(self.address) != self.address:
            raise SiweError(
                "bad_checksum",
                f"address is not EIP-55 checksummed: {self.address} "
                f"(expected {to_checksum_address(self.address)})",
            )
        if self.statement is not None and not (
            isinstance(self.statement, str) and STATEMENT_RE.fullmatch(self.statement)
        ):
            raise SiweError(
                "bad_statement",
                "statement may hold only RFC 3986 reserved/unreserved characters and spaces "
                f"(no line breaks): {show(str(self.statement))}",
            )
        if not (isinstance(self.uri, str) and is_uri(self.uri)):
            raise SiweError("bad_uri", f"not an RFC 3986 URI: {show(str(self.uri))}")
        if self.version != "1":
            raise SiweError("bad_version", f"version must be 1, not {self.version!r}")
        if type(self.chain_id) is not int or not 0 <= self.chain_id <= _MAX_CHAIN_ID:
            raise SiweError("bad_chain_id", f"not a chain id: {self.chain_id!r}")
        if not (isinstance(self.nonce, str) and NONCE_RE.fullmatch(self.nonce)):
            raise SiweError(
                "bad_nonce", f"nonce must be 8 or more letters/digits: {show(str(self.nonce))}"
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
            isinstance(self.request_id, str) and REQUEST_ID_RE.fullmatch(self.request_id)
        ):
            raise SiweError(
                "bad_request_id",
                f"request id may hold only RFC 3986 pchar: {show(str(self.request_id))}",
            )
        if self.resources is not None:
            if isinstance(self.resources, list):
                object.__setattr__(self, "resources", tuple(self.resources))
            if not isinstance(self.resources, tuple):
                raise SiweError("bad_resource", f"resources must be a tuple: {self.resources!r}")
            for i, res in enumerate(self.resources):
                if not (isinstance(res, str) and is_uri(res)):
                    raise SiweError(
                        "bad_resource", f"resource {i + 1} is not an RFC 3986 URI: {show(res)}"
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
        raise SiweError("bad_header", f"line 1 must end with {HEADER_SUFFIX!r}: {show(header)}")
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
            raise SiweError("missing_field", f"line {i + 1}: expected {tag!r}, got {show(line)}")
        i += 1
        return line[len(tag) :]

    def optional(tag: str) -> str | None:
        return take(tag) if i < n and lines[i].startswith(tag) else None

    uri = take("URI: ")
    version = take("Version: ")
    chain_text = take("Chain ID: ")
    if not CHAIN_ID_RE.fullmatch(chain_text):
        raise SiweError(
            "bad_chain_id",
            f"chain id must be decimal digits without leading zeros, at most 2**256-1: "
            f"{show(chain_text)}",
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
            f"line {i + 1}: {show(lines[i])} (unknown, repeated or out-of-order field, "
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
    require_aware(now, "now")
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
    if expected_uri_prefix is not None and not uri_has_prefix(msg.uri, expected_uri_prefix):
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
