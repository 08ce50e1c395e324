"""World manifests: the `world.json` model and its hand-written validator (sans-IO, stdlib only).

A world package is a folder with `world.json` plus the assets it references; this module checks
the manifest bytes, `fluxnode.storage.worldpkg` checks the folder. `core/world.schema.json`
describes the same model as a JSON Schema (draft 2020-12) for authors and editors; a unit test
keeps the two in agreement. We validate by hand (no `jsonschema` at run time) so every error names
its JSON path in plain words, e.g. ``objects[3].scale.x: must be > 0``, and so that checks a schema
cannot express are done too. `parse_manifest` reports *all* errors it finds, not just the first.

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
import difflib
import enum
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
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


def _fail(message: str) -> WorldManifestInvalid:
    return WorldManifestInvalid([ManifestError("$", message)])


def parse_manifest(data: bytes, limits: WorldLimits = DEFAULT_LIMITS) -> WorldManifest:
    """Validate world.json bytes and build the model; raise `WorldManifestInvalid` listing every
    problem found. Pure: no I/O, no state."""
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


# --- validation ------------------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_ID = re.compile(r"[A-Za-z0-9_.:-]+")
_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]*")
_PRESET = re.compile(r"[A-Za-z0-9_-]+")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TEXT_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # control characters but \t \n \r
_ASSET_PROPERTIES: Final = ("model", "src")
_INTERACTIONS: Final = {
    "onClick": "on_click",
    "onEnter": "on_enter",
    "onLeave": "on_leave",
    "onInteract": "on_interact",
}
_PERMISSION_FLAGS: Final = {
    "canMove": "can_move",
    "canDelete": "can_delete",
    "canModify": "can_modify",
}


def _key(base: str, key: str) -> str:
    step = key if _IDENT.fullmatch(key) else f"[{json.dumps(key)[:80]}]"
    if base == "$":
        return step if not step.startswith("[") else f"${step}"
    return f"{base}{step}" if step.startswith("[") else f"{base}.{step}"


def _kind(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float | _BadNumber):
        return "a number"
    if isinstance(v, str):
        return "a string"
    return "an array" if isinstance(v, list) else "an object"


def _show(s: str) -> str:
    shown = json.dumps(s)
    return shown if len(shown) <= 60 else shown[:56] + '..."'


def _plain(v: object) -> JsonValue:
    """A plain-dict/list copy of parsed JSON (drops `_Dict`; a `_BadNumber`, already reported,
    becomes None)."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v if v is None or isinstance(v, bool | int | float | str) else None


def _depth(v: object) -> int:
    if isinstance(v, dict):
        return 1 + max(map(_depth, v.values()), default=0)
    if isinstance(v, list):
        return 1 + max(map(_depth, v), default=0)
    return 0


