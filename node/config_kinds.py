"""Value kinds of configuration keys: how each parses, bounds, reads from text and prints.

A kind turns one raw value into its typed form or raises `ValueError` with a message that names
what was expected; the caller adds the key and the source. Raw values come from TOML (typed:
TOML booleans, integers, floats, strings, arrays) or from text (an environment variable or a
flag), which `from_text` turns into the TOML shape first, so both paths share one check.

Messages show at most a short, `repr`-quoted prefix of a bad value: a value may be long.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import multiaddr

from fluxnode.core.session.frames import IceServer
from fluxnode.core.siwe.grammar import is_authority

T = TypeVar("T", covariant=True)
E = TypeVar("E", bound=enum.Enum)

#: Booleans in environment variables (TOML itself only has `true` and `false`).
ENV_TRUE = frozenset({"true", "1"})
ENV_FALSE = frozenset({"false", "0"})
MAX_TEXT = 4096
_INT_TEXT = re.compile(r"[+-]?[0-9]{1,19}")
_FLOAT_TEXT = re.compile(r"[+-]?[0-9]{1,19}(?:\.[0-9]{1,19})?")
_SIZE_TEXT = re.compile(r"([0-9]{1,19}(?:\.[0-9]{1,19})?) ?([KMGT]I?B|B)?", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def shown(value: object) -> str:
    """A bad value for an error message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_size(value: object) -> int:
    """`1048576`, `"512MiB"`, `"10GB"`, `"2 TiB"` -> bytes. ASCII digits only; never inf/NaN."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"size must be >= 0, got {value}")
        return value
    if not isinstance(value, str):
        raise ValueError(f'must be a size like "50GiB" or a byte count, got {shown(value)}')
    match = _SIZE_TEXT.fullmatch(value.strip())
    if match is None:
        raise ValueError(f'must be a size like "50GiB" or a byte count, got {shown(value)}')
    number, unit = match.group(1), (match.group(2) or "").upper()
    whole, _, frac = number.partition(".")
    scale = _SIZE_UNITS[unit]
    # Exact integer arithmetic: a float would overflow or round for large values.
    return int(whole) * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def format_size(n: int) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


class Kind(Generic[T]):
    """One kind of value. `doc` describes it for the README and the template."""

    doc = ""

    def parse(self, value: object, data_dir: Path) -> T:
        raise NotImplementedError

    def from_text(self, text: str) -> object:
        """An environment variable's or flag's text, as the raw value TOML would give."""
        return text


class Boolean(Kind[bool]):
    doc = "boolean"

    def parse(self, value: object, data_dir: Path) -> bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"must be true or false (a TOML boolean), got {shown(value)}")

    def from_text(self, text: str) -> object:
        low = text.strip().lower()
        if low in ENV_TRUE:
            return True
        if low in ENV_FALSE:
            return False
        raise ValueError(f"must be one of true, false, 1, 0; got {shown(text)}")


class Integer(Kind[int]):
    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.doc = f"integer, {lo}..{hi}"

    def parse(self, value: object, data_dir: Path) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"must be an integer, got {shown(value)}")
        if not self.lo <= value <= self.hi:
            raise ValueError(f"must be between {self.lo} and {self.hi}, got {value}")
        return value

    def from_text(self, text: str) -> object:
        if not _INT_TEXT.fullmatch(text.strip()):
            raise ValueError(f"must be an integer, got {shown(text)}")
        return int(text)


class Number(Kind[float]):
    def __init__(self, lo: float, hi: float, unit: str = "seconds") -> None:
        self.lo, self.hi = lo, hi
        self.doc = f"{unit}, {_num(lo)}..{_num(hi)}"

    def parse(self, value: object, data_dir: Path) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"must be a number, got {shown(value)}")
        number = float(value)
        if not math.isfinite(number) or not self.lo <= number <= self.hi:
            raise ValueError(f"must be between {self.lo:g} and {self.hi:g}, got {shown(value)}")
        return number

    def from_text(self, text: str) -> object:
        if not _FLOAT_TEXT.fullmatch(text.strip()):
            raise ValueError(f"must be a decimal number, got {shown(text)}")
        return float(text)


class Size(Kind[int]):
    """Bytes: an integer or a string with a unit (`"50GiB"`, `"10GB"`)."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.doc = f'size with unit, e.g. `"32MiB"`, {format_size(lo)}..{format_size(hi)}'

    def parse(self, value: object, data_dir: Path) -> int:
        n = parse_size(value)
        if not self.lo <= n <= self.hi:
            raise ValueError(
                f"must be between {format_size(self.lo)} and {format_size(self.hi)}, "
                f"got {shown(value)}"
            )
        return n


