"""World manifests: the `world.json` model and its hand-written validator (sans-IO, stdlib only).

A world package is a folder with `world.json` plus the assets it references; this module checks
the manifest bytes, `fluxnode.storage.worldpkg` checks the folder. `core/world.schema.json`
describes the same model as a JSON Schema (draft 2020-12) for authors and editors; a unit test
keeps the two in agreement. We validate by hand (no `jsonschema` at run time) so every error names
its JSON path in plain words, e.g. ``objects[3].scale.x: must be > 0``, and so that checks a schema
cannot express are done too. `parse_manifest` reports *all* errors it finds, not just the first.
The parsing guards and the validator's machinery live in the private
`fluxnode.core._world_check`; `parse_manifest` here is the entry point.

The model (keys are camelCase in JSON, snake_case here; "optional" keys may be omitted):

- top level: ``name`` (1..100 characters, not blank, no control characters), ``settings``
  (required); optional ``description`` (≤ 2000 characters; tab, newline and carriage return are
  the only control characters allowed), ``thumbnail`` (asset path or null), ``tags`` (≤ 20 unique
  non-blank strings of 1..32 characters), ``objects`` (≤ `WorldLimits.max_objects`), ``scripts``
  (≤ `WorldLimits.max_scripts` unique asset paths) and ``$schema`` (a string ≤ 2048 characters,
  ignored: lets editors find the schema). Any other key is an error, at every level except the
  free-form objects, so typos fail (the message suggests the closest known key).
- ``settings``: ``maxPlayers`` (integer 1..100) and ``visibility`` (public | private | friends |
  ticketed) are required; optional ``spawnPoint`` (vector, default origin), ``skybox`` (null, a
  preset name of 1..64 ``[A-Za-z0-9_-]``, or — when it contains ``.`` or ``/`` — an asset path),
  ``lighting`` and ``physics`` (free-form objects or null, interpreted by the viewer).
- an object: ``id`` (1..64 of ``[A-Za-z0-9_.:-]``, unique in the world), ``type`` (open vocabulary,
  bounded: a letter then up to 63 of ``[A-Za-z0-9_.:-]``, e.g. ``cube``, ``npc:guard``); optional
  ``position`` (default 0,0,0), ``rotation`` (Euler angles in the viewer's convention, default
  0,0,0), ``scale`` (every component > 0, default 1,1,1), ``properties`` (free-form object, default
  {}), ``interactions`` (``onClick``, ``onEnter``, ``onLeave``, ``onInteract``: each null or a
  script/action name of 1..128 characters without control characters; these are names resolved
  by the runtime, not asset paths), ``permissions`` (``canMove``, ``canDelete``, ``canModify``:
  booleans defaulting to false; ``owner``: null or ``0x`` + 40 hex digits, any letter case).
- vectors are ``{"x", "y", "z"}`` with all three finite numbers and no other key.
- free-form objects (``properties``, ``lighting``, ``physics``) nest at most
  `WorldLimits.max_properties_depth` levels (the object itself is level 1) and serialise (compact
  UTF-8 JSON) to at most `WorldLimits.max_properties_bytes` bytes each.

Asset references — the only strings that must name a file in the package: ``thumbnail``,
``settings.skybox`` when it contains ``.`` or ``/``, every ``scripts[]`` entry, and an object's
``properties.model`` and ``properties.src``; those two property keys are reserved: if present they
must be asset paths (packages are self-contained, so URLs are rejected). Paths are relative POSIX
paths in one canonical spelling; see `check_relative_path`.

Rejected before or while parsing: manifests over `WorldLimits.max_manifest_bytes` (checked before
anything else), a UTF-8 byte order mark, bytes that are not UTF-8, JSON nested deeper than
`WorldLimits.max_json_depth` (checked on the raw bytes before parsing), invalid JSON, NaN/Infinity
and numbers that overflow a float, integers over 300 digits, duplicate keys in any object, and
strings holding unpaired UTF-16 surrogate escapes. Checks that JSON Schema cannot express (so the
schema is more lenient there): unique object ids, duplicate keys, free-form depth/size, path
segment byte length, number range, manifest size.

The model objects are frozen; the free-form ``properties``/``lighting``/``physics`` dicts are
fresh copies owned by the manifest — treat them as read-only.
"""

from __future__ import annotations

import codecs
import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Final, TypeAlias

from fluxnode.core.errors import ConfigError, RemoteError

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"

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
_ASSET_PROPERTIES: Final = ("model", "src")  # object properties that name assets


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


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    FRIENDS = "friends"
    TICKETED = "ticketed"


@dataclass(frozen=True)
class Vec3:
    x: float
    y: float
    z: float


