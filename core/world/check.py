"""The world.json validator: `parse_manifest` and the `_Checker` that walks the parsed document,
collects every `ManifestError` and builds the `WorldManifest` (sans-IO, stdlib only)."""

from __future__ import annotations

import codecs
import difflib
import json
import re
from collections.abc import Callable, Sequence
from typing import Final

from fluxnode.core.errors import ManifestError, WorldManifestInvalid
from fluxnode.core.world.actions import Action, action_problem, parse_action, property_problems
from fluxnode.core.world.jsonguard import (
    _BadNumber,
    _constant,
    _Dict,
    _float,
    _int,
    _pairs,
    _too_deep,
)
from fluxnode.core.world.limits import (
    ACTION_MAX_CHARS,
    DEFAULT_LIMITS,
    DESCRIPTION_MAX_CHARS,
    ID_MAX_CHARS,
    MAX_PLAYERS,
    NAME_MAX_CHARS,
    SCHEMA_REF_MAX_CHARS,
    TAG_MAX_CHARS,
    TAGS_MAX,
    WorldLimits,
    format_excess,
)
from fluxnode.core.world.model import (
    ASSET_PROPERTIES,
    ORIGIN,
    UNIT_SCALE,
    Interactions,
    JsonValue,
    Permissions,
    Vec3,
    Visibility,
    WorldManifest,
    WorldObject,
    WorldSettings,
)
from fluxnode.core.world.paths import CONTROL, SURROGATE, check_relative_path, is_skybox_path

# --- validation ------------------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_ID = re.compile(r"[A-Za-z0-9_.:-]+")
_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]*")
_PRESET = re.compile(r"[A-Za-z0-9_-]+")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TEXT_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # control characters but \t \n \r
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
        elif isinstance(v, str) and SURROGATE.search(v):
            self.error(path, "string holds an unpaired UTF-16 surrogate escape")
            self.reported.add(path)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                self.scan(x, f"{path}[{i}]")
        elif isinstance(v, _Dict):
            for k in v.duplicates:
                self.error(_key(path, k), "duplicate key")
            for k, x in v.items():
                if SURROGATE.search(k):
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
        elif CONTROL.search(v):
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
                for key in ASSET_PROPERTIES:
                    if key in d["properties"]:
                        self.asset(d["properties"][key], f"{path}.properties.{key}")
        interactions = Interactions()
        if "interactions" in d:
            actions: dict[str, Action] = {}
            interactions = self.interactions(d["interactions"], f"{path}.interactions", actions)
            for key, problem in property_problems(actions, properties).items():
                self.error(f"{path}.interactions.{key}", problem)
        permissions = Permissions()
        if "permissions" in d:
            permissions = self.permissions(d["permissions"], f"{path}.permissions")
        return WorldObject(
            id_, type_, position, rotation, scale, properties, interactions, permissions
        )

    def interactions(self, v: object, path: str, actions: dict[str, Action]) -> Interactions:
        """The interactions; fills `actions` (by trigger) with the well-formed actions named."""
        d = self.obj(v, path, (), tuple(_INTERACTIONS))
        if d is None:
            return Interactions()
        values: dict[str, str | None] = {}
        for key, attr in _INTERACTIONS.items():
            if d.get(key) is not None:
                count = len(self.errors)
                values[attr] = text = self.string(d[key], f"{path}.{key}", ACTION_MAX_CHARS)
                if len(self.errors) > count or f"{path}.{key}" in self.reported:
                    continue
                if problem := action_problem(text):
                    self.error(f"{path}.{key}", problem)
                elif (action := parse_action(text)) is not None:
                    actions[key] = action
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


# --- the entry point ---


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
