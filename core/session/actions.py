"""The declarative action set that a manifest's `interactions` may name (data, never code).

An interaction value (``onClick``, ``onEnter``, ``onLeave``, ``onInteract``; at most 128
characters) is one of:

- ``toggle:<prop>`` — flip the boolean property ``<prop>`` (a missing property counts as false);
- ``set:<prop>=<json>`` — set ``<prop>`` to the JSON literal after ``=`` (compact JSON, at most
  `MAX_LITERAL_BYTES` bytes, nested at most 4 levels, no NaN/Infinity);
- ``move`` — the visitor may drag the object: it produces ``move`` operations (needs canMove).

``<prop>`` is 1..64 characters of ``[A-Za-z_][A-Za-z0-9_]*`` and must not be reserved: ``model``
and ``src`` name package assets, ``position`` and ``deleted`` are written only by ``move`` and
``delete`` operations. Any other interaction value is the name of a world script, which runs
only in viewers — never on a node — so nodes produce no operation for it (`parse_action` gives
None). `action_problem` explains why a value that looks like an action (it starts with
``toggle:``, ``set:`` or is ``move``) is malformed, so the manifest validator can report it.

Which actions need which permission is decided in `fluxnode.core.session.state`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Final, TypeAlias

from fluxnode.core.world import JsonValue

MAX_LITERAL_BYTES: Final = 100  # fits in the 128-character interaction value with its prefix
MAX_LITERAL_DEPTH: Final = 4
RESERVED_PROPS: Final = frozenset({"model", "src", "position", "deleted"})
TRIGGERS: Final = ("onClick", "onEnter", "onLeave", "onInteract")
_PROP = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


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


def check_literal(value: object) -> str | None:
    """Why `value` cannot be a property value set by an action, or None if it can."""
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
        return f"property name {prop!r} must be 1..64 of [A-Za-z0-9_], not starting with a digit"
    if prop in RESERVED_PROPS:
        return f"property {prop!r} is reserved"
    return None


def action_problem(text: str) -> str | None:
    """Why `text` is a malformed action, or None (a well-formed action, or a script name)."""
    if text == "move" or not text.startswith(("toggle:", "set:")):
        return None
    if text.startswith("toggle:"):
        return _prop_problem(text[len("toggle:") :])
    prop, eq, literal = text[len("set:") :].partition("=")
    if not eq:
        return "set action must read set:<prop>=<json>"
    if problem := _prop_problem(prop):
        return problem
    try:
        value = json.loads(literal, parse_constant=_reject_constant)
    except ValueError:
        return f"set value {literal!r} is not valid JSON"
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
    if text == "move":
        return Move()
    if text.startswith("toggle:"):
        return Toggle(text[len("toggle:") :])
    if text.startswith("set:"):
        prop, _, literal = text[len("set:") :].partition("=")
        value: JsonValue = json.loads(literal)
        return SetTo(prop, value)
    return None
