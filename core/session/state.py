"""Shared world state: a last-writer-wins register per (object id, property), checked everywhere.

Why not Yjs/pycrdt: they merge any update from anyone and have no key-level permissions
(yjs#549), so they cannot enforce an object's ``canMove``/``owner`` on every replica. The state
here is tiny (a few properties per interactive object), so a register per (object, property)
with hybrid logical clocks (`fluxnode.core.session.hlc`) is all the CRDT it needs.

An operation (`StateOp`) writes one register:

- ``set``: ``prop`` := ``value``, produced by an interaction (``trigger`` = ``onClick`` ...)
  whose manifest action (`fluxnode.core.session.actions`) is ``toggle:<prop>`` (value must be a
  boolean — the author's client computes the flip, so the op is an assignment and merges like
  one) or ``set:<prop>=<json>`` (value must equal that literal). Needs ``canModify``.
- ``move``: ``position`` := ``[x, y, z]`` inside the world box. Needs ``canMove``.
- ``delete``: ``deleted`` := true. Needs ``canDelete``.

When the object has an ``owner``, the author must also be that address. Every replica runs the
same checks (`WorldState.check`) on every op it receives — from its clients, other nodes or a
snapshot — and they depend only on the op and the manifest, never on the current state, so an
op is accepted everywhere or nowhere and replicas converge whatever the delivery order. The one
exception is the clock bound (an op may not be dated more than ``max_drift`` ahead of the
receiver's clock, or it would win every later write): such an op is refused without being
stored, and accepted when it is resent later. The signature (session key bound to ``author`` by
the entry proof) is checked by the injected ``verify(op) -> bool``, last, since it costs most.

Merge: the op with the higher ``(hlc, sha256(signing_bytes))`` wins its register; duplicates
and losers change nothing. Late joiners get `snapshot()` (the winning op of every register,
re-checked by the receiver like any op) and reconnecting clients get `ops_since(seq)`, the ops
this replica applied after the sequence number they last saw (None: too old, take a snapshot).
"""

from __future__ import annotations

import collections
import enum
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from fluxnode.core.errors import OpRejected
from fluxnode.core.session.actions import TRIGGERS, Action, SetTo, Toggle, parse_action
from fluxnode.core.session.geometry import DEFAULT_BOX, WorldBox
from fluxnode.core.session.hlc import Hlc, HlcClock
from fluxnode.core.world import JsonValue, WorldManifest, WorldObject

MAX_DRIFT: Final = 10.0  # seconds an op's clock may run ahead of ours
LOG_LIMIT: Final = 1000  # applied ops kept for reconnecting clients
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")


class OpKind(enum.StrEnum):
    SET = "set"
    MOVE = "move"
    DELETE = "delete"


@dataclass(frozen=True)
class StateOp:
    object_id: str
    kind: OpKind
    prop: str
    value: JsonValue
    trigger: str | None
    hlc: Hlc
    author: str  # the visitor's wallet address, lower-case
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        """What the session key signs: every field but the signature, as canonical JSON."""
        body = [
            "flux-state-op/1",
            self.object_id,
            str(self.kind),
            self.prop,
            self.value,
            self.trigger,
            self.hlc.wall_ms,
            self.hlc.counter,
            self.hlc.actor,
            self.author,
        ]
        try:
            return _canonical(body).encode()
        except (TypeError, ValueError):
            raise OpRejected("op fields must be plain JSON with finite numbers") from None


def _canonical(value: object) -> str:
    return json.dumps(
        value, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False
    )


