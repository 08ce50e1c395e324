"""world.json validation: the model and its exact error paths and messages."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from fluxnode.core.world import (
    AssetRef,
    Interactions,
    Move,
    Permissions,
    SetTo,
    Toggle,
    Vec3,
    Visibility,
    WorldManifest,
    action_problem,
    parse_action,
    parse_manifest,
)
from tests.unit.world_action_samples import ACTION_CASES, ACTION_VALID_CHANGES
from tests.unit.world_samples import (
    CASES,
    EXAMPLE,
    MINIMAL,
    OWNER,
    VALID,
    VALID_CHANGES,
    encode,
    errors,
    mutated,
)

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


@pytest.mark.parametrize("change", VALID_CHANGES + ACTION_VALID_CHANGES)
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
    door = next(o for o in m.objects if o.type == "door")
    assert parse_action(door.interactions.on_click) == Toggle("open")  # a real action


def test_actions_keep_their_text_in_the_model() -> None:
    doc = mutated(ACTION_VALID_CHANGES[0])
    door = parse_manifest(encode(doc)).objects[3]
    assert door.interactions == Interactions("toggle:open", "set:open=true", "set:open=false")
    assert parse_action(door.interactions.on_enter) == SetTo("open", True)


def test_a_malformed_action_is_refused_with_its_reason_not_a_crash() -> None:
    # Each of these raised (UnicodeEncodeError, RecursionError) inside the action grammar.
    assert (
        action_problem('set:s="\\ud800"') == "set value must not hold an unpaired UTF-16 surrogate"
    )
    assert (
        action_problem("set:d=" + "[" * 5000) == "action must be at most 128 characters (got 5006)"
    )
    assert action_problem("move") is None
    assert action_problem("a script") is None


# --- invalid manifests: exact paths and messages ------------------------------------------------


ALL_CASES = CASES + ACTION_CASES


@pytest.mark.parametrize(
    ("change", "expected"), [c[1:] for c in ALL_CASES], ids=[c[0] for c in ALL_CASES]
)
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


def test_the_objects_shown_in_the_world_format_doc_are_valid() -> None:
    doc_text = (EXAMPLE.parents[2] / "world-format.md").read_text()
    shown = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", doc_text, re.S)]
    assert len(shown) == 3
    m = parse_manifest(encode(MINIMAL | {"objects": shown}))
    assert [parse_action(o.interactions.on_click) for o in m.objects] == [
        Toggle("open"),
        Move(),
        Toggle("lit"),
    ]