class Text(Kind[str]):
    """A non-empty string without NUL, at most MAX_TEXT characters."""

    def __init__(
        self, doc: str = "string", *, lower: bool = False, check: Callable[[str], str] | None = None
    ) -> None:
        self.doc = doc
        self.lower = lower
        self.check = check

    def parse(self, value: object, data_dir: Path) -> str:
        if not isinstance(value, str) or not value or "\0" in value or len(value) > MAX_TEXT:
            raise ValueError(f"must be a non-empty string, got {shown(value)}")
        text = value.lower() if self.lower else value
        return self.check(text) if self.check else text


class FilePath(Kind[Path]):
    """A file path; a relative one is relative to the data dir."""

    doc = "path, relative to the data dir"

    def parse(self, value: object, data_dir: Path) -> Path:
        text = Text().parse(value, data_dir)
        try:
            path = Path(text).expanduser()
        except RuntimeError:  # `~nosuchuser/...`
            raise ValueError(f"cannot expand ~ in {shown(text)}") from None
        return data_dir / path


class Choice(Kind[E]):
    """One of an enum's values (lower-case strings)."""

    def __init__(self, enum_cls: type[E]) -> None:
        self.enum_cls = enum_cls
        self.choices = tuple(str(m.value) for m in enum_cls)
        self.doc = " / ".join(f"`{c}`" for c in self.choices)

    def parse(self, value: object, data_dir: Path) -> E:
        if isinstance(value, str) and value.lower() in self.choices:
            return self.enum_cls(value.lower())
        raise ValueError(f"must be one of {', '.join(self.choices)}; got {shown(value)}")


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class HostPortKind(Kind[HostPort]):
    doc = "`HOST:PORT`"

    def parse(self, value: object, data_dir: Path) -> HostPort:
        if not isinstance(value, str) or ":" not in value or len(value) > 300:
            raise ValueError(f"must be HOST:PORT, got {shown(value)}")
        host, _, port_text = value.rpartition(":")
        host = host.strip("[]")
        if not host:
            raise ValueError(f"missing host in {shown(value)}")
        if not _INT_TEXT.fullmatch(port_text):
            raise ValueError(f"bad port {shown(port_text)} in {shown(value)}")
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError(f"bad port {port} in {shown(value)} (must be 0..65535)")
        return HostPort(host, port)


def check_multiaddr(text: str, *, need_peer_id: bool) -> str:
    """Accept /ip4|ip6|dns*/.../tcp/PORT[/p2p/ID]: the transports this node can use."""
    try:
        addr = multiaddr.Multiaddr(text)
        names = [p.name for p in addr.protocols()]
        port = int(addr.value_for_protocol("tcp")) if "tcp" in names else -1
    except Exception as exc:  # multiaddr raises many unrelated types for bad input
        raise ValueError(f"bad multiaddr {shown(text)}: {str(exc)[:80]}") from None
    if not names or names[0] not in ("ip4", "ip6", "dns", "dns4", "dns6"):
        raise ValueError(f"bad multiaddr {shown(text)}: must start with /ip4, /ip6 or /dns")
    if len(names) < 2 or names[1] != "tcp":
        raise ValueError(f"bad multiaddr {shown(text)}: only TCP is supported")
    if not 0 <= port <= 65535:
        raise ValueError(f"bad port {port} in {shown(text)}")
    has_peer = "p2p" in names
    if need_peer_id and not has_peer:
        raise ValueError(f"bad multiaddr {shown(text)}: must end with /p2p/<peer id>")
    if not need_peer_id and has_peer:
        raise ValueError(f"bad multiaddr {shown(text)}: a listen address has no /p2p/")
    return text


