"""Content paths: `CID[/a/b]` or `/ipfs/CID[/a/b]`, validated before anything is looked up."""

from __future__ import annotations

from urllib.parse import unquote

from fluxnode.core.cid import Cid
from fluxnode.core.errors import BadRequest

MAX_PATH_CHARS = 4096
MAX_SEGMENTS = 64
MAX_SEGMENT_BYTES = 255


def split_segments(path: str) -> list[str]:
    """Split a path below a CID into names. Rejects traversal and ambiguous forms."""
    if len(path) > MAX_PATH_CHARS:
        raise BadRequest(f"path longer than {MAX_PATH_CHARS} characters")
    segments = [s for s in path.split("/") if s != ""]
    if len(segments) > MAX_SEGMENTS:
        raise BadRequest(f"path has more than {MAX_SEGMENTS} segments")
    for seg in segments:
        if seg in (".", ".."):
            raise BadRequest(f"path segment {seg!r} is not allowed")
        if "\x00" in seg or "\\" in seg:
            raise BadRequest("path segments may not contain NUL or backslash")
        if len(seg.encode()) > MAX_SEGMENT_BYTES:
            raise BadRequest(f"path segment longer than {MAX_SEGMENT_BYTES} bytes")
    return segments


def parse_content_path(text: str, *, url_encoded: bool = False) -> tuple[Cid, list[str]]:
    """`CID/a/b`, `/ipfs/CID/a/b` -> (Cid, ["a", "b"])."""
    if url_encoded:
        text = unquote(text, errors="strict")
    if text.startswith("/ipfs/"):
        text = text[len("/ipfs/") :]
    head, _, rest = text.partition("/")
    return Cid.parse(head), split_segments(rest)


def parse_size(text: str | int) -> int:
    """`1048576`, `"512MiB"`, `"10GB"`, `"2 TiB"` -> bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError("size must be >= 0")
        return text
    if not isinstance(text, str):
        raise ValueError(f"not a size: {text!r}")
    units = {
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
    raw = text.strip().upper()
    number = raw.rstrip("KMGTIB ")
    unit = raw[len(number) :].strip()
    if unit not in units:
        raise ValueError(f"unknown size unit in {text!r}")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a size: {text!r}") from None
    if value < 0 or value != value:
        raise ValueError("size must be >= 0")
    return int(value * units[unit])
