"""world.json validation: the model, exact error paths, limits, fuzzing, and schema agreement."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxnode.core.errors import ConfigError, RemoteError
from fluxnode.core.world import (
    DEFAULT_LIMITS,
    AssetRef,
    Interactions,
    ManifestError,
    Permissions,
    Vec3,
    Visibility,
    WorldLimits,
    WorldManifest,
    WorldManifestInvalid,
    check_relative_path,
    format_size,
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


# --- valid manifests -------------------------------------------------------------------------


def test_full_manifest_builds_the_model() -> None:
    m = parse_manifest(encode(VALID))
    assert m.name == "Plaza"
    assert m.description == "A square.\nWith fountains."
    assert m.tags == ("social", "music")
    assert m.settings.max_players == 50
    assert m.settings.visibility is Visibility.TICKETED
    assert m.settings.spawn_point == Vec3(1.0, 2.5, -3.0)
    assert m.settings.skybox == "sky/night.hdr"
    assert m.settings.physics == {"gravity": -9.81, "layers": [1, 2]}
    fountain, screen, _floor = m.objects
    assert fountain.rotation == Vec3(0, 90, 0)
    assert fountain.scale == Vec3(2, 2, 2)
    assert fountain.properties == {"model": "models/fountain.glb", "loop": True}
    assert type(fountain.properties) is dict
    assert fountain.interactions == Interactions(on_click="splash")
    assert fountain.permissions == Permissions(can_modify=True, owner=OWNER)
    assert screen.properties == {"src": "media/intro.webm"}
    assert m.scripts == ("scripts/main.js", "scripts/fountain.js")


def test_defaults_of_a_minimal_manifest() -> None:
    m = parse_manifest(encode(MINIMAL | {"objects": [{"id": "a", "type": "cube"}]}))
    assert (m.description, m.thumbnail, m.tags, m.scripts) == ("", None, (), ())
    assert m.settings.spawn_point == Vec3(0, 0, 0)
    assert (m.settings.skybox, m.settings.lighting, m.settings.physics) == (None, None, None)
    (obj,) = m.objects
    assert (obj.position, obj.rotation, obj.scale) == (Vec3(0, 0, 0), Vec3(0, 0, 0), Vec3(1, 1, 1))
    assert obj.properties == {}
    assert obj.interactions == Interactions()
    assert obj.permissions == Permissions(False, False, False, None)
    assert m.asset_paths() == []


def test_asset_references_name_their_json_paths() -> None:
    m = parse_manifest(encode(VALID))
    assert m.asset_references() == [
        AssetRef("thumbnail", "thumb.png"),
        AssetRef("settings.skybox", "sky/night.hdr"),
        AssetRef("scripts[0]", "scripts/main.js"),
        AssetRef("scripts[1]", "scripts/fountain.js"),
        AssetRef("objects[0].properties.model", "models/fountain.glb"),
        AssetRef("objects[1].properties.src", "media/intro.webm"),
    ]
    assert m.asset_paths() == [
        "media/intro.webm",
        "models/fountain.glb",
        "scripts/fountain.js",
        "scripts/main.js",
        "sky/night.hdr",
        "thumb.png",
    ]


def test_asset_paths_are_deduplicated_and_a_skybox_preset_is_no_asset() -> None:
    doc = mutated(lambda d: d["settings"].update(skybox="sunset"))
    doc["objects"][1]["properties"]["src"] = "thumb.png"
    m = parse_manifest(encode(doc))
    assert m.settings.skybox == "sunset"
    assert "sunset" not in m.asset_paths()
    assert m.asset_paths().count("thumb.png") == 1


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


@pytest.mark.parametrize("change", VALID_CHANGES)
def test_valid_variants(change: Callable[[dict[str, Any]], object]) -> None:
    assert isinstance(parse_manifest(encode(mutated(change))), WorldManifest)


def test_integral_float_max_players_becomes_an_int() -> None:
    m = parse_manifest(encode(mutated(lambda d: d["settings"].update(maxPlayers=8.0))))
    assert m.settings.max_players == 8
    assert type(m.settings.max_players) is int


def test_the_example_package_manifest_is_valid() -> None:
    m = parse_manifest(EXAMPLE.read_bytes())
    assert m.name == "Hello World"
    assert m.asset_paths() == ["scripts/door.js", "thumbnail.png"]


# --- invalid manifests: exact paths and messages ------------------------------------------------

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


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_manifest_names_the_path(
    change: Callable[[dict[str, Any]], object], expected: list[str]
) -> None:
    assert errors(mutated(change)) == expected


def test_every_error_is_reported_not_just_the_first() -> None:
    doc = mutated(lambda d: d.update(name="", tags=[1], bogus=True))
    doc["settings"]["maxPlayers"] = 500
    doc["objects"][0]["scale"]["z"] = -1
    doc["objects"][2]["type"] = ""
    doc["scripts"].append("../x.js")
    assert errors(doc) == [
        "bogus: unknown key",
        "name: must not be empty",
        "tags[0]: must be a string, not a number",
        "settings.maxPlayers: must be between 1 and 100",
        "objects[0].scale.z: must be > 0",
        "objects[2].type: must not be empty",
        "scripts[2]: asset path \"../x.js\" must not contain '..' (it would leave the package)",
    ]


def test_root_must_be_an_object() -> None:
    assert errors([1, 2]) == ["$: must be an object, not an array"]
    assert errors("world") == ["$: must be an object, not a string"]


# --- raw bytes: rejected before or while parsing ---------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "$: is not valid JSON: Expecting value (line 1 column 1)"),
        (b'{"name": "x",}', "$: is not valid JSON: "),
        (b"{} {}", "$: is not valid JSON: Extra data (line 1 column 4)"),
        (b'{"name": "caf\xe9"}', "$: is not valid UTF-8 (bad byte at offset 13)"),
        (b"\xef\xbb\xbf{}", "$: starts with a byte order mark; save it as UTF-8 without BOM"),
        (b"[" * 33 + b"]" * 33, "$: JSON is nested deeper than 32 levels"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "$: JSON is nested deeper than 32 levels"),
    ],
)
def test_bytes_that_are_not_a_json_document(raw: bytes, expected: str) -> None:
    (only,) = errors(raw)
    assert only.startswith(expected)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    doc = MINIMAL | {"description": '[[[[{{{{"\\' * 40}
    assert parse_manifest(encode(doc)).description == doc["description"]


def test_oversize_manifest_is_rejected_before_parsing() -> None:
    limits = WorldLimits(max_manifest_bytes=100)
    raw = b"[" * 101  # invalid JSON and too deep: the size check comes first
    assert errors(raw, limits) == ["$: manifest is 101 bytes, over the 100-byte limit"]
    assert errors(b" " * (1 << 20) + b"{}") == [
        "$: manifest is 1,048,578 bytes, over the 1,048,576-byte limit"
    ]
    assert errors(b" " * (3 << 20)) == ["$: manifest is 3 MiB, over the 1 MiB limit"]
    assert parse_manifest(encode(MINIMAL) + b" " * (100 - len(encode(MINIMAL))), limits)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"name": NaN}', "name: NaN is not allowed (JSON numbers must be finite)"),
        (b'{"name": Infinity}', "name: Infinity is not allowed (JSON numbers must be finite)"),
        (b'{"name": -Infinity}', "name: -Infinity is not allowed (JSON numbers must be finite)"),
        (b'{"name": 1e999}', "name: number is out of range"),
        (b'{"name": -1e400}', "name: number is out of range"),
        (b'{"name": ' + b"9" * 301 + b"}", "name: integer has more than 300 digits"),
        (b'{"name": "\\ud800"}', "name: string holds an unpaired UTF-16 surrogate escape"),
        (b'{"\\udfff": 1}', '$["\\udfff"]: key holds an unpaired UTF-16 surrogate escape'),
    ],
)
def test_values_json_must_not_carry_are_reported_at_their_path(raw: bytes, expected: str) -> None:
    found = errors(raw)
    assert found[0] == expected
    # The value is reported once; nothing else complains about the same path.
    assert not any(e.startswith(expected.split(": ")[0] + ": ") for e in found[1:])


def test_non_finite_numbers_deep_inside_the_document() -> None:
    raw = encode(VALID).replace(b'"z": 2}', b'"z": NaN}', 1).replace(b"-9.81", b"1e400")
    assert errors(raw) == [
        "settings.physics.gravity: number is out of range",
        "objects[0].scale.z: NaN is not allowed (JSON numbers must be finite)",
    ]


def test_duplicate_keys_are_rejected_at_any_level() -> None:
    raw = encode(VALID).replace(b'"maxPlayers": 50', b'"maxPlayers": 50, "maxPlayers": 60')
    raw = raw.replace(b'"loop": true', b'"loop": true, "loop": false')
    raw = raw.replace(b'{"name": "Plaza"', b'{"name": "Plaza", "name": "Plaza"')
    assert errors(raw) == [
        "name: duplicate key",
        "settings.maxPlayers: duplicate key",
        "objects[0].properties.loop: duplicate key",
    ]


def test_error_message_lists_every_error_and_is_a_remote_error() -> None:
    with pytest.raises(WorldManifestInvalid) as info:
        parse_manifest(encode(mutated(lambda d: d.update(name="", zzz=1))))
    exc = info.value
    assert isinstance(exc, RemoteError)
    assert exc.code == "world_invalid"
    assert exc.errors == [
        ManifestError("zzz", "unknown key"),
        ManifestError("name", "must not be empty"),
    ]
    assert str(exc) == (
        "world.json is invalid (2 errors):\n  zzz: unknown key\n  name: must not be empty"
    )


def test_long_error_lists_are_cut_in_the_message_but_kept_whole() -> None:
    doc = MINIMAL | {"objects": [{"id": "x", "type": "cube"}] * 60}
    with pytest.raises(WorldManifestInvalid) as info:
        parse_manifest(encode(doc))
    assert len(info.value.errors) == 59
    lines = str(info.value).splitlines()
    assert lines[0] == "world.json is invalid (59 errors):"
    assert len(lines) == 52
    assert lines[-1] == "  ... and 9 more"


# --- limits ----------------------------------------------------------------------------------


def test_object_and_script_limits_are_configurable() -> None:
    limits = WorldLimits(max_objects=2, max_scripts=1)
    assert errors(VALID, limits) == [
        "objects: must have at most 2 objects (got 3)",
        "scripts: must have at most 1 scripts (got 2)",
    ]
    doc = MINIMAL | {"objects": [{"id": str(i), "type": "cube"} for i in range(2000)]}
    assert len(parse_manifest(encode(doc)).objects) == 2000
    doc["objects"].append({"id": "one-more", "type": "cube"})
    assert errors(doc) == ["objects: must have at most 2000 objects (got 2001)"]


def test_free_form_objects_are_bounded_in_depth_and_size() -> None:
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(8):  # properties itself is level 1: 9 levels in all
        inner["a"] = {}
        inner = inner["a"]
    doc = mutated(lambda d: d["objects"][2].update(properties=deep))
    assert errors(doc) == ["objects[2].properties: is nested deeper than 8 levels"]
    doc["objects"][2]["properties"] = deep["a"]
    assert parse_manifest(encode(doc))
    big = {"blob": "x" * (16 << 10)}
    doc = mutated(lambda d: d["settings"].update(lighting=big))
    assert errors(doc) == [
        "settings.lighting: is 16,395 bytes, over the 16,384-byte limit as compact JSON"
    ]
    doc["settings"]["lighting"] = {"blob": "x" * ((16 << 10) - 11)}  # {"blob":""} is 11 bytes
    assert parse_manifest(encode(doc))


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"max_files": 0}, "max_files"),
        ({"max_total_bytes": -5}, "max_total_bytes"),
        ({"max_objects": True}, "max_objects"),
        ({"max_file_bytes": 1.5}, "max_file_bytes"),
        ({"max_json_depth": 10}, "max_json_depth"),  # must leave room for properties depth + 3
        ({"max_json_depth": 500}, "max_json_depth"),
    ],
)
def test_nonsense_limits_are_a_config_error(kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        WorldLimits(**kwargs)
    assert info.value.key == key


def test_default_limits() -> None:
    expected = WorldLimits(
        max_manifest_bytes=1 << 20,
        max_objects=2000,
        max_scripts=64,
        max_properties_bytes=16 << 10,
        max_properties_depth=8,
        max_json_depth=32,
        max_files=1000,
        max_file_bytes=16 << 20,
        max_total_bytes=32 << 20,
    )
    assert expected == DEFAULT_LIMITS


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 bytes"), (1, "1 byte"), (1023, "1023 bytes"), (1024, "1 KiB"), (3 << 19, "1.5 MiB")],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


# --- relative paths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["a.png", "models/tree.glb", "a/b/c/d.e.f", "My Model (2).glb", "ünï/ço.de", ".hidden", "a..b"],
)
def test_relative_paths_accepted(path: str) -> None:
    assert check_relative_path(path) is None


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "must not be empty"),
        ("/abs.png", "must be relative to the package folder, not absolute"),
        ("//server/share", "must be relative to the package folder, not absolute"),
        ("../up.png", "must not contain '..' (it would leave the package)"),
        ("a/../../b", "must not contain '..' (it would leave the package)"),
        ("a/..", "must not contain '..' (it would leave the package)"),
        ("./a", "must not contain '.' segments"),
        ("a/./b", "must not contain '.' segments"),
        ("a//b", "must not contain empty segments ('//' or a trailing '/')"),
        ("a/", "must not contain empty segments ('//' or a trailing '/')"),
        ("a\\b", "must use / as the separator, not \\"),
        ("..\\..\\x", "must use / as the separator, not \\"),
        ("C:/x", "must be relative to the package folder, not a drive path"),
        ("c:x", "must be relative to the package folder, not a drive path"),
        ("ab:c", 'must not contain any of : * ? " < > |'),
        ("a:b", "must be relative to the package folder, not a drive path"),
        ("what?.png", 'must not contain any of : * ? " < > |'),
        ("a\x00b", "must not contain control characters (such as NUL or newline)"),
        ("a\nb", "must not contain control characters (such as NUL or newline)"),
        ("file:///etc/passwd", "must be a relative path inside the package, not a URL"),
        ("a" * 256, "must be at most 255 characters (got 256)"),
        ("é" * 128, "has a segment longer than 255 bytes"),
        ("\udc80.png", "must be valid Unicode (it holds an unpaired surrogate)"),
    ],
)
def test_relative_paths_rejected(path: str, message: str) -> None:
    assert check_relative_path(path) == message


# --- fuzzing ---------------------------------------------------------------------------------

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


@given(st.binary(max_size=512))
def test_random_bytes_only_ever_raise_world_manifest_invalid(raw: bytes) -> None:
    parses_or_is_invalid(raw)


@given(st.one_of(json_values, st.dictionaries(st.sampled_from(sorted(VALID)), json_values)))
def test_random_json_only_ever_raises_world_manifest_invalid(doc: object) -> None:
    parses_or_is_invalid(json.dumps(doc).encode())


@given(st.sampled_from([b"NaN", b"Infinity", b"1e400", b"[", b"}", b'"\\ud800"', b",", b"\xff"]))
def test_spliced_garbage_only_ever_raises_world_manifest_invalid(junk: bytes) -> None:
    raw = encode(VALID)
    for at in range(0, len(raw), 37):
        parses_or_is_invalid(raw[:at] + junk + raw[at:])


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


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_mutations_of_a_valid_manifest_are_valid_or_invalid_never_a_crash(doc: object) -> None:
    result = parses_or_is_invalid(encode(doc))
    if isinstance(result, WorldManifest):
        for path in result.asset_paths():
            assert check_relative_path(path) is None


def test_adversarial_inputs_stay_fast() -> None:
    started = time.monotonic()
    for raw in [
        b"[" * (1 << 20),
        b'"\\' * (1 << 19),
        b'"' * (1 << 20),
        b"[" + b'"\\"' * (1 << 18),
        b"[" + b"1," * ((1 << 19) - 2) + b"1]",
        b'{"a": 1, ' + b'"b": NaN, ' * 90_000 + b'"c": 2}',
    ]:
        parses_or_is_invalid(raw[: 1 << 20])
    assert time.monotonic() - started < 20


# --- the JSON Schema ---------------------------------------------------------------------------


def _schema() -> Any:
    return json.loads(SCHEMA_PATH.read_text())


def test_schema_states_the_same_bounds_as_the_code() -> None:
    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    props = schema["properties"]
    assert props["objects"]["maxItems"] == DEFAULT_LIMITS.max_objects
    assert props["scripts"]["maxItems"] == DEFAULT_LIMITS.max_scripts
    assert props["tags"]["maxItems"] == 20
    assert props["name"]["maxLength"] == 100
    assert props["description"]["maxLength"] == 2000
    max_players = schema["$defs"]["settings"]["properties"]["maxPlayers"]
    assert (max_players["minimum"], max_players["maximum"]) == (1, 100)


def test_schema_is_shipped_as_package_data() -> None:
    shipped = resources.files("fluxnode.core").joinpath("world.schema.json")
    assert shipped.is_file()
    assert json.loads(shipped.read_text()) == _schema()


AGREEMENT_VALID = [VALID, MINIMAL, json.loads(EXAMPLE.read_text())]
AGREEMENT_VALID += [mutated(change) for change in VALID_CHANGES]
# Unique object ids cannot be expressed in JSON Schema.
SCHEMA_CASES = [c for c in CASES if not any("duplicate id" in e for e in c[2])]


def _python_valid(doc: object) -> bool:
    return isinstance(parses_or_is_invalid(encode(doc)), WorldManifest)


def _validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(_schema())
    return jsonschema.Draft202012Validator(_schema())


@pytest.mark.parametrize("doc", AGREEMENT_VALID)
def test_schema_accepts_what_the_validator_accepts(doc: dict[str, Any]) -> None:
    validator = _validator()
    assert _python_valid(doc)
    assert list(validator.iter_errors(doc)) == []


@pytest.mark.parametrize("change", [c[1] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES])
def test_schema_rejects_what_the_validator_rejects(
    change: Callable[[dict[str, Any]], object],
) -> None:
    validator = _validator()
    doc = mutated(change)
    assert not _python_valid(doc)
    assert list(validator.iter_errors(doc)) != []


# Checks only the Python side makes (JSON Schema cannot express them); fuzzing skips these.
PYTHON_ONLY = ("duplicate id", "nested deeper than", "over the", "segment longer than", "digits")


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(mutations())
def test_schema_and_validator_agree_on_random_mutations(doc: dict[str, Any]) -> None:
    validator = _validator()
    result = parses_or_is_invalid(encode(doc))
    schema_ok = not list(validator.iter_errors(doc))
    if isinstance(result, WorldManifestInvalid):
        if all(any(p in e.message for p in PYTHON_ONLY) for e in result.errors):
            return
        assert not schema_ok, result.errors
    else:
        assert schema_ok, [e.message for e in validator.iter_errors(doc)]
