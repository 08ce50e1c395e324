"""Sample world.json documents and helpers shared by the world manifest tests."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from fluxnode.core.world import (
    DEFAULT_LIMITS,
    WorldLimits,
    WorldManifest,
    WorldManifestInvalid,
    parse_manifest,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "core" / "world.schema.json"
EXAMPLE = ROOT / "docs" / "examples" / "hello-world" / "world.json"
OWNER = "0x" + "aB" * 20

VALID: dict[str, Any] = {
    "name": "Plaza",
    "description": "A square.\nWith fountains.",
    "thumbnail": "thumb.png",
    "tags": ["social", "music"],
    "settings": {
        "maxPlayers": 50,
        "visibility": "ticketed",
        "spawnPoint": {"x": 1, "y": 2.5, "z": -3},
        "skybox": "sky/night.hdr",
        "lighting": {"ambient": 0.2},
        "physics": {"gravity": -9.81, "layers": [1, 2]},
    },
    "objects": [
        {
            "id": "fountain",
            "type": "model",
            "position": {"x": 0, "y": 0, "z": 0},
            "rotation": {"x": 0, "y": 90, "z": 0},
            "scale": {"x": 2, "y": 2, "z": 2},
            "properties": {"model": "models/fountain.glb", "loop": True},
            "interactions": {"onClick": "splash", "onEnter": None},
            "permissions": {
                "canMove": False,
                "canDelete": False,
                "canModify": True,
                "owner": OWNER,
            },
        },
        {"id": "screen-1", "type": "video", "properties": {"src": "media/intro.webm"}},
        {"id": "floor", "type": "plane"},
    ],
    "scripts": ["scripts/main.js", "scripts/fountain.js"],
}

MINIMAL: dict[str, Any] = {"name": "x", "settings": {"maxPlayers": 1, "visibility": "private"}}


def encode(doc: object) -> bytes:
    return json.dumps(doc).encode()


def errors(data: bytes | object, limits: WorldLimits = DEFAULT_LIMITS) -> list[str]:
    raw = data if isinstance(data, bytes) else encode(data)
    with pytest.raises(WorldManifestInvalid) as info:
        parse_manifest(raw, limits)
    return [str(e) for e in info.value.errors]


def mutated(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    change(doc)
    return doc


VALID_CHANGES: list[Callable[[dict[str, Any]], object]] = [
    lambda d: d["settings"].update(maxPlayers=100),
    lambda d: d["settings"].update(maxPlayers=8.0),  # JSON Schema's integer accepts it too
    lambda d: d["settings"].update(skybox=None, lighting=None, physics=None),
    lambda d: d.update(thumbnail=None, tags=[], objects=[], scripts=[]),
    lambda d: d.update({"$schema": "./world.schema.json"}),
    lambda d: d.update(name="Ä" * 100, description="x\t\r\n" * 500),
    lambda d: d["objects"][0].update(interactions={}, permissions={}),
    lambda d: d["objects"][0].update(id="a.b:c-d_9", type="npc:guard.v2"),
    lambda d: d["objects"][0]["permissions"].update(owner="0x" + "0" * 40),
    lambda d: d["objects"][0].update(scale={"x": 1e-9, "y": 1, "z": 1e300}),
    lambda d: d["objects"][0].update(position={"x": -1e300, "y": 0, "z": 1.5}),
    lambda d: d.update(thumbnail="images/my thumb (1).png"),
    lambda d: d.update(thumbnail="ünïcode/…/.hidden.png"),
]


CASES: list[tuple[str, Callable[[dict[str, Any]], object], list[str]]] = [
    (
        "unknown top-level key suggests the right one",
        lambda d: d.update(descripton="typo"),
        ['descripton: unknown key; did you mean "description"?'],
    ),
    ("unknown key without suggestion", lambda d: d.update(zzz=1), ["zzz: unknown key"]),
    (
        "odd key names are quoted in the path",
        lambda d: d["settings"].update({"max players": 3}),
        ['settings["max players"]: unknown key; did you mean "maxPlayers"?'],
    ),
    ("name missing", lambda d: d.pop("name"), ["name: is required"]),
    ("name empty", lambda d: d.update(name=""), ["name: must not be empty"]),
    ("name blank", lambda d: d.update(name=" \u3000 "), ["name: must not be blank"]),
    (
        "name too long",
        lambda d: d.update(name="n" * 101),
        ["name: must be at most 100 characters (got 101)"],
    ),
    ("name not a string", lambda d: d.update(name=5), ["name: must be a string, not a number"]),
    (
        "name with a newline",
        lambda d: d.update(name="a\nb"),
        ["name: must not contain control characters"],
    ),
    (
        "description too long",
        lambda d: d.update(description="d" * 2001),
        ["description: must be at most 2000 characters"],
    ),
    (
        "description with NUL",
        lambda d: d.update(description="a\x00"),
        ["description: must not contain control characters but tab and newline"],
    ),
    (
        "description null",
        lambda d: d.update(description=None),
        ["description: must be a string, not null"],
    ),
    (
        "thumbnail absolute",
        lambda d: d.update(thumbnail="/etc/passwd"),
        [
            'thumbnail: asset path "/etc/passwd" must be relative to the package folder, '
            "not absolute"
        ],
    ),
    (
        "thumbnail URL",
        lambda d: d.update(thumbnail="https://example.org/a.png"),
        [
            'thumbnail: asset path "https://example.org/a.png" must be a relative path inside '
            "the package, not a URL"
        ],
    ),
    (
        "thumbnail not a string",
        lambda d: d.update(thumbnail=["a.png"]),
        ["thumbnail: must be a relative asset path (a string), not an array"],
    ),
    (
        "too many tags",
        lambda d: d.update(tags=[f"t{i}" for i in range(21)]),
        ["tags: must have at most 20 tags (got 21)"],
    ),
    (
        "duplicate, long and blank tags",
        lambda d: d.update(tags=["a", "b", "a", "x" * 33, " "]),
        [
            'tags[2]: duplicate tag "a"',
            "tags[3]: must be at most 32 characters (got 33)",
            "tags[4]: must not be blank",
        ],
    ),
    ("tags not an array", lambda d: d.update(tags="a,b"), ["tags: must be an array, not a string"]),
    ("tag not a string", lambda d: d.update(tags=[None]), ["tags[0]: must be a string, not null"]),
    ("settings missing", lambda d: d.pop("settings"), ["settings: is required"]),
    (
        "settings not an object",
        lambda d: d.update(settings=[]),
        ["settings: must be an object, not an array"],
    ),
    (
        "maxPlayers and visibility missing",
        lambda d: d.update(settings={}),
        ["settings.maxPlayers: is required", "settings.visibility: is required"],
    ),
    (
        "maxPlayers too large",
        lambda d: d["settings"].update(maxPlayers=101),
        ["settings.maxPlayers: must be between 1 and 100"],
    ),
    (
        "maxPlayers zero",
        lambda d: d["settings"].update(maxPlayers=0),
        ["settings.maxPlayers: must be between 1 and 100"],
    ),
    (
        "maxPlayers fractional",
        lambda d: d["settings"].update(maxPlayers=2.5),
        ["settings.maxPlayers: must be an integer, not a number"],
    ),
    (
        "maxPlayers boolean",
        lambda d: d["settings"].update(maxPlayers=True),
        ["settings.maxPlayers: must be an integer, not a boolean"],
    ),
    (
        "visibility unknown",
        lambda d: d["settings"].update(visibility="Public"),
        ["settings.visibility: must be one of public | private | friends | ticketed"],
    ),
    (
        "spawnPoint incomplete and extra",
        lambda d: d["settings"].update(spawnPoint={"x": 0, "y": 0, "w": 1}),
        ["settings.spawnPoint.w: unknown key", "settings.spawnPoint.z: is required"],
    ),
    (
        "skybox preset with a bad character",
        lambda d: d["settings"].update(skybox="my sky"),
        [
            "settings.skybox: must be a preset name (1..64 of A-Z a-z 0-9 _ -) or an asset path",
        ],
    ),
    (
        "skybox path escaping",
        lambda d: d["settings"].update(skybox="../sky.png"),
        [
            "settings.skybox: asset path \"../sky.png\" must not contain '..' "
            "(it would leave the package)"
        ],
    ),
    (
        "skybox number",
        lambda d: d["settings"].update(skybox=3),
        ["settings.skybox: must be a string, not a number"],
    ),
    (
        "lighting not an object",
        lambda d: d["settings"].update(lighting="bright"),
        ["settings.lighting: must be an object, not a string"],
    ),
    (
        "objects not an array",
        lambda d: d.update(objects={}),
        ["objects: must be an array, not an object"],
    ),
    (
        "object not an object",
        lambda d: d["objects"].append(7),
        ["objects[3]: must be an object, not a number"],
    ),
    (
        "object id and type missing",
        lambda d: d["objects"].append({}),
        ["objects[3].id: is required", "objects[3].type: is required"],
    ),
    (
        "object id empty and type bad",
        lambda d: d["objects"].append({"id": "", "type": "9lives"}),
        [
            "objects[3].id: must not be empty",
            "objects[3].type: must be a letter, then up to 63 of A-Z a-z 0-9 _ . : -",
        ],
    ),
    (
        "object id with a space",
        lambda d: d["objects"][2].update(id="my floor"),
        ["objects[2].id: must be 1 to 64 of A-Z a-z 0-9 _ . : -"],
    ),
    (
        "object id too long",
        lambda d: d["objects"][2].update(id="i" * 65),
        ["objects[2].id: must be at most 64 characters (got 65)"],
    ),
    (
        "duplicate object id",
        lambda d: d["objects"].append({"id": "fountain", "type": "cube"}),
        ["objects[3].id: duplicate id (also objects[0].id)"],
    ),
    (
        "scale must be positive",
        lambda d: d["objects"][0].update(scale={"x": 0, "y": -1, "z": 1}),
        ["objects[0].scale.x: must be > 0", "objects[0].scale.y: must be > 0"],
    ),
    (
        "position component not a number",
        lambda d: d["objects"][0].update(position={"x": "1", "y": True, "z": None}),
        [
            "objects[0].position.x: must be a number, not a string",
            "objects[0].position.y: must be a number, not a boolean",
            "objects[0].position.z: must be a number, not null",
        ],
    ),
    (
        "rotation not an object",
        lambda d: d["objects"][0].update(rotation=[0, 0, 0]),
        ["objects[0].rotation: must be an object, not an array"],
    ),
    (
        "properties not an object",
        lambda d: d["objects"][0].update(properties=None),
        ["objects[0].properties: must be an object, not null"],
    ),
    (
        "properties.model must be an asset path",
        lambda d: d["objects"][0]["properties"].update(model={"url": "x"}),
        ["objects[0].properties.model: must be a relative asset path (a string), not an object"],
    ),
    (
        "properties.src with a backslash",
        lambda d: d["objects"][1]["properties"].update(src="media\\intro.webm"),
        [
            'objects[1].properties.src: asset path "media\\\\intro.webm" must use / as the '
            "separator, not \\"
        ],
    ),
    (
        "interaction key typo and bad value",
        lambda d: d["objects"][0].update(interactions={"onclick": "x", "onLeave": 5}),
        [
            'objects[0].interactions.onclick: unknown key; did you mean "onClick"?',
            "objects[0].interactions.onLeave: must be a string, not a number",
        ],
    ),
    (
        "interaction empty and too long",
        lambda d: d["objects"][0].update(interactions={"onEnter": "", "onInteract": "a" * 129}),
        [
            "objects[0].interactions.onEnter: must not be empty",
            "objects[0].interactions.onInteract: must be at most 128 characters (got 129)",
        ],
    ),
    (
        "permission not a boolean",
        lambda d: d["objects"][0]["permissions"].update(canMove="yes"),
        ["objects[0].permissions.canMove: must be true or false, not a string"],
    ),
    (
        "owner too short",
        lambda d: d["objects"][0]["permissions"].update(owner="0x1234"),
        ["objects[0].permissions.owner: must be an address: 0x and 40 hex digits"],
    ),
    (
        "owner without 0x",
        lambda d: d["objects"][0]["permissions"].update(owner="ab" * 21),
        ["objects[0].permissions.owner: must be an address: 0x and 40 hex digits"],
    ),
    (
        "scripts with duplicates and bad paths",
        lambda d: d.update(scripts=["a.js", "a.js", "b//c.js", "./d.js", "e/", 4]),
        [
            'scripts[1]: duplicate script "a.js"',
            "scripts[2]: asset path \"b//c.js\" must not contain empty segments ('//' or a "
            "trailing '/')",
            "scripts[3]: asset path \"./d.js\" must not contain '.' segments",
            "scripts[4]: asset path \"e/\" must not contain empty segments ('//' or a "
            "trailing '/')",
            "scripts[5]: must be a relative asset path (a string), not a number",
        ],
    ),
    (
        "too many scripts",
        lambda d: d.update(scripts=[f"s{i}.js" for i in range(65)]),
        ["scripts: must have at most 64 scripts (got 65)"],
    ),
    (
        "$schema must be a string",
        lambda d: d.update({"$schema": 1}),
        ["$schema: must be a string, not a number"],
    ),
]


# --- fuzzing strategies ---


def _containers(doc: object, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here] if isinstance(doc, dict | list) else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            found += _containers(v, (*here, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found += _containers(v, (*here, i))
    return found


def _get(doc: Any, where: tuple[Any, ...]) -> Any:
    for step in where:
        doc = doc[step]
    return doc


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.text(alphabet="aZ09._-/\\:?* \t\n\x00\x7f\u3000é", max_size=12),  # paths, ids, names
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def parses_or_is_invalid(raw: bytes) -> WorldManifest | WorldManifestInvalid:
    """Parse; an invalid manifest must come back as WorldManifestInvalid with sane errors."""
    try:
        return parse_manifest(raw)
    except WorldManifestInvalid as exc:
        invalid = exc
    assert invalid.errors
    assert all(e.path and e.message for e in invalid.errors)
    str(invalid).encode("utf-8")  # always printable
    return invalid


@st.composite
def mutations(draw: st.DrawFn) -> dict[str, Any]:
    """VALID with 1..3 random edits: replace, delete or add a member anywhere."""
    doc = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(_containers(doc)))
        target = _get(doc, where)
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if isinstance(target, dict):
            if op == "add" or not target:
                target[draw(st.text(max_size=8))] = draw(json_values)
            else:
                key = draw(st.sampled_from(sorted(target)))
                if op == "delete":
                    del target[key]
                else:
                    target[key] = draw(json_values)
        elif op == "add" or not target:
            target.insert(draw(st.integers(0, len(target))), draw(json_values))
        else:
            index = draw(st.integers(0, len(target) - 1))
            if op == "delete":
                del target[index]
            else:
                target[index] = draw(json_values)
    return doc