def check_origin(text: str) -> str:
    """A browser origin, `scheme://host[:port]` (no path, no trailing slash), or `*`."""
    if text == "*":
        return text
    scheme, sep, rest = text.partition("://")
    if scheme not in ("http", "https") or not sep or not is_authority(rest, require_host=True):
        raise ValueError(f"not an origin (http[s]://host[:port], or *): {text[:60]!r}")
    return text


def check_domain(text: str) -> str:
    """A SIWE domain is an RFC 3986 authority with a host (`example.org`, `127.0.0.1:8011`)."""
    if not is_authority(text, require_host=True):
        raise ValueError(f"not a host[:port] (RFC 3986 authority): {text[:60]!r}")
    return text


def check_http_url(text: str) -> str:
    if not text.startswith(("http://", "https://")) or len(text) > 2000:
        raise ValueError(f"not an http(s) URL: {shown(text)}")
    return text


class ListOf(Kind[Any]):
    """A TOML array (text: comma-separated), each item checked by `item`.

    `container` builds the immutable result (tuple, or frozenset where order means nothing).
    """

    def __init__(
        self,
        item: Kind[Any],
        *,
        max_items: int,
        min_items: int = 0,
        container: Callable[[Iterable[Any]], Any] = tuple,
        doc: str | None = None,
    ) -> None:
        self.item = item
        self.max_items = max_items
        self.min_items = min_items
        self.container = container
        self.doc = doc or f"list of {item.doc}"

    def parse(self, value: object, data_dir: Path) -> Any:
        if not isinstance(value, list):
            raise ValueError(f"must be a list ([...]) of {self.item.doc}, got {shown(value)}")
        if len(value) > self.max_items:
            raise ValueError(f"at most {self.max_items} items, got {len(value)}")
        if len(value) < self.min_items:
            raise ValueError(f"at least {self.min_items} item(s) required")
        items = []
        for index, item in enumerate(value, 1):
            try:
                items.append(self.item.parse(item, data_dir))
            except ValueError as exc:
                doc = self.item.doc
                raise ValueError(f"must be a list of {doc}; item {index}: {exc}") from None
        return self.container(items)

    def from_text(self, text: str) -> object:
        return [part.strip() for part in text.split(",") if part.strip()]


class IceServers(Kind[tuple[IceServer, ...]]):
    """WebRTC ICE servers: a list of tables `{urls = [...], username = "...", credential =
    "..."}` (at most the 8 servers and 4 URLs each that `RtcConfig` carries); `turn:` URLs
    need a username and a credential."""

    doc = "list of tables {urls, username, credential}"
    SCHEMES = ("stun:", "stuns:", "turn:", "turns:")

    def parse(self, value: object, data_dir: Path) -> tuple[IceServer, ...]:
        if not isinstance(value, list) or len(value) > 8:
            raise ValueError(f"must be a list of at most 8 tables, got {shown(value)}")
        return tuple(self._server(i, item) for i, item in enumerate(value, 1))

    def _server(self, index: int, item: object) -> IceServer:
        where = f"server {index}"
        if not isinstance(item, dict) or not {"urls"} <= item.keys() <= {
            "urls", "username", "credential"
        }:  # fmt: skip
            raise ValueError(f"{where} must be a table of urls, username, credential")
        urls = item["urls"]
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not 1 <= len(urls) <= 4:
            raise ValueError(f"{where}: urls must be a list of 1..4 URLs")
        for url in urls:
            if not isinstance(url, str) or not url.startswith(self.SCHEMES) or len(url) > 512:
                raise ValueError(f"{where}: {shown(url)} is not a stun:/turn: URL")
        extra = [item.get("username"), item.get("credential")]
        if any(x is not None and not isinstance(x, str) for x in extra):
            raise ValueError(f"{where}: username and credential must be strings")
        if any(u.startswith("turn") for u in urls) and None in extra:
            raise ValueError(f"{where}: a TURN server needs a username and a credential")
        return IceServer(tuple(urls), extra[0], extra[1])
