"""World package limits, size formatting and package-relative paths."""

from __future__ import annotations

from typing import Any

import pytest

from fluxnode.core.errors import ConfigError
from fluxnode.core.world import (
    DEFAULT_LIMITS,
    WorldLimits,
    check_relative_path,
    format_size,
    parse_manifest,
)
from tests.unit.world_samples import (
    MINIMAL,
    VALID,
    encode,
    errors,
    mutated,
)

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
