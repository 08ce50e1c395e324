"""The operator's denylist: content this node refuses to store, serve or relay.

Parses the IPFS *compact denylist format* (`.deny` files), IPIP-383, specified in
https://specs.ipfs.tech/compact-denylist-format/ (source: github.com/ipfs/specs,
`src/compact-denylist-format.md`, "Compact Denylist Format", maturity "reliable", 2023-08-24),
which also covers the legacy "badbits" anchors (`//<sha256 hex>`). Supported, per that spec:

* Optional header: lines up to a line that is exactly `---` (searched for in the first 1 MiB
  only; spec §Header). We have no YAML parser (pure stdlib), so the header is checked for a
  simple YAML shape (`key: value` lines, indented continuation lines, comments); a top-level
  `version` other than 1 is refused ("SHOULD reject ... versions that they do not support").
* Comment lines (`#...`) and empty lines. Lines may not exceed 2 MiB (spec §File syntax).
* Block items, each optionally followed by space-separated `key:value` hints (accepted, unused),
  and optionally negated with a leading `!` (an allow rule). The last matching rule wins, across
  the merged lists too (spec §Negated rules; files merged later override earlier ones):
  - `/ipfs/CID` — blocks the multihash (so CIDv0 and every CIDv1 of it), not its subpaths.
  - `/ipfs/CID/PATH` — blocks exactly that %-encoded path under the multihash (`PATH/` equal).
  - `/ipfs/CID/PATH*` — blocks every path starting with `PATH` (`/ipfs/CID/*` also blocks
    the CID itself; `/ipfs/CID/ab/*` is the same rule as `/ipfs/CID/ab*`).
  - `//DOUBLE-HASH`, modern: a base58btc multihash (sha2-256 or sha2-512 here) of the string
    `B58MH` or `B58MH/P/A/T/H`, where B58MH is the base58btc multihash of the requested CID.
  - `//DOUBLE-HASH`, legacy badbits: 64 hex chars, sha256 of `CIDV1_BASE32/` or
    `CIDV1_BASE32/P/A/T/H` (the CID converted to v1 keeping its codec, base32 lower case).
    A value that parses both ways yields both rules, as the spec requires.
  - `/ipns/NAME[/PATH]` rules parse but are not enforced: this node has no IPNS; they are
    counted in `ignored`.
* Bare CIDs (one per line, `Qm...`/`bafy...`), an operator convenience of Flux node, mean the
  same as `/ipfs/CID`.

Paths given to `is_denied` are decoded segments; double hashes are computed over them joined
with `/` (not re-%-encoded). This module only decides; storage and gateway enforce, raising
`ContentDenied` (HTTP 451).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from urllib.parse import unquote

from fluxnode.core.cid import Cid, InvalidCid, b58decode, b58encode, decode_varint
from fluxnode.core.errors import ConfigError
from fluxnode.core.errors import ContentDenied as ContentDenied  # re-exported

#: Spec limits: the header is looked for in the first 1 MiB; no line may exceed 2 MiB.
MAX_HEADER_BYTES = 1 << 20
MAX_LINE_BYTES = 2 << 20
#: Our own bounds on one list (badbits.deny is ~1M lines, tens of MiB).
MAX_DENYLIST_BYTES = 256 << 20
MAX_ENTRIES = 4_000_000
#: What a rule line looks like, for errors: they never quote the line, since a mistyped path may
#: name a file with secrets in it (/etc/shadow), and errors end up in logs.
_EXPECTED = "/ipfs/<cid>[/path], /ipns/<name>, //<hash> or a bare CID"
#: Paths in rules: bounded like gateway paths.
MAX_RULE_SEGMENTS = 256

SHA2_256, SHA2_512 = 0x12, 0x13
_HASHERS: dict[int, tuple[int, Callable[[bytes], bytes]]] = {
    SHA2_256: (32, lambda b: hashlib.sha256(b).digest()),
    SHA2_512: (64, lambda b: hashlib.sha512(b).digest()),
}
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEADER_KEY = re.compile(r"[A-Za-z0-9_.-]+:(\s.*)?")
_HINT = re.compile(r"[^\s:]+:\S*")

#: A rule's verdict: (sequence number, allow). The highest sequence number that matches wins.
_Verdict = tuple[int, bool]


class Denylist:
    """An immutable set of rules. Build with `parse`, combine with `merge`."""

    __slots__ = ("_count", "_exact", "_legacy", "_modern", "_prefix", "ignored", "sources")

    def __init__(self) -> None:
        # (multihash, "a/b") -> verdict; "" is the CID itself.
        self._exact: dict[tuple[bytes, str], _Verdict] = {}
        # multihash -> [(prefix, seq, allow)]
        self._prefix: dict[bytes, list[tuple[str, int, bool]]] = {}
        # (hash code, digest) -> verdict
        self._modern: dict[tuple[int, bytes], _Verdict] = {}
        # sha256 digest -> verdict
        self._legacy: dict[bytes, _Verdict] = {}
        self._count = 0
        #: Rules that parsed but this node cannot enforce (/ipns/...).
        self.ignored = 0
        self.sources: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __repr__(self) -> str:
        return f"Denylist({self._count} rules from {', '.join(self.sources) or 'nowhere'})"

    # -- parsing -------------------------------------------------------------------------------
    @classmethod
    def parse(
        cls,
        text: str,
        source: str,
        *,
        max_bytes: int = MAX_DENYLIST_BYTES,
        max_entries: int = MAX_ENTRIES,
    ) -> Denylist:
        """Parse one `.deny` list. Any malformed line is an error naming `source` and the line."""
        if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
            raise ConfigError("content.denylist", f"list larger than {max_bytes} bytes", source)
        out = cls()
        out.sources = (source,)
        lines = text.split("\n")
        start = _header_end(lines, source)
        for index in range(start, len(lines)):
            lineno = index + 1
            line = lines[index].removesuffix("\r")
            if len(line) > MAX_LINE_BYTES:
                raise _line_error(source, lineno, f"line longer than {MAX_LINE_BYTES} bytes")
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            try:
                out._add_line(stripped)
            except ValueError as exc:
                raise _line_error(source, lineno, str(exc)) from None
            if out._count > max_entries:
                raise _line_error(source, lineno, f"more than {max_entries} rules")
        return out

    def _next_seq(self) -> int:
        self._count += 1
        return self._count

    def _add_line(self, line: str) -> None:
        item, *hints = line.split()
        for hint in hints:
            if not _HINT.fullmatch(hint):
                raise ValueError("bad hint after the rule (expected key:value)")
        allow = item.startswith("!")
        if allow:
            item = item[1:]
        if item.startswith("//"):
            self._add_double_hash(item[2:], allow)
        elif item.startswith("/ipfs/"):
            self._add_ipfs(item[len("/ipfs/") :], allow)
        elif item.startswith("/ipns/"):
            if not item[len("/ipns/") :].strip("/"):
                raise ValueError("empty IPNS name")
            self.ignored += 1
        elif not item.startswith("/"):
            self._add_ipfs(item, allow)  # a bare CID
        else:
            raise ValueError(f"unsupported rule (expected {_EXPECTED})")

    def _add_ipfs(self, rest: str, allow: bool) -> None:
        cid_text, _, path = rest.partition("/")
        try:
            cid = Cid.parse(cid_text)
        except InvalidCid:
            raise ValueError(f"invalid CID (expected {_EXPECTED})") from None
        mh = cid.multihash
        if path.endswith("*"):
            prefix = _rule_path(path[:-1].removesuffix("/"), allow_trailing=True)
            self._prefix.setdefault(mh, []).append((prefix, self._next_seq(), allow))
            return
        if "*" in path:
            raise ValueError("'*' is only allowed at the end of a path")
        self._exact[(mh, _rule_path(path, allow_trailing=True))] = (self._next_seq(), allow)

    def _add_double_hash(self, value: str, allow: bool) -> None:
        added = False
        modern = _parse_multihash(value)
        if modern is not None:
            self._modern[modern] = (self._next_seq(), allow)
            added = True
        if _HEX64.fullmatch(value):
            self._legacy[bytes.fromhex(value)] = (self._next_seq(), allow)
            added = True
        if not added:
            raise ValueError(
                "bad double hash (expected a base58btc sha2-256/sha2-512 "
                "multihash or 64 hex characters of sha256)"
            )

    # -- combining -----------------------------------------------------------------------------
    def merge(self, other: Denylist) -> Denylist:
        """A new list with `other`'s rules after ours (so they win on conflict)."""
        out = Denylist()
        for part in (self, other):
            base = out._count
            for key, (seq, allow) in part._exact.items():
                out._exact[key] = (base + seq, allow)
            for mh, rules in part._prefix.items():
                out._prefix.setdefault(mh, []).extend((p, base + s, a) for p, s, a in rules)
            for mkey, (seq, allow) in part._modern.items():
                out._modern[mkey] = (base + seq, allow)
            for lkey, (seq, allow) in part._legacy.items():
                out._legacy[lkey] = (base + seq, allow)
            out._count += part._count
            out.ignored += part.ignored
            out.sources += part.sources
        return out

    # -- matching ------------------------------------------------------------------------------
    def is_denied(self, cid: Cid, path: Sequence[str] = ()) -> bool:
        """True if the last rule matching `cid` (and `path`, decoded segments) is a deny."""
        if not self._count:
            return False
        joined = "/".join(path)
        verdicts: list[_Verdict] = []
        exact = self._exact.get((cid.multihash, joined))
        if exact is not None:
            verdicts.append(exact)
        for prefix, seq, allow in self._prefix.get(cid.multihash, ()):
            if joined.startswith(prefix):
                verdicts.append((seq, allow))
        if self._modern:
            subject = (b58encode(cid.multihash) + (f"/{joined}" if joined else "")).encode()
            for code in {code for code, _ in self._modern}:
                verdict = self._modern.get((code, _HASHERS[code][1](subject)))
                if verdict is not None:
                    verdicts.append(verdict)
        if self._legacy:
            anchor = f"{cid.to_v1()}/{joined}".encode()
            legacy = self._legacy.get(hashlib.sha256(anchor).digest())
            if legacy is not None:
                verdicts.append(legacy)
        return bool(verdicts) and not max(verdicts)[1]

    def check(self, cid: Cid, path: Sequence[str] = ()) -> None:
        """Raise ContentDenied if `cid`/`path` is denied. The message names no rule."""
        if self.is_denied(cid, path):
            shown = "/".join((str(cid), *path))
            raise ContentDenied(f"{shown} is blocked by this node's denylist")