class _Checker:
    """Collects errors while building the model; on error it fills in placeholders."""

    def __init__(self, limits: WorldLimits) -> None:
        self.limits = limits
        self.errors: list[ManifestError] = []
        self.reported: set[str] = set()  # values already reported by `scan`: say nothing more

    def error(self, path: str, message: str) -> None:
        if path not in self.reported:
            self.errors.append(ManifestError(path, message))

    def scan(self, v: object, path: str) -> None:
        """Errors any JSON value can have: bad numbers, surrogates, duplicate keys."""
        if isinstance(v, _BadNumber):
            self.error(path, v.message)
            self.reported.add(path)
        elif isinstance(v, str) and _SURROGATE.search(v):
            self.error(path, "string holds an unpaired UTF-16 surrogate escape")
            self.reported.add(path)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                self.scan(x, f"{path}[{i}]")
        elif isinstance(v, _Dict):
            for k in v.duplicates:
                self.error(_key(path, k), "duplicate key")
            for k, x in v.items():
                if _SURROGATE.search(k):
                    self.error(_key(path, k), "key holds an unpaired UTF-16 surrogate escape")
                    self.reported.add(_key(path, k))
                self.scan(x, _key(path, k))

    def obj(
        self, v: object, path: str, required: Sequence[str], optional: Sequence[str]
    ) -> dict[str, object] | None:
        if not isinstance(v, dict):
            self.error(path, f"must be an object, not {_kind(v)}")
            return None
        allowed = [*required, *optional]
        for k in v:
            if k not in allowed:
                close = difflib.get_close_matches(k, allowed, n=1)
                hint = f'; did you mean "{close[0]}"?' if close else ""
                self.error(_key(path, k), f"unknown key{hint}")
        for k in required:
            if k not in v:
                self.error(_key(path, k), "is required")
        return v

    def string(
        self,
        v: object,
        path: str,
        max_chars: int,
        min_chars: int = 1,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
    ) -> str:
        if not isinstance(v, str):
            self.error(path, f"must be a string, not {_kind(v)}")
            return ""
        if len(v) < min_chars:
            self.error(path, "must not be empty")
        elif len(v) > max_chars:
            self.error(path, f"must be at most {max_chars} characters (got {len(v)})")
        elif _CONTROL.search(v):
            self.error(path, "must not contain control characters")
        elif pattern is not None and not pattern.fullmatch(v):
            self.error(path, f"must be {what}")
        return v

    def number(self, v: object, path: str, positive: bool = False) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.error(path, f"must be a number, not {_kind(v)}")
            return 1.0
        if positive and v <= 0:
            self.error(path, "must be > 0")
        return float(v)

    def boolean(self, v: object, path: str) -> bool:
        if not isinstance(v, bool):
            self.error(path, f"must be true or false, not {_kind(v)}")
            return False
        return v

    def vec3(self, v: object, path: str, default: Vec3, positive: bool = False) -> Vec3:
        d = self.obj(v, path, ("x", "y", "z"), ())
        if d is None:
            return default
        x, y, z = (self.number(d[k], f"{path}.{k}", positive) if k in d else 1.0 for k in "xyz")
        return Vec3(x, y, z)

    def asset(self, v: object, path: str) -> str:
        if not isinstance(v, str):
            self.error(path, f"must be a relative asset path (a string), not {_kind(v)}")
            return ""
        problem = check_relative_path(v)
        if problem is not None:
            self.error(path, f"asset path {_show(v)} {problem}")
        return v

    def free_object(self, v: object, path: str) -> dict[str, JsonValue]:
        if not isinstance(v, dict):
            self.error(path, f"must be an object, not {_kind(v)}")
            return {}
        if _depth(v) > self.limits.max_properties_depth:
            self.error(path, f"is nested deeper than {self.limits.max_properties_depth} levels")
            return {}
        text = json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.limits.max_properties_bytes:
            excess = format_excess(size, self.limits.max_properties_bytes)
            self.error(path, f"is {excess} limit as compact JSON")
        return {k: _plain(x) for k, x in v.items()}

    def string_list(
        self, v: object, path: str, what: str, maximum: int, item: Callable[[object, str], str]
    ) -> list[str]:
        """An array of at most `maximum` unique strings, each checked by `item`."""
        if not isinstance(v, list):
            self.error(path, f"must be an array, not {_kind(v)}")
            return []
        if len(v) > maximum:
            self.error(path, f"must have at most {maximum} {what}s (got {len(v)})")
        seen: set[str] = set()
        out = []
        for i, x in enumerate(v):
            out.append(item(x, f"{path}[{i}]"))
            if isinstance(x, str):
                if x in seen:
                    self.error(f"{path}[{i}]", f"duplicate {what} {_show(x)}")
                seen.add(x)
        return out

    def tag(self, v: object, path: str) -> str:
        tag = self.string(v, path, TAG_MAX_CHARS)
        if tag and not re.search(r"\S", tag):
            self.error(path, "must not be blank")
        return tag

    # --- the model ---

    def manifest(self, doc: object) -> WorldManifest:
        optional = ("$schema", "description", "thumbnail", "tags", "objects", "scripts")
        d = self.obj(doc, "$", ("name", "settings"), optional)
        if d is None:
            return WorldManifest("", WorldSettings(1, Visibility.PRIVATE))
        if "$schema" in d:
            self.string(d["$schema"], "$schema", SCHEMA_REF_MAX_CHARS, min_chars=0)
        name = ""
        if "name" in d:
            name = self.string(d["name"], "name", NAME_MAX_CHARS)
            if name and not re.search(r"\S", name):
                self.error("name", "must not be blank")
        description = ""
        if "description" in d:
            description = self.description(d["description"])
        thumbnail = None
        if d.get("thumbnail") is not None:
            thumbnail = self.asset(d["thumbnail"], "thumbnail")
        tags: list[str] = []
        if "tags" in d:
            tags = self.string_list(d["tags"], "tags", "tag", TAGS_MAX, self.tag)
        settings = WorldSettings(1, Visibility.PRIVATE)
        if "settings" in d:
            settings = self.settings(d["settings"])
        objects = self.objects(d["objects"]) if "objects" in d else []
        scripts: list[str] = []
        if "scripts" in d:
            limit = self.limits.max_scripts
            scripts = self.string_list(d["scripts"], "scripts", "script", limit, self.asset)
        return WorldManifest(
            name, settings, description, thumbnail, tuple(tags), tuple(objects), tuple(scripts)
        )

    def description(self, v: object) -> str:
        if not isinstance(v, str):
            self.error("description", f"must be a string, not {_kind(v)}")
            return ""
        if len(v) > DESCRIPTION_MAX_CHARS:
            self.error("description", f"must be at most {DESCRIPTION_MAX_CHARS} characters")
        elif _TEXT_CONTROL.search(v):
            self.error("description", "must not contain control characters but tab and newline")
        return v

    def settings(self, v: object) -> WorldSettings:
        path = "settings"
        optional = ("spawnPoint", "skybox", "lighting", "physics")
        d = self.obj(v, path, ("maxPlayers", "visibility"), optional)
        if d is None:
            return WorldSettings(1, Visibility.PRIVATE)
        max_players = 1
        if "maxPlayers" in d:
            mp = d["maxPlayers"]
            if isinstance(mp, float) and mp.is_integer():
                mp = int(mp)  # JSON Schema's "integer" accepts 8.0 too
            if isinstance(mp, bool) or not isinstance(mp, int):
                self.error("settings.maxPlayers", f"must be an integer, not {_kind(mp)}")
            elif not 1 <= mp <= MAX_PLAYERS:
                self.error("settings.maxPlayers", f"must be between 1 and {MAX_PLAYERS}")
            else:
                max_players = mp
        visibility = Visibility.PRIVATE
        if "visibility" in d:
            vis = d["visibility"]
            if isinstance(vis, str) and vis in set(Visibility):
                visibility = Visibility(vis)
            else:
                choices = " | ".join(Visibility)
                self.error("settings.visibility", f"must be one of {choices}")
        spawn = ORIGIN
        if "spawnPoint" in d:
            spawn = self.vec3(d["spawnPoint"], "settings.spawnPoint", ORIGIN)
        skybox = d.get("skybox")
        if skybox is not None:
            if isinstance(skybox, str) and is_skybox_path(skybox):
                self.asset(skybox, "settings.skybox")
            else:
                what = f"a preset name (1..{ID_MAX_CHARS} of A-Z a-z 0-9 _ -) or an asset path"
                self.string(skybox, "settings.skybox", ID_MAX_CHARS, pattern=_PRESET, what=what)
        free = {}
        for key in ("lighting", "physics"):
            if d.get(key) is not None:
                free[key] = self.free_object(d[key], f"{path}.{key}")
        skybox_str = skybox if isinstance(skybox, str) else None
        return WorldSettings(
            max_players, visibility, spawn, skybox_str, free.get("lighting"), free.get("physics")
        )

    def objects(self, v: object) -> list[WorldObject]:
        if not isinstance(v, list):
            self.error("objects", f"must be an array, not {_kind(v)}")
            return []
        if len(v) > self.limits.max_objects:
            self.error(
                "objects", f"must have at most {self.limits.max_objects} objects (got {len(v)})"
            )
        first: dict[str, int] = {}
        out = []
        for i, item in enumerate(v):
            obj = self.world_object(item, f"objects[{i}]")
            if obj.id in first:
                self.error(f"objects[{i}].id", f"duplicate id (also objects[{first[obj.id]}].id)")
            elif obj.id:
                first[obj.id] = i
            out.append(obj)
        return out

    def world_object(self, v: object, path: str) -> WorldObject:
        optional = ("position", "rotation", "scale", "properties", "interactions", "permissions")
        d = self.obj(v, path, ("id", "type"), optional)
        if d is None:
            return WorldObject("", "")
        id_ = ""
        if "id" in d:
            what = "1 to 64 of A-Z a-z 0-9 _ . : -"
            id_ = self.string(d["id"], f"{path}.id", ID_MAX_CHARS, pattern=_ID, what=what)
        type_ = ""
        if "type" in d:
            what = "a letter, then up to 63 of A-Z a-z 0-9 _ . : -"
            type_ = self.string(d["type"], f"{path}.type", ID_MAX_CHARS, pattern=_TYPE, what=what)
        position = (
            self.vec3(d["position"], f"{path}.position", ORIGIN) if "position" in d else ORIGIN
        )
        rotation = (
            self.vec3(d["rotation"], f"{path}.rotation", ORIGIN) if "rotation" in d else ORIGIN
        )
        scale = UNIT_SCALE
        if "scale" in d:
            scale = self.vec3(d["scale"], f"{path}.scale", UNIT_SCALE, positive=True)
        properties: dict[str, JsonValue] = {}
        if "properties" in d:
            properties = self.free_object(d["properties"], f"{path}.properties")
            if isinstance(d["properties"], dict):
                for key in _ASSET_PROPERTIES:
                    if key in d["properties"]:
                        self.asset(d["properties"][key], f"{path}.properties.{key}")
        interactions = Interactions()
        if "interactions" in d:
            interactions = self.interactions(d["interactions"], f"{path}.interactions")
        permissions = Permissions()
        if "permissions" in d:
            permissions = self.permissions(d["permissions"], f"{path}.permissions")
        return WorldObject(
            id_, type_, position, rotation, scale, properties, interactions, permissions
        )

    def interactions(self, v: object, path: str) -> Interactions:
        d = self.obj(v, path, (), tuple(_INTERACTIONS))
        if d is None:
            return Interactions()
        values: dict[str, str | None] = {}
        for key, attr in _INTERACTIONS.items():
            if d.get(key) is not None:
                values[attr] = self.string(d[key], f"{path}.{key}", ACTION_MAX_CHARS)
        return Interactions(**values)

    def permissions(self, v: object, path: str) -> Permissions:
        d = self.obj(v, path, (), (*_PERMISSION_FLAGS, "owner"))
        if d is None:
            return Permissions()
        flags = {
            attr: self.boolean(d[key], f"{path}.{key}")
            for key, attr in _PERMISSION_FLAGS.items()
            if key in d
        }
        owner = None
        if d.get("owner") is not None:
            what = "an address: 0x and 40 hex digits"
            owner = self.string(d["owner"], f"{path}.owner", 42, pattern=_ADDRESS, what=what)
        return Permissions(**flags, owner=owner)
