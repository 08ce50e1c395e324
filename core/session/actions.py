"""The declarative action set of a manifest's `interactions`, as the session state uses it.

The grammar lives in `fluxnode.core.world.actions` so that the manifest validator, which must
refuse malformed actions, and the session state, which turns actions into operations, share one
grammar without `core.world` importing `core.session`. Which actions need which permission is
decided in `fluxnode.core.session.state`.
"""

from fluxnode.core.world.actions import (
    MAX_LITERAL_BYTES,
    MAX_LITERAL_DEPTH,
    RESERVED_PROPS,
    TRIGGERS,
    Action,
    Move,
    SetTo,
    Toggle,
    action_problem,
    check_literal,
    parse_action,
    property_problems,
)

__all__ = [
    "MAX_LITERAL_BYTES",
    "MAX_LITERAL_DEPTH",
    "RESERVED_PROPS",
    "TRIGGERS",
    "Action",
    "Move",
    "SetTo",
    "Toggle",
    "action_problem",
    "check_literal",
    "parse_action",
    "property_problems",
]