def _json_equal(a: object, b: object) -> bool:
    """Equal as JSON values. JSON has one number type, and a JavaScript client cannot tell the
    literal ``100.0`` from ``100`` (msgpack then carries it as an int), so 100 == 100.0 here;
    a boolean is never a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _order(op: StateOp) -> tuple[Hlc, bytes]:
    # The signature is hashed too, so even two signings of one body order the same everywhere.
    return op.hlc, hashlib.sha256(op.signing_bytes() + op.signature).digest()


class WorldState:
    """One replica of an instance's world state (sans-IO; `now` in seconds)."""

    def __init__(
        self,
        manifest: WorldManifest,
        verify: Callable[[StateOp], bool],
        *,
        box: WorldBox = DEFAULT_BOX,
        max_drift: float = MAX_DRIFT,
        log_limit: int = LOG_LIMIT,
        actor: str = "replica",
    ) -> None:
        self._verify = verify
        self.box = box
        self.max_drift = max_drift
        self.clock = HlcClock(actor)
        self._objects: dict[str, WorldObject] = {o.id: o for o in manifest.objects}
        self._actions: dict[tuple[str, str], Action] = {}
        for obj in manifest.objects:
            for trigger, text in zip(TRIGGERS, _interaction_values(obj), strict=True):
                try:
                    action = parse_action(text)
                except ValueError:
                    continue  # the manifest validator reports it; a node just ignores it
                if action is not None:
                    self._actions[(obj.id, trigger)] = action
        self._registers: dict[tuple[str, str], StateOp] = {}
        self._log: collections.deque[tuple[int, StateOp]] = collections.deque(maxlen=log_limit)
        self.seq = 0

    # --- reading ------------------------------------------------------------------------------

    def value(self, object_id: str, prop: str) -> JsonValue:
        """The current value: the winning op's, else the manifest's (position as [x, y, z])."""
        op = self._registers.get((object_id, prop))
        if op is not None:
            return op.value
        obj = self._objects.get(object_id)
        if obj is None:
            return None
        if prop == "position":
            return [obj.position.x, obj.position.y, obj.position.z]
        if prop == "deleted":
            return False
        return obj.properties.get(prop)

    def action(self, object_id: str, trigger: str) -> Action | None:
        return self._actions.get((object_id, trigger))

    def snapshot(self) -> list[StateOp]:
        """The winning op of every register, oldest first."""
        return sorted(self._registers.values(), key=_order)

    def ops_since(self, seq: int) -> list[StateOp] | None:
        """Ops applied here after `seq`; None when the log no longer reaches back that far."""
        if seq >= self.seq:
            return []
        if not self._log or self._log[0][0] > seq + 1:
            return None
        return [op for s, op in self._log if s > seq]

    # --- writing ------------------------------------------------------------------------------

    def check(self, op: StateOp, now: float) -> None:
        """Raise `OpRejected` with the reason unless `op` may be applied. Changes nothing."""
        if not isinstance(op.object_id, str) or op.object_id not in self._objects:
            raise OpRejected(f"no object {op.object_id!r} in this world")
        if not isinstance(op.author, str) or not _ADDRESS.fullmatch(op.author):
            raise OpRejected("author must be a lower-case 0x address")
        if not isinstance(op.hlc, Hlc):
            raise OpRejected("op has no clock")
        op.hlc.check()
        if op.hlc.wall_ms > (now + self.max_drift) * 1000:
            raise OpRejected("op is dated in the future; resend it later")
        obj = self._objects[op.object_id]
        perms = obj.permissions
        if op.kind is OpKind.SET:
            self._check_set(op)
            allowed, what = perms.can_modify, "modified"
        elif op.kind is OpKind.MOVE:
            if op.prop != "position" or op.trigger is not None:
                raise OpRejected("a move op writes position and names no trigger")
            if problem := self.box.problem(op.value):
                raise OpRejected(problem)
            allowed, what = perms.can_move, "moved"
        elif op.kind is OpKind.DELETE:
            if op.prop != "deleted" or op.value is not True or op.trigger is not None:
                raise OpRejected("a delete op writes deleted = true and names no trigger")
            allowed, what = perms.can_delete, "deleted"
        else:
            raise OpRejected(f"unknown op kind {op.kind!r}")
        if not allowed:
            raise OpRejected(f"object {op.object_id!r} cannot be {what}")
        if perms.owner is not None and perms.owner.lower() != op.author:
            raise OpRejected(f"object {op.object_id!r} belongs to {perms.owner.lower()}")
        if not isinstance(op.signature, bytes) or not self._verify(op):
            raise OpRejected("bad signature")

    def _check_set(self, op: StateOp) -> None:
        if op.trigger not in TRIGGERS:
            raise OpRejected(f"a set op must name its trigger, one of {', '.join(TRIGGERS)}")
        action = self._actions.get((op.object_id, op.trigger))
        if not isinstance(action, Toggle | SetTo) or action.prop != op.prop:
            raise OpRejected(f"{op.trigger} of {op.object_id!r} does not write {op.prop!r}")
        if isinstance(action, Toggle) and not isinstance(op.value, bool):
            raise OpRejected(f"toggle:{op.prop} writes a boolean")
        if isinstance(action, SetTo) and not _json_equal(op.value, action.value):
            raise OpRejected(f"set:{op.prop} writes {_canonical(action.value)}")

    def receive_op(self, op: StateOp, now: float) -> bool:
        """Check and merge `op`; True if it now holds its register. Raises `OpRejected`."""
        key = (op.object_id, op.prop)
        held = self._registers.get(key)
        if held == op:
            return False  # a duplicate: already checked and applied
        self.check(op, now)
        self.clock.observe(op.hlc)
        if held is not None and _order(held) >= _order(op):
            return False
        self._registers[key] = op
        self.seq += 1
        self._log.append((self.seq, op))
        return True

    def load(self, ops: Iterable[StateOp], now: float) -> list[OpRejected]:
        """Merge a snapshot or a batch; bad ops are skipped and returned, the rest applied."""
        rejected = []
        for op in ops:
            try:
                self.receive_op(op, now)
            except OpRejected as exc:
                rejected.append(exc)
        return rejected

    # --- making ops (the author then signs `signing_bytes()` and sets `signature`) -----------

    def plan_interaction(
        self, object_id: str, trigger: str, author: str, hlc: Hlc
    ) -> StateOp | None:
        """The op a visitor's `trigger` on `object_id` produces now, or None (a script name)."""
        action = self._actions.get((object_id, trigger))
        if isinstance(action, Toggle):
            current = self.value(object_id, action.prop)
            return StateOp(object_id, OpKind.SET, action.prop, current is not True, trigger,
                           hlc, author)  # fmt: skip
        if isinstance(action, SetTo):
            return StateOp(object_id, OpKind.SET, action.prop, action.value, trigger, hlc, author)
        return None


def _interaction_values(obj: WorldObject) -> tuple[str | None, ...]:
    i = obj.interactions
    return (i.on_click, i.on_enter, i.on_leave, i.on_interact)


def move_op(object_id: str, position: Iterable[float], author: str, hlc: Hlc) -> StateOp:
    value: list[JsonValue] = [float(c) for c in position]
    return StateOp(object_id, OpKind.MOVE, "position", value, None, hlc, author)


def delete_op(object_id: str, author: str, hlc: Hlc) -> StateOp:
    return StateOp(object_id, OpKind.DELETE, "deleted", True, None, hlc, author)
