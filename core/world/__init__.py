"""World manifests: the `world.json` model and its hand-written validator (sans-IO, stdlib only).

A world package is a folder with `world.json` plus the assets it references; this module checks
the manifest bytes, `fluxnode.storage.worldpkg` checks the folder. `core/world.schema.json`
describes the same model as a JSON Schema (draft 2020-12) for authors and editors; a unit test
keeps the two in agreement. We validate by hand (no `jsonschema` at run time) so every error names
its JSON path in plain words, e.g. ``objects[3].scale.x: must be > 0``, and so that checks a schema
cannot express are done too. `parse_manifest` reports *all* errors it finds, not just the first.
The package's modules import one way: `limits` (bounds, size formatting) <- `paths` (asset
paths) <- `model` (the dataclasses) <- `jsonguard` (parser guards) and `actions` (the grammar of
interaction actions) <- `check` (`parse_manifest` and the validator); this `__init__` re-exports
the public names. The errors it raises,
`WorldManifestInvalid` and `WorldPackageInvalid`, live in `fluxnode.core.errors`.

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
  value of 1..128 characters without control characters: a declarative action — ``move``,
  ``toggle:<prop>``, ``set:<prop>=<json>``, see `fluxnode.core.world.actions`, which also says
  which property values a toggled property allows — or else a script name resolved by the
  viewer; never an asset path), ``permissions`` (``canMove``, ``canDelete``, ``canModify``:
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
segment byte length, number range, manifest size, the JSON literal of a ``set:`` action (the
schema checks its ``set:<prop>=`` form only) and the boolean type of toggled properties.

The model objects are frozen; the free-form ``properties``/``lighting``/``physics`` dicts are
fresh copies owned by the manifest — treat them as read-only.
"""

from fluxnode.core.errors import (
    ManifestError,
    PackageProblem,
    WorldManifestInvalid,
    WorldPackageInvalid,
    summarize,
)
from fluxnode.core.world.actions import (
    Action,
    Move,
    SetTo,
    Toggle,
    action_problem,
    parse_action,
)
from fluxnode.core.world.check import parse_manifest
from fluxnode.core.world.limits import (
    ACTION_MAX_CHARS,
    DEFAULT_LIMITS,
    DESCRIPTION_MAX_CHARS,
    ID_MAX_CHARS,
    INT_MAX_DIGITS,
    MANIFEST_NAME,
    MAX_PLAYERS,
    NAME_MAX_CHARS,
    PATH_MAX_CHARS,
    SCHEMA_REF_MAX_CHARS,
    SEGMENT_MAX_BYTES,
    TAG_MAX_CHARS,
    TAGS_MAX,
    WorldLimits,
    format_excess,
    format_size,
)
from fluxnode.core.world.model import (
    ORIGIN,
    UNIT_SCALE,
    AssetRef,
    Interactions,
    JsonValue,
    Permissions,
    Vec3,
    Visibility,
    WorldManifest,
    WorldObject,
    WorldSettings,
)
from fluxnode.core.world.paths import check_relative_path, is_skybox_path

__all__ = [
    "ACTION_MAX_CHARS",
    "DEFAULT_LIMITS",
    "DESCRIPTION_MAX_CHARS",
    "ID_MAX_CHARS",
    "INT_MAX_DIGITS",
    "MANIFEST_NAME",
    "MAX_PLAYERS",
    "NAME_MAX_CHARS",
    "ORIGIN",
    "PATH_MAX_CHARS",
    "SCHEMA_REF_MAX_CHARS",
    "SEGMENT_MAX_BYTES",
    "TAGS_MAX",
    "TAG_MAX_CHARS",
    "UNIT_SCALE",
    "Action",
    "AssetRef",
    "Interactions",
    "JsonValue",
    "ManifestError",
    "Move",
    "PackageProblem",
    "Permissions",
    "SetTo",
    "Toggle",
    "Vec3",
    "Visibility",
    "WorldLimits",
    "WorldManifest",
    "WorldManifestInvalid",
    "WorldObject",
    "WorldPackageInvalid",
    "WorldSettings",
    "action_problem",
    "check_relative_path",
    "format_excess",
    "format_size",
    "is_skybox_path",
    "parse_action",
    "parse_manifest",
    "summarize",
]
