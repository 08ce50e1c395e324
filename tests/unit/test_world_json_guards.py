"""world.json bytes rejected before or while parsing: encoding, depth, numbers, duplicate keys."""

from __future__ import annotations

import pytest

from fluxnode.core.errors import RemoteError
from fluxnode.core.world import (
    ManifestError,
    WorldLimits,
    WorldManifestInvalid,
    parse_manifest,
)
from tests.unit.world_samples import (
    MINIMAL,
    VALID,
    encode,
    errors,
    mutated,
)

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