ORIGIN: Final = Vec3(0.0, 0.0, 0.0)
UNIT_SCALE: Final = Vec3(1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Interactions:
    on_click: str | None = None
    on_enter: str | None = None
    on_leave: str | None = None
    on_interact: str | None = None


@dataclass(frozen=True)
class Permissions:
    can_move: bool = False
    can_delete: bool = False
    can_modify: bool = False
    owner: str | None = None


@dataclass(frozen=True)
class WorldObject:
    id: str
    type: str
    position: Vec3 = ORIGIN
    rotation: Vec3 = ORIGIN
    scale: Vec3 = UNIT_SCALE
    properties: dict[str, JsonValue] = field(default_factory=dict)
    interactions: Interactions = Interactions()
    permissions: Permissions = Permissions()


@dataclass(frozen=True)
class WorldSettings:
    max_players: int
    visibility: Visibility
    spawn_point: Vec3 = ORIGIN
    skybox: str | None = None
    lighting: dict[str, JsonValue] | None = None
    physics: dict[str, JsonValue] | None = None


@dataclass(frozen=True)
class AssetRef:
    """One asset reference: where in world.json (`json_path`) and which package file (`path`)."""

    json_path: str
    path: str


@dataclass(frozen=True)
class WorldManifest:
    name: str
    settings: WorldSettings
    description: str = ""
    thumbnail: str | None = None
    tags: tuple[str, ...] = ()
    objects: tuple[WorldObject, ...] = ()
    scripts: tuple[str, ...] = ()

    def asset_references(self) -> list[AssetRef]:
        """Every asset reference in document order (a path may appear more than once)."""
        refs = []
        if self.thumbnail is not None:
            refs.append(AssetRef("thumbnail", self.thumbnail))
        if self.settings.skybox is not None and is_skybox_path(self.settings.skybox):
            refs.append(AssetRef("settings.skybox", self.settings.skybox))
        refs += [AssetRef(f"scripts[{i}]", s) for i, s in enumerate(self.scripts)]
        for i, obj in enumerate(self.objects):
            for key in _ASSET_PROPERTIES:
                value = obj.properties.get(key)
                if isinstance(value, str):
                    refs.append(AssetRef(f"objects[{i}].properties.{key}", value))
        return refs

    def asset_paths(self) -> list[str]:
        """The referenced package files: relative POSIX paths, sorted, without duplicates."""
        return sorted({ref.path for ref in self.asset_references()})


@dataclass(frozen=True)
class ManifestError:
    """One problem: `path` is a JSON path (``objects[3].scale.x``; ``$`` is the whole document)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def summarize(head: str, problems: Sequence[object], shown: int = 50) -> str:
    """``head (N errors):`` then one indented line per problem, at most `shown` of them."""
    lines = [f"{head} ({len(problems)} error{'s' if len(problems) != 1 else ''}):"]
    lines += [f"  {p}" for p in problems[:shown]]
    if len(problems) > shown:
        lines.append(f"  ... and {len(problems) - shown} more")
    return "\n".join(lines)


class WorldManifestInvalid(RemoteError):
    """world.json broke the model or a limit; `errors` lists every problem found."""

    code = "world_invalid"

    def __init__(self, errors: Sequence[ManifestError]) -> None:
        self.errors = list(errors)
        super().__init__(summarize(f"{MANIFEST_NAME} is invalid", self.errors))


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


# --- paths -----------------------------------------------------------------------------------

_WINDOWS_RESERVED = ':*?"<>|'
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


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
    if _SURROGATE.search(p):
        return "must be valid Unicode (it holds an unpaired surrogate)"
    if len(p) > max_chars:
        return f"must be at most {max_chars} characters (got {len(p)})"
    if _CONTROL.search(p):
        return "must not contain control characters (such as NUL or newline)"
    if "://" in p:
        return "must be a relative path inside the package, not a URL"
    if p.startswith("/"):
        return "must be relative to the package folder, not absolute"
    if "\\" in p:
        return "must use / as the separator, not \\"
    if re.match("[A-Za-z]:", p):
        return "must be relative to the package folder, not a drive path"
    if any(c in p for c in _WINDOWS_RESERVED):
        return f"must not contain any of {' '.join(_WINDOWS_RESERVED)}"
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


# --- parsing ---------------------------------------------------------------------------------


def _fail(message: str) -> WorldManifestInvalid:
    return WorldManifestInvalid([ManifestError("$", message)])


def parse_manifest(data: bytes, limits: WorldLimits = DEFAULT_LIMITS) -> WorldManifest:
    """Validate world.json bytes and build the model; raise `WorldManifestInvalid` listing every
    problem found. Pure: no I/O, no state."""
    # Imported here, not at the top: the checker builds this module's model, so it imports us.
    from fluxnode.core._world_check import _Checker, _constant, _float, _int, _pairs, _too_deep

    if not isinstance(data, bytes | bytearray):
        raise TypeError(f"parse_manifest wants bytes, not {type(data).__name__}")
    if len(data) > limits.max_manifest_bytes:
        raise _fail(f"manifest is {format_excess(len(data), limits.max_manifest_bytes)} limit")
    if data.startswith(codecs.BOM_UTF8):
        raise _fail("starts with a byte order mark; save it as UTF-8 without BOM")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"is not valid UTF-8 (bad byte at offset {exc.start})") from None
    if _too_deep(data, limits.max_json_depth):
        raise _fail(f"JSON is nested deeper than {limits.max_json_depth} levels")
    try:
        doc = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_float=_float,
            parse_int=_int,
            parse_constant=_constant,
        )
    except json.JSONDecodeError as exc:
        raise _fail(
            f"is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:  # unreachable after _too_deep; kept as a guard
        raise _fail("JSON is nested too deeply") from None
    checker = _Checker(limits)
    checker.scan(doc, "$")
    manifest = checker.manifest(doc)
    if checker.errors:
        raise WorldManifestInvalid(checker.errors)
    return manifest
