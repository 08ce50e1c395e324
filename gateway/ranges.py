"""The `Range` request header (RFC 9110 §14.1-14.2), parsed strictly, for one byte range.

    ranges-specifier = range-unit "=" range-set      range-set = 1#range-spec
    range-spec = first-pos "-" [ last-pos ]  /  "-" suffix-length     (positions: 1*DIGIT)

What this gateway does with each form:
- a unit other than `bytes` (compared case-insensitively): ignored (RFC: MUST ignore);
- a syntactically invalid specifier — `bytes=-`, `bytes=5-3`, a non-ASCII digit, a sign, inner
  whitespace, no `=`: ignored, the whole file is sent with 200 (RFC: MAY ignore or reject; the
  client still gets correct bytes, just more of them);
- more than one range: ignored as well (we do not send multipart/byteranges);
- a valid but unsatisfiable range — first-pos at or past the end, or a suffix length of 0:
  416 with `Content-Range: bytes */<size>`;
- a last-pos past the end, or a suffix longer than the file: clamped to the file.
Digits are never converted beyond 18 significant places: a longer number is larger than any
file this node holds, so it is treated as "past the end" instead of being parsed (Python's
int() refuses strings over 4300 digits, and the header may carry up to 8 KiB of them).
Range applies to GET only (RFC 9110 §14.2); `If-Range` with anything but the current ETag
makes the server send the whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fluxnode.core.errors import RangeNotSatisfiable

#: Larger than any file size: stands for a number with more than MAX_DIGITS significant digits.
HUGE = 10**18
MAX_DIGITS = 18
_SPEC = re.compile(r"([0-9]*)-([0-9]*)", re.ASCII)
_OWS = " \t"


@dataclass(frozen=True)
class ByteRange:
    start: int
    #: Exclusive.
    end: int


def _number(digits: str) -> int:
    significant = digits.lstrip("0")
    if len(significant) > MAX_DIGITS:
        return HUGE
    return int(significant or "0")


def parse_range(value: str, size: int) -> ByteRange | None:
    """The range to send for a `Range: value` on a file of `size` bytes, or None to send it
    all. Raises RangeNotSatisfiable for a valid range that selects nothing."""
    unit, eq, range_set = value.partition("=")
    if not eq or unit.lower() != "bytes":
        return None
    specs = [s.strip(_OWS) for s in range_set.split(",")]
    specs = [s for s in specs if s]  # the list rule allows empty elements
    if len(specs) != 1:
        return None
    match = _SPEC.fullmatch(specs[0])
    if match is None:
        return None
    first, last = match.groups()
    if first:
        start = _number(first)
        if last and _number(last) < start:
            return None  # invalid: last-pos before first-pos
        if start >= size:
            raise RangeNotSatisfiable
        end = min(size, _number(last) + 1) if last else size
        return ByteRange(start, end)
    if not last:
        return None  # "bytes=-": neither a position nor a suffix length
    suffix = _number(last)
    if suffix == 0:
        raise RangeNotSatisfiable
    if size == 0:
        return None  # nothing to select; the empty file is sent whole
    return ByteRange(max(0, size - suffix), size)
