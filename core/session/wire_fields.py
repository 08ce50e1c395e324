"""Field checks for session frames: each returns the value or raises `FrameInvalid` naming the
field. Shared by `wire` and `wire_rtc` so every frame is bounded by the same rules."""

from __future__ import annotations

import math
from typing import Any, Final

from fluxnode.core.errors import FrameInvalid
from fluxnode.core.world import JsonValue

__all__ = [
    "MAX_FRAME", "MAX_ID", "MAX_LIST", "MAX_TEXT",
    "_b", "_f", "_i", "_json", "_list", "_opt_s", "_s", "_vec",
]  # fmt: skip

MAX_FRAME: Final = 64 << 10
MAX_ID: Final = 128
MAX_TEXT: Final = 2000  # bytes, enough for 500 characters of any script
MAX_LIST: Final = 128
_INT_MAX: Final = (1 << 53) - 1


def _s(v: object, what: str, high: int = MAX_ID) -> str:
    if not isinstance(v, str) or not 1 <= len(v.encode("utf-8", "surrogatepass")) <= high:
        raise FrameInvalid(f"{what} must be a string of 1..{high} bytes")
    return v


def _opt_s(v: object, what: str) -> str | None:
    return None if v is None else _s(v, what)


def _b(v: object, what: str, high: int) -> bytes:
    if not isinstance(v, bytes) or len(v) > high:
        raise FrameInvalid(f"{what} must be at most {high} bytes of binary")
    return v


def _i(v: object, what: str, low: int = 0, high: int = _INT_MAX) -> int:
    if type(v) is not int or not low <= v <= high:
        raise FrameInvalid(f"{what} must be an integer in {low}..{high}")
    return v


def _f(v: object, what: str) -> float:
    if type(v) not in (int, float) or not math.isfinite(v):  # type: ignore[arg-type]
        raise FrameInvalid(f"{what} must be a finite number")
    return float(v)  # type: ignore[arg-type]


def _list(v: object, what: str, high: int = MAX_LIST) -> list[Any]:
    if not isinstance(v, list) or len(v) > high:
        raise FrameInvalid(f"{what} must be a list of at most {high} items")
    return v


def _vec(v: object, what: str, n: int) -> tuple[float, ...]:
    items = _list(v, what, n)
    if len(items) != n:
        raise FrameInvalid(f"{what} must be {n} numbers")
    return tuple(_f(c, f"{what}[{i}]") for i, c in enumerate(items))


def _json(v: object, what: str, depth: int = 4) -> JsonValue:
    """A JSON value as msgpack carries it: bounded depth, finite numbers, string keys."""
    if v is None or isinstance(v, bool | str):
        return v
    if type(v) is int:
        return _i(v, what, -_INT_MAX, _INT_MAX)
    if type(v) is float:
        return _f(v, what)
    if depth > 0 and isinstance(v, list):
        return [_json(x, what, depth - 1) for x in _list(v, what)]
    if depth > 0 and isinstance(v, dict) and len(v) <= MAX_LIST:
        return {_s(k, f"{what} key"): _json(x, what, depth - 1) for k, x in v.items()}
    raise FrameInvalid(f"{what} must be plain JSON nested at most 4 levels")
