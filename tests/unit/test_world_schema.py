"""core/world.schema.json agrees with the hand-written validator."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from fluxnode.core.world import (
    DEFAULT_LIMITS,
    WorldManifest,
    WorldManifestInvalid,
)
from tests.unit.world_action_samples import (
    ACTION_CASES,
    ACTION_PYTHON_ONLY,
    ACTION_VALID_CHANGES,
    action_edits,
)
from tests.unit.world_samples import (
    CASES,
    EXAMPLE,
    MINIMAL,
    SCHEMA_PATH,
    VALID,
    VALID_CHANGES,
    encode,
    mutated,
    mutations,
    parses_or_is_invalid,
)

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
AGREEMENT_VALID += [mutated(change) for change in VALID_CHANGES + ACTION_VALID_CHANGES]
# Checks only the Python side makes (JSON Schema cannot express them); fuzzing skips these.
PYTHON_ONLY = (
    "duplicate id",
    "nested deeper than",
    "over the",
    "segment longer than",
    "digits",
    *ACTION_PYTHON_ONLY,
)


def _python_only(messages: list[str]) -> bool:
    return all(any(p in m for p in PYTHON_ONLY) for m in messages)


SCHEMA_CASES = [c for c in CASES + ACTION_CASES if not _python_only(c[2])]


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


def _agree(doc: dict[str, Any]) -> None:
    validator = _validator()
    result = parses_or_is_invalid(encode(doc))
    schema_ok = not list(validator.iter_errors(doc))
    if isinstance(result, WorldManifestInvalid):
        if _python_only([e.message for e in result.errors]):
            return
        assert not schema_ok, result.errors
    else:
        assert schema_ok, [e.message for e in validator.iter_errors(doc)]


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(mutations())
def test_schema_and_validator_agree_on_random_mutations(doc: dict[str, Any]) -> None:
    _agree(doc)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(action_edits())
def test_schema_and_validator_agree_on_random_actions(
    edit: Callable[[dict[str, Any]], object],
) -> None:
    _agree(mutated(edit))


def test_the_schema_refuses_each_malformed_action_form() -> None:
    validator = _validator()
    for text in ("set:open", "toggle:", "set:=1", "toggle:9x", "toggle:position", "set:x="):
        doc = mutated(lambda d: None)
        doc["objects"][0]["interactions"]["onClick"] = text
        assert list(validator.iter_errors(doc)) != [], text
