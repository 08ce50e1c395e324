"""Session protocol frames: compact msgpack arrays ``[type, field, ...]`` with strict decoding.

One encoding for clients (over the gateway's WebSocket) and member nodes (over their direct
streams). `decode` refuses, with `FrameInvalid` and nothing else, anything over ``max_frame``
bytes (checked before unpacking), bytes that are not exactly one msgpack value, an unknown type
code, a wrong number of fields, and any field of the wrong type or out of bounds; msgpack's own
container/string limits are set to the frame size so a small frame cannot claim a huge array.

Type codes (the field order is the dataclass field order):

==  =============  ==================================================================
 1  Hello          client -> node: entry proof (SIWE message + signature), session key
 2  Join           client -> node: world id
 3  Joined         node -> client: world, instance, node, seat
 4  Denied         node -> client: reason, e.g. ``denied: no valid ticket for this world``
 5  RedirectTo     node -> client: node id, its addresses, instance (or nil)
10  Transform      either way: position, rotation quaternion, animation state
11  ViewerFrame    node -> client: seq, base (nil: full snapshot), changed, removed, info
12  Ack            client -> node: last frame seq applied
13  Resync         client -> node: "I lost my base, send a full snapshot"
20  StateOp        a signed world-state operation
30  ChatMessage    a signed chat line
40  Heartbeat / 41 Leave
50..54  seat messages between member nodes (claim, ack, nack, release, handover)
==  =============  ==================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple
from typing import Any, Final

import msgpack

from fluxnode.core.errors import FrameInvalid
from fluxnode.core.session import wire_rtc
from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.frames import (
    Ack,
    Batch,
    Challenge,
    Denied,
    Error,
    Frame,
    Heartbeat,
    Hello,
    InstanceOps,
    Join,
    Joined,
    Leave,
    MemberJoin,
    RedirectTo,
    Report,
    Resync,
    SignedIn,
    StateSnapshot,
    StateSync,
    VisitorIn,
    VisitorOut,
)
from fluxnode.core.session.hlc import Hlc
from fluxnode.core.session.presence import Transform, ViewerFrame
from fluxnode.core.session.seat_messages import (
    ClaimKey,
    HandedSeat,
    Handover,
    SeatAck,
    SeatClaim,
    SeatNack,
    SeatRelease,
)
from fluxnode.core.session.state import OpKind, StateOp
from fluxnode.core.session.wire_fields import (
    MAX_FRAME,
    MAX_TEXT,
    _b,
    _i,
    _json,
    _list,
    _opt_s,
    _s,
    _vec,
)
from fluxnode.core.world import JsonValue

__all__ = ["MAX_FRAME", "MAX_OPS", "decode", "encode", "unpack_strict"]

#: Ops in one snapshot or batch: a world has at most a few hundred interactive registers.
MAX_OPS: Final = 512
MAX_WEARABLES: Final = 16


def _transform(v: object) -> Transform:
    f = _list(v, "transform", 3)
    if len(f) != 3:
        raise FrameInvalid("transform must be [position, rotation, anim]")
    pos, rot = _vec(f[0], "position", 3), _vec(f[1], "rotation", 4)
    return Transform(pos, rot, _s(f[2], "anim", 32))  # type: ignore[arg-type]


def _enc_transform(t: Transform) -> list[object]:
    return [list(t.position), list(t.rotation), t.anim]


def _key(v: object) -> ClaimKey:
    f = _list(v, "claim key", 3)
    if len(f) != 3:
        raise FrameInvalid("claim key must be [time_ms, node, seq]")
    return ClaimKey(_i(f[0], "time_ms"), _s(f[1], "node"), _i(f[2], "seq"))


def _op(f: list[Any]) -> StateOp:
    try:
        kind = OpKind(_s(f[1], "kind", 16))
    except ValueError:
        raise FrameInvalid(f"unknown op kind {f[1]!r}") from None
    hlc = Hlc(_i(f[5], "wall_ms"), _i(f[6], "counter", 0, (1 << 32) - 1), _s(f[7], "actor"))
    return StateOp(_s(f[0], "object_id"), kind, _s(f[2], "prop"), _json(f[3], "value"),
                   _opt_s(f[4], "trigger"), hlc, _s(f[8], "author"),
                   _b(f[9], "signature", 128))  # fmt: skip


def _chat(f: list[Any]) -> ChatMessage:
    return ChatMessage(_s(f[0], "instance"), _s(f[1], "author"), _s(f[2], "text", MAX_TEXT),
                       _i(f[3], "sent_ms"), _b(f[4], "signature", 128))  # fmt: skip


def _ops(v: object) -> tuple[StateOp, ...]:
    items = _list(v, "ops", MAX_OPS)
    out = []
    for item in items:
        fields = _list(item, "op", 10)
        if len(fields) != 10:
            raise FrameInvalid("op must have 10 fields")
        out.append(_op(fields))
    return tuple(out)


def _chats(v: object) -> tuple[ChatMessage, ...]:
    out = []
    for item in _list(v, "chat", 50):
        fields = _list(item, "chat message", 5)
        if len(fields) != 5:
            raise FrameInvalid("chat message must have 5 fields")
        out.append(_chat(fields))
    return tuple(out)


def _transforms(v: object) -> dict[str, Transform]:
    if not isinstance(v, dict) or len(v) > 100:
        raise FrameInvalid("transforms must be a map of at most 100 visitors")
    return {_s(k, "visitor"): _transform(t) for k, t in v.items()}


def _info(v: object) -> dict[str, JsonValue]:
    if not isinstance(v, dict):
        raise FrameInvalid("info must be a map")
    out = _json(v, "info", 3)
    assert isinstance(out, dict)
    return out


def _frame(f: list[Any]) -> ViewerFrame:
    changed_in = f[2]
    if not isinstance(changed_in, dict) or len(changed_in) > 100:
        raise FrameInvalid("changed must be a map of at most 100 visitors")
    changed = {
        _s(k, "visitor"): None if t is None else _transform(t) for k, t in changed_in.items()
    }
    info_in = f[4]
    if not isinstance(info_in, dict) or len(info_in) > 100:
        raise FrameInvalid("info must be a map of at most 100 visitors")
    info = {_s(k, "visitor"): _json(x, "info", 3) for k, x in info_in.items()}
    if not all(isinstance(x, dict) for x in info.values()):
        raise FrameInvalid("info entries must be maps")
    base = None if f[1] is None else _i(f[1], "base")
    removed = tuple(_s(x, "visitor") for x in _list(f[3], "removed", 100))
    return ViewerFrame(_i(f[0], "seq"), base, changed, removed, info)  # type: ignore[arg-type]


_DECODERS: dict[int, tuple[int, Callable[[list[Any]], Frame]]] = {
    1: (4, lambda f: Hello(_s(f[0], "proof", 4096), _b(f[1], "proof_signature", 8192),
                           _b(f[2], "session_key", 64), _b(f[3], "possession_signature", 128))),
    2: (3, lambda f: Join(_s(f[0], "world_id"), _opt_s(f[1], "avatar"),
                          tuple(_i(w, "wearable", 0, (1 << 63) - 1)
                                for w in _list(f[2], "wearables", MAX_WEARABLES)))),
    3: (5, lambda f: Joined(_s(f[0], "world_id"), _s(f[1], "instance_id"), _s(f[2], "node"),
                            _i(f[3], "seat", 0, 99), _transform(f[4]))),
    4: (1, lambda f: Denied(_s(f[0], "reason", 512))),
    5: (3, lambda f: RedirectTo(_s(f[0], "node"),
                                tuple(_s(a, "address", 512) for a in _list(f[1], "addresses", 8)),
                                _opt_s(f[2], "instance_id"))),
    10: (1, lambda f: _transform(f[0])),
    11: (5, _frame),
    12: (1, lambda f: Ack(_i(f[0], "seq"))),
    13: (0, lambda f: Resync()),
    20: (10, _op),
    6: (6, lambda f: Challenge(_s(f[0], "node"), _s(f[1], "domain", 256),
                               _i(f[2], "chain_id", 1), _s(f[3], "uri", 512), _s(f[4], "nonce"),
                               _b(f[5], "challenge", 64))),
    7: (3, lambda f: SignedIn(_s(f[0], "visitor"), _s(f[1], "address"), _i(f[2], "expires_ms"))),
    8: (2, lambda f: Error(_s(f[0], "code", 64), _s(f[1], "message", MAX_TEXT))),
    9: (3, lambda f: Report(_s(f[0], "world_id"), _opt_s(f[1], "subject"),
                            _s(f[2], "reason", MAX_TEXT))),
    14: (3, lambda f: StateSnapshot(_s(f[0], "instance"), _ops(f[1]), _chats(f[2]))),
    30: (5, _chat),
    40: (0, lambda f: Heartbeat()),
    41: (0, lambda f: Leave()),
    50: (4, lambda f: SeatClaim(_s(f[0], "instance"), _i(f[1], "slot", 0, 99), _key(f[2]),
                                _s(f[3], "visitor"))),
    51: (5, lambda f: SeatAck(_s(f[0], "instance"), _i(f[1], "slot", 0, 99), _key(f[2]),
                              _s(f[3], "sender"),
                              tuple(_s(m, "member") for m in _list(f[4], "members", 100)))),
    52: (4, lambda f: SeatNack(_s(f[0], "instance"), _i(f[1], "slot", 0, 99), _key(f[2]),
                               _s(f[3], "sender"))),
    53: (3, lambda f: SeatRelease(_s(f[0], "instance"), _i(f[1], "slot", 0, 99), _key(f[2]))),
    54: (4, lambda f: Handover(_s(f[0], "instance"), _s(f[1], "sender"), _opt_s(f[2], "successor"),
                               tuple(_handed(h) for h in _list(f[3], "seats", 100)))),
    60: (3, lambda f: MemberJoin(_s(f[0], "world_id"), _s(f[1], "instance"),
                                 _i(f[2], "capacity", 1, 100))),
    61: (6, lambda f: VisitorIn(_s(f[0], "instance"), _s(f[1], "visitor"), _s(f[2], "proof", 4096),
                                _b(f[3], "proof_signature", 8192), _info(f[4]),
                                _transform(f[5]))),
    62: (2, lambda f: VisitorOut(_s(f[0], "instance"), _s(f[1], "visitor"))),
    63: (3, lambda f: Batch(_s(f[0], "instance"), _i(f[1], "tick"), _transforms(f[2]))),
    64: (2, lambda f: InstanceOps(_s(f[0], "instance"), _ops(f[1]))),
    65: (3, lambda f: StateSync(_s(f[0], "instance"), _ops(f[1]), _chats(f[2]))),
}  # fmt: skip


_DECODERS.update(wire_rtc.DECODERS)


def _handed(v: object) -> HandedSeat:
    f = _list(v, "seat", 3)
    if len(f) != 3:
        raise FrameInvalid("handed seat must be [slot, key, visitor]")
    return HandedSeat(_i(f[0], "slot", 0, 99), _key(f[1]), _s(f[2], "visitor"))


_CODES: dict[type, int] = {
    Hello: 1, Join: 2, Joined: 3, Denied: 4, RedirectTo: 5, Challenge: 6, SignedIn: 7,
    Error: 8, Report: 9, Transform: 10, ViewerFrame: 11, Ack: 12, Resync: 13, StateSnapshot: 14,
    StateOp: 20, ChatMessage: 30, Heartbeat: 40, Leave: 41,
    SeatClaim: 50, SeatAck: 51, SeatNack: 52, SeatRelease: 53, Handover: 54,
    MemberJoin: 60, VisitorIn: 61, VisitorOut: 62, Batch: 63, InstanceOps: 64, StateSync: 65,
}  # fmt: skip
_CODES.update(wire_rtc.CODES)


def _enc_op(op: StateOp) -> list[object]:
    h = op.hlc
    return [op.object_id, str(op.kind), op.prop, op.value, op.trigger,
            h.wall_ms, h.counter, h.actor, op.author, op.signature]  # fmt: skip


def _fields(frame: Frame) -> list[object]:
    if isinstance(frame, Transform):
        return [_enc_transform(frame)]
    if isinstance(frame, ViewerFrame):
        changed = {k: None if t is None else _enc_transform(t) for k, t in frame.changed.items()}
        return [frame.seq, frame.base, changed, list(frame.removed), dict(frame.info)]
    if isinstance(frame, StateOp):
        return _enc_op(frame)
    if isinstance(frame, StateSnapshot | StateSync):
        return [frame.instance, [_enc_op(o) for o in frame.ops],
                [list(astuple(m)) for m in frame.chat]]  # fmt: skip
    if isinstance(frame, InstanceOps):
        return [frame.instance, [_enc_op(o) for o in frame.ops]]
    if isinstance(frame, VisitorIn):
        return [frame.instance, frame.visitor, frame.proof, frame.proof_signature,
                dict(frame.info), _enc_transform(frame.transform)]  # fmt: skip
    if isinstance(frame, Batch):
        return [frame.instance, frame.tick,
                {k: _enc_transform(t) for k, t in frame.transforms.items()}]  # fmt: skip
    if isinstance(frame, Joined):
        return [frame.world_id, frame.instance_id, frame.node, frame.seat,
                _enc_transform(frame.spawn)]  # fmt: skip
    if isinstance(frame, Join):
        return [frame.world_id, frame.avatar, list(frame.wearables)]
    if isinstance(frame, RedirectTo):
        return [frame.node, list(frame.addresses), frame.instance_id]
    if isinstance(frame, SeatAck):
        return [frame.instance, frame.slot, astuple(frame.key), frame.sender, list(frame.members)]
    if isinstance(frame, SeatClaim | SeatNack | SeatRelease):
        values = [getattr(frame, n) for n in frame.__dataclass_fields__]
        return [astuple(v) if isinstance(v, ClaimKey) else v for v in values]
    if isinstance(frame, Handover):
        seats = [[h.slot, astuple(h.key), h.visitor] for h in frame.seats]
        return [frame.instance, frame.sender, frame.successor, seats]
    return list(astuple(frame))


def encode(frame: Frame) -> bytes:
    packed: bytes = msgpack.packb([_CODES[type(frame)], *_fields(frame)], use_bin_type=True)
    return packed


def unpack_strict(
    data: bytes | bytearray | memoryview, limit: int, what: str, *, containers: bool = True
) -> Any:
    """Exactly one msgpack value from at most `limit` bytes, or `FrameInvalid` naming `what`
    (and nothing else): the size is checked before unpacking, msgpack's own length limits are
    the byte limit (so a small input cannot claim a huge array), and there are no ext types.
    `containers=False` also refuses binary strings and maps (a directory message has none)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FrameInvalid(f"{what} must be bytes")
    if len(data) > limit:
        raise FrameInvalid(f"{what} is {len(data)} bytes, over the {limit}-byte limit")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_str_len=limit,
            max_bin_len=limit if containers else 0,
            max_array_len=limit,
            max_map_len=limit if containers else 0,
            max_ext_len=0,  # no ext types at all: nothing here uses them
        )
    except Exception as exc:  # msgpack raises many unrelated types: translate them all here
        raise FrameInvalid(f"{what} is not one msgpack value: {type(exc).__name__}") from None


def decode(data: bytes, max_frame: int = MAX_FRAME) -> Frame:
    """The frame in `data`; raises `FrameInvalid` (and nothing else) when it is not one."""
    obj = unpack_strict(data, max_frame, "frame")
    if not isinstance(obj, list) or not obj or type(obj[0]) is not int:
        raise FrameInvalid("frame must be an array starting with its type code")
    code, fields = obj[0], obj[1:]
    if code not in _DECODERS:
        raise FrameInvalid(f"unknown frame type {code}")
    arity, build = _DECODERS[code]
    if len(fields) != arity:
        raise FrameInvalid(f"frame type {code} has {arity} fields, not {len(fields)}")
    return build(fields)
