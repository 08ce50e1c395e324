"""JSON parsing guards for world.json: duplicate keys, non-finite and oversized numbers, and a
depth check on the raw bytes before `json.loads` runs."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Final

from fluxnode.core.world.limits import INT_MAX_DIGITS


class _Dict(dict[str, object]):
    """A parsed JSON object that remembers keys seen more than once."""

    duplicates: tuple[str, ...] = ()


@dataclass(frozen=True)
class _BadNumber:
    """Stands in for a number JSON must not carry, so the error can name its path."""

    message: str


def _pairs(pairs: list[tuple[str, object]]) -> _Dict:
    obj = _Dict(pairs)
    if len(obj) != len(pairs):
        counts = Counter(k for k, _ in pairs)
        obj.duplicates = tuple(k for k, n in counts.items() if n > 1)
    return obj


def _float(text: str) -> float | _BadNumber:
    value = float(text)
    return value if math.isfinite(value) else _BadNumber("number is out of range")


def _int(text: str) -> int | _BadNumber:
    if len(text.lstrip("-")) > INT_MAX_DIGITS:
        return _BadNumber(f"integer has more than {INT_MAX_DIGITS} digits")
    return int(text)


def _constant(name: str) -> _BadNumber:
    return _BadNumber(f"{name} is not allowed (JSON numbers must be finite)")


_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")


def _too_deep(data: bytes, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than `limit`, without parsing (linear).

    Exact for valid JSON: escaped backslashes pair up left to right, then a remaining ``\\"`` is
    an escaped quote, so the quotes left delimit the strings.
    """
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[0::2]).translate(None, _NOT_BRACKETS)
    depth = 0
    for c in outside:
        depth += 1 if c in b"[{" else -1
        if depth > limit:
            return True
    return False
