"""Package-relative asset paths: one canonical, portable spelling per file."""

from __future__ import annotations

import re

from fluxnode.core.world.limits import PATH_MAX_CHARS, SEGMENT_MAX_BYTES

WINDOWS_RESERVED = ':*?"<>|'
CONTROL = re.compile("[\x00-\x1f\x7f]")
SURROGATE = re.compile("[\ud800-\udfff]")


def check_relative_path(p: str, max_chars: int = PATH_MAX_CHARS) -> str | None:
    """Why `p` is not a canonical package-relative POSIX path, or None if it is.

    Accepted: segments joined by single ``/``; each segment non-empty, not ``.`` or ``..``, at most
    255 UTF-8 bytes; the whole at most `max_chars` characters. Rejected: absolute paths, URLs,
    drive letters, backslashes, control characters (NUL included), the characters ``:*?"<>|``
    (not portable to Windows), empty segments (``a//b``, a trailing ``/``) and unpaired
    surrogates. There is exactly one spelling per file, so lookups are exact string matches.
    """
    if not p:
        return "must not be empty"
    if SURROGATE.search(p):
        return "must be valid Unicode (it holds an unpaired surrogate)"
    if len(p) > max_chars:
        return f"must be at most {max_chars} characters (got {len(p)})"
    if CONTROL.search(p):
        return "must not contain control characters (such as NUL or newline)"
    if "://" in p:
        return "must be a relative path inside the package, not a URL"
    if p.startswith("/"):
        return "must be relative to the package folder, not absolute"
    if "\\" in p:
        return "must use / as the separator, not \\"
    if re.match("[A-Za-z]:", p):
        return "must be relative to the package folder, not a drive path"
    if any(c in p for c in WINDOWS_RESERVED):
        return f"must not contain any of {' '.join(WINDOWS_RESERVED)}"
    for segment in p.split("/"):
        if segment == "":
            return "must not contain empty segments ('//' or a trailing '/')"
        if segment == "..":
            return "must not contain '..' (it would leave the package)"
        if segment == ".":
            return "must not contain '.' segments"
        if len(segment.encode()) > SEGMENT_MAX_BYTES:
            return f"has a segment longer than {SEGMENT_MAX_BYTES} bytes"
    return None


def is_skybox_path(skybox: str) -> bool:
    """A skybox containing ``.`` or ``/`` names an asset; anything else is a preset name."""
    return "." in skybox or "/" in skybox
