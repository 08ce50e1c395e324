"""Interaction actions in world.json: valid variants, malformed ones with their exact errors, and
a strategy for action-like strings, shared by the manifest and schema tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from tests.unit.world_samples import json_values


def _add(
    interactions: dict[str, Any], properties: dict[str, Any] | None = None
) -> Callable[[dict[str, Any]], object]:
    """Append objects[3], a door with these interactions (and properties)."""
    obj: dict[str, Any] = {"id": "door", "type": "door", "interactions": interactions}
    if properties is not None:
        obj["properties"] = properties
    return lambda d: d["objects"].append(obj)


def _click(action: str) -> Callable[[dict[str, Any]], object]:
    return _add({"onClick": action})


ACTION_VALID_CHANGES: list[Callable[[dict[str, Any]], object]] = [
    _add({"onClick": "toggle:open", "onEnter": "set:open=true", "onLeave": "set:open=false"}),
    _add({"onClick": "toggle:open"}, {"open": True}),
    _add({"onClick": "move", "onInteract": 'set:color="red"'}),
    _click('set:_x9=[1,{"a":null,"b":[true,"é"]}]'),
    _click("set:n= -1.5e3 "),  # JSON allows whitespace around the literal
    _click("toggle:" + "a" * 64),
    _click('set:s="' + "a" * 98 + '"'),  # 100 bytes of JSON: the bound itself
    _click("set:d=[[[[1]]]]"),  # 4 levels: the bound itself
    _click("toggle:modelX"),  # only the exact reserved names are reserved
    _click('set:color="red"'),  # set: of a property nothing toggles may write any type
    _add({"onClick": "toggle:lit", "onEnter": "set:lit=true"}, {"lit": False}),
    # Not actions, so script names: the grammar is case-sensitive and needs the colon.
    _click("Toggle:open"),
    _click("toggle"),
    _click("set"),
    _click("move:north"),
    _click("door.toggle"),
]

_PROP_RULE = "must be 1..64 of [A-Za-z0-9_], not starting with a digit"
_PATH = "objects[3].interactions"

ACTION_CASES: list[tuple[str, Callable[[dict[str, Any]], object], list[str]]] = [
    (
        "set without =",
        _click("set:open"),
        [f"{_PATH}.onClick: set action must read set:<prop>=<json>"],
    ),
    (
        "toggle without a property",
        _click("toggle:"),
        [f"{_PATH}.onClick: property name '' {_PROP_RULE}"],
    ),
    (
        "set without a property",
        _click("set:=1"),
        [f"{_PATH}.onClick: property name '' {_PROP_RULE}"],
    ),
    (
        "property starting with a digit",
        _click("toggle:9lives"),
        [f"{_PATH}.onClick: property name '9lives' {_PROP_RULE}"],
    ),
    (
        "property with a dash",
        _add({"onEnter": "set:a-b=1"}),
        [f"{_PATH}.onEnter: property name 'a-b' {_PROP_RULE}"],
    ),
    (
        "property too long",
        _click("toggle:" + "a" * 65),
        [f"{_PATH}.onClick: property name '{'a' * 65}' {_PROP_RULE}"],
    ),
    (
        "reserved properties",
        _add(
            {
                "onClick": "toggle:position",
                "onEnter": 'set:model="m.glb"',
                "onLeave": "toggle:deleted",
                "onInteract": 'set:src="a"',
            }
        ),
        [
            f"{_PATH}.onClick: property 'position' is reserved",
            f"{_PATH}.onEnter: property 'model' is reserved",
            f"{_PATH}.onLeave: property 'deleted' is reserved",
            f"{_PATH}.onInteract: property 'src' is reserved",
        ],
    ),
    (
        "set value that is not JSON",
        _click("set:x={bad json"),
        [f"{_PATH}.onClick: set value '{{bad json' is not valid JSON"],
    ),
    ("set value empty", _click("set:x="), [f"{_PATH}.onClick: set value '' is not valid JSON"]),
    ("set value NaN", _click("set:x=NaN"), [f"{_PATH}.onClick: set value 'NaN' is not valid JSON"]),
    (
        "set value overflowing a float",
        _click("set:x=1e999"),
        [f"{_PATH}.onClick: set value must be a finite number"],
    ),
    (
        "set value over the byte bound",
        _click('set:s="' + "a" * 99 + '"'),
        [f"{_PATH}.onClick: set value must be at most 100 bytes of JSON"],
    ),
    (
        "set value over the byte bound once re-encoded as UTF-8",
        _click('set:s="' + "é" * 50 + '"'),
        [f"{_PATH}.onClick: set value must be at most 100 bytes of JSON"],
    ),
    (
        "set value nested too deeply",
        _click("set:d=[[[[[1]]]]]"),
        [f"{_PATH}.onClick: set value must nest at most 4 levels"],
    ),
    (
        "set value with a duplicate key",
        _click('set:o={"a":1,"a":2}'),
        [f'{_PATH}.onClick: set value has a duplicate key "a"'],
    ),
    (
        "set value with an unpaired surrogate escape",
        _click('set:s="\\ud800"'),
        [f"{_PATH}.onClick: set value must not hold an unpaired UTF-16 surrogate"],
    ),
    (
        "toggle of a property declared as a string",
        _add({"onClick": "toggle:open"}, {"open": "no"}),
        [f"{_PATH}.onClick: properties.open is a string, but a toggled property holds a boolean"],
    ),
    (
        "set of a toggled property to a non-boolean",
        _add({"onClick": "toggle:open", "onEnter": "set:open=1"}),
        [
            f"{_PATH}.onEnter: set:open writes a number, but a toggled property holds a boolean "
            "(onClick toggles it)"
        ],
    ),
    (
        "malformed actions are reported on every object and trigger",
        lambda d: d["objects"][0]["interactions"].update(onClick="toggle:", onLeave="set:x"),
        [
            "objects[0].interactions.onClick: property name '' " + _PROP_RULE,
            "objects[0].interactions.onLeave: set action must read set:<prop>=<json>",
        ],
    ),
]

# Checks of the set: literal and of toggled properties that JSON Schema cannot express.
ACTION_PYTHON_ONLY = ("set value", "a toggled property")

# --- a strategy for action-like strings ---

_HEADS = st.sampled_from(["toggle:", "set:", "move", "Toggle:", "toggle", "set", "", "sets:"])
_PROPS = st.sampled_from(
    ["open", "lit", "model", "src", "position", "deleted", "modelX", "_a", "9x", "", "a-b", "é"]
) | st.text(alphabet="aZ09_=:-", max_size=6)
_TAILS = (
    st.sampled_from(
        ["", "=", "=1", "=true", '="red"', "={", "=NaN", "=[[[[[1]]]]]", '={"a":1,"a":2}']
    )
    | json_values.map(lambda v: "=" + json.dumps(v))
    | st.text(max_size=6)
)
action_texts = st.builds(lambda h, p, t: h + p + t, _HEADS, _PROPS, _TAILS) | st.text(max_size=8)


@st.composite
def action_edits(draw: st.DrawFn) -> Callable[[dict[str, Any]], object]:
    """An edit that sets 1..4 triggers of one object to action-like strings, and maybe declares
    one of the properties they name."""
    index = draw(st.integers(0, 2))
    triggers = draw(st.lists(st.sampled_from(["onClick", "onEnter", "onLeave", "onInteract"])))
    texts = {t: draw(action_texts) for t in triggers}
    declared = draw(st.none() | st.tuples(_PROPS, json_values))

    def edit(doc: dict[str, Any]) -> None:
        obj = doc["objects"][index]
        obj.setdefault("interactions", {}).update(texts)
        if declared is not None:
            obj.setdefault("properties", {})[declared[0]] = declared[1]

    return edit
