"""World package bounds: the field limits of world.json and the configurable `WorldLimits`,
plus the size formatting their error messages use."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

from fluxnode.core.errors import ConfigError

MANIFEST_NAME: Final = "world.json"
MAX_PLAYERS: Final = 100
NAME_MAX_CHARS: Final = 100
DESCRIPTION_MAX_CHARS: Final = 2000
TAGS_MAX: Final = 20
TAG_MAX_CHARS: Final = 32
ID_MAX_CHARS: Final = 64
ACTION_MAX_CHARS: Final = 128
PATH_MAX_CHARS: Final = 255
SEGMENT_MAX_BYTES: Final = 255
SCHEMA_REF_MAX_CHARS: Final = 2048
INT_MAX_DIGITS: Final = 300  # so every accepted integer converts to a finite float


@dataclass(frozen=True)
class WorldLimits:
    """Resource bounds for a world package; every one is configurable.

    Defaults: a whole package is at most 32 MiB (about two Decentraland parcels at 15 MB each: a
    node pins strangers' worlds, and a visitor on a 25 Mbit/s link loads it in about ten seconds),
    one file at most 16 MiB (a detailed glTF model), at most 1000 files and folders, a 1 MiB
    manifest holding at most 2000 objects and 64 scripts, free-form objects of at most 16 KiB and
    8 levels each, and JSON nested at most 32 levels (a parser guard checked before parsing).
    """

    max_manifest_bytes: int = 1 << 20
    max_objects: int = 2000
    max_scripts: int = 64
    max_properties_bytes: int = 16 << 10
    max_properties_depth: int = 8
    max_json_depth: int = 32
    max_files: int = 1000
    max_file_bytes: int = 16 << 20
    max_total_bytes: int = 32 << 20

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if type(value) is not int or value < 1:
                raise ConfigError(f.name, f"must be a positive integer, not {value!r}")
        if not self.max_properties_depth + 3 <= self.max_json_depth <= 200:
            # 200 keeps the recursive walks far from Python's recursion limit.
            raise ConfigError("max_json_depth", "must be in max_properties_depth + 3 .. 200")


DEFAULT_LIMITS: Final = WorldLimits()


def format_size(n: int) -> str:
    """Human-readable byte count: ``512 bytes``, ``16 KiB``, ``1.5 MiB``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} byte{'s' if n != 1 else ''}"


def format_excess(size: int, limit: int) -> str:
    """``20 MiB, over the 16 MiB`` / ``400 bytes, over the 100-byte``: exact byte counts when
    rounding would hide the excess. Callers append the limit's name ("per-file limit")."""
    shown = format_size(size)
    cap = format_size(limit) if limit >= 1024 else f"{limit:,}-byte"
    if shown == cap or shown == format_size(limit):
        shown, cap = f"{size:,} bytes", f"{limit:,}-byte"
    return f"{shown}, over the {cap}"
