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
