"""The declarative action set that a manifest's `interactions` may name (data, never code).

An interaction value (``onClick``, ``onEnter``, ``onLeave``, ``onInteract``; at most
`ACTION_MAX_CHARS` characters) is one of:

- ``toggle:<prop>`` — flip the boolean property ``<prop>`` (a missing property counts as false);
- ``set:<prop>=<json>`` — set ``<prop>`` to the JSON literal after ``=`` (at most
  `MAX_LITERAL_BYTES` bytes as compact UTF-8 JSON, nested at most `MAX_LITERAL_DEPTH` levels, no
  NaN/Infinity, no duplicate keys, no unpaired surrogate escapes);
- ``move`` — the visitor may drag the object: it produces ``move`` operations (needs canMove).

``<prop>`` is 1..64 characters of ``[A-Za-z_][A-Za-z0-9_]*`` and must not be reserved: ``model``
and ``src`` name package assets (a replica cannot check that a runtime value is one),
``position`` and ``deleted`` are written only by ``move`` and ``delete`` operations. Any other
interaction value is the name of a world script, which runs only in viewers — never on a node —
so nodes produce no operation for it (`parse_action` gives None). `action_problem` explains why a
value that looks like an action (it starts with ``toggle:`` or ``set:``) is malformed.

What an object can hold (`property_problems`): a toggled property holds a boolean, so its initial
value in ``properties``, if declared, and every ``set:`` of it on the same object must be
booleans; a toggle would otherwise flip a string into ``true`` and two triggers would fight over
its type. Permissions are not required here: an action on an object without ``canModify`` /
``canMove`` is valid data that every replica refuses (a locked door), see
`fluxnode.core.session.state`.

Pure parsing (stdlib only) so that both the manifest validator (`fluxnode.core.world.check`) and
the session state (`fluxnode.core.session`, which re-exports these names) use one grammar.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

from fluxnode.core.world.limits import ACTION_MAX_CHARS
from fluxnode.core.world.model import ASSET_PROPERTIES, JsonValue
from fluxnode.core.world.paths import SURROGATE

MAX_LITERAL_BYTES: Final = 100  # fits in the 128-character interaction value with its prefix
MAX_LITERAL_DEPTH: Final = 4
PROP_MAX_CHARS: Final = 64
RESERVED_PROPS: Final = frozenset({*ASSET_PROPERTIES, "position", "deleted"})
TRIGGERS: Final = ("onClick", "onEnter", "onLeave", "onInteract")
TOGGLE: Final = "toggle:"
SET: Final = "set:"
MOVE: Final = "move"
_PROP = re.compile(rf"[A-Za-z_][A-Za-z0-9_]{{0,{PROP_MAX_CHARS - 1}}}")


@dataclass(frozen=True)
class Toggle:
    prop: str


@dataclass(frozen=True)
class SetTo:
    prop: str
    value: JsonValue


@dataclass(frozen=True)
class Move:
    pass


Action: TypeAlias = Toggle | SetTo | Move


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _parse_literal(literal: str) -> tuple[JsonValue, list[str]]:
    """The literal's value and its duplicate keys; raises ValueError for invalid JSON."""
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, JsonValue]]) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    value: JsonValue = json.loads(literal, parse_constant=_reject_constant, object_pairs_hook=pairs)
    return value, duplicates


def _has_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return SURROGATE.search(value) is not None
    if isinstance(value, list):
        return any(map(_has_surrogate, value))
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    return False


def check_literal(value: object) -> str | None:
    """Why `value` cannot be a property value set by an action, or None if it can."""
    if _has_surrogate(value):
        return "must not hold an unpaired UTF-16 surrogate"
    try:
        encoded = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError):
        return "must be plain JSON with finite numbers"
    if len(encoded.encode()) > MAX_LITERAL_BYTES:
        return f"must be at most {MAX_LITERAL_BYTES} bytes of JSON"
    if _depth(value) > MAX_LITERAL_DEPTH:
        return f"must nest at most {MAX_LITERAL_DEPTH} levels"
    return None


def _prop_problem(prop: str) -> str | None:
    if not _PROP.fullmatch(prop):
        return (
            f"property name {prop!r} must be 1..{PROP_MAX_CHARS} of [A-Za-z0-9_], "
            "not starting with a digit"
        )
    if prop in RESERVED_PROPS:
        return f"property {prop!r} is reserved"
    return None


def action_problem(text: str) -> str | None:
    """Why `text` is a malformed action, or None (a well-formed action, or a script name)."""
    if not text.startswith((TOGGLE, SET)):
        return None
    if len(text) > ACTION_MAX_CHARS:  # also keeps json.loads far from the recursion limit
        return f"action must be at most {ACTION_MAX_CHARS} characters (got {len(text)})"
    if text.startswith(TOGGLE):
        return _prop_problem(text[len(TOGGLE) :])
    prop, eq, literal = text[len(SET) :].partition("=")
    if not eq:
        return "set action must read set:<prop>=<json>"
    if problem := _prop_problem(prop):
        return problem
    try:
        value, duplicates = _parse_literal(literal)
    except ValueError:
        return f"set value {literal!r} is not valid JSON"
    if duplicates:
        return f"set value has a duplicate key {json.dumps(duplicates[0])}"
    if isinstance(value, float) and not math.isfinite(value):
        return "set value must be a finite number"
    if problem := check_literal(value):
        return f"set value {problem}"
    return None


def parse_action(text: str | None) -> Action | None:
    """The action an interaction value names, or None for a script name (or no interaction).

    Raises ValueError (with `action_problem`'s reason) for a malformed action."""
    if text is None:
        return None
    if problem := action_problem(text):
        raise ValueError(problem)
    if text == MOVE:
        return Move()
    if text.startswith(TOGGLE):
        return Toggle(text[len(TOGGLE) :])
    if text.startswith(SET):
        prop, _, literal = text[len(SET) :].partition("=")
        value: JsonValue = json.loads(literal)
        return SetTo(prop, value)
    return None


def _kind(value: JsonValue) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def property_problems(
    actions: Mapping[str, Action], properties: Mapping[str, JsonValue]
) -> dict[str, str]:
    """Why an object's actions (by trigger) write values its properties cannot hold, by trigger.

    A toggled property holds a boolean: its declared initial value and every ``set:`` of it must
    be booleans."""
    toggled = {a.prop: t for t, a in actions.items() if isinstance(a, Toggle)}
    problems = {}
    for trigger, action in actions.items():
        if isinstance(action, Toggle) and action.prop in properties:
            initial = properties[action.prop]
            if not isinstance(initial, bool):
                problems[trigger] = (
                    f"properties.{action.prop} is {_kind(initial)}, "
                    "but a toggled property holds a boolean"
                )
        elif (
            isinstance(action, SetTo)
            and action.prop in toggled
            and not isinstance(action.value, bool)
        ):
            problems[trigger] = (
                f"set:{action.prop} writes {_kind(action.value)}, but a toggled property "
                f"holds a boolean ({toggled[action.prop]} toggles it)"
            )
    return problems