def _header_end(lines: list[str], source: str) -> int:
    """Index of the first body line: after a `---` within the first 1 MiB, else 0."""
    size = 0
    for index, line in enumerate(lines):
        size += len(line) + 1
        if size > MAX_HEADER_BYTES:
            return 0  # spec: too large, so there is no header
        if line.rstrip("\r") == "---":
            _check_header(lines[:index], source)
            return index + 1
    return 0


def _check_header(lines: list[str], source: str) -> None:
    for index, raw in enumerate(lines):
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or line[:1] in (" ", "\t", "-"):
            continue
        if not _HEADER_KEY.fullmatch(line):
            raise _line_error(source, index + 1, "header line is not 'key: value'")
        key, _, value = line.partition(":")
        if key == "version" and value.strip().strip("'\"") != "1":
            raise _line_error(source, index + 1, "unsupported list version (expected 1)")


def _rule_path(path: str, *, allow_trailing: bool) -> str:
    """Decode a %-encoded rule path into segments joined by '/' ("" for none)."""
    if allow_trailing:
        path = path.removesuffix("/")
    if not path:
        return ""
    segments = path.split("/")
    if len(segments) > MAX_RULE_SEGMENTS:
        raise ValueError(f"path deeper than {MAX_RULE_SEGMENTS} segments")
    decoded = [unquote(s, errors="strict") if "%" in s else s for s in segments]
    if any(not s for s in decoded):
        raise ValueError("empty path segment")
    return "/".join(decoded)


def _parse_multihash(value: str) -> tuple[int, bytes] | None:
    """(hash code, digest) of a base58btc multihash we can compute, or None."""
    if not value or len(value) > 200:
        return None
    try:
        raw = b58decode(value)
        code, pos = decode_varint(raw, 0)
        length, pos = decode_varint(raw, pos)
    except InvalidCid:
        return None
    hasher = _HASHERS.get(code)
    if hasher is None or length != hasher[0] or len(raw) - pos != length:
        return None
    return code, raw[pos:]


def _line_error(source: str, lineno: int, message: str) -> ConfigError:
    return ConfigError("content.denylist", f"line {lineno}: {message}", source)
