"""The directory message each node gossips on ``flux/instances/1``: its load and its instances.

One msgpack array ``[1, [node, visitors, max_visitors, gateway_url | nil, updated_at],
[summary, ...]]`` where each summary is `InstanceSummary.to_wire()`. Decoding is strict and
bounded like the session frames (`fluxnode.core.session.wire`): the size is checked before
unpacking, msgpack's container limits are the message size, and anything else than exactly
that shape raises `FrameInvalid` naming the field. A node may only speak for itself: every
summary's ``origin`` must be the message's node (a gossip message is signed by its author, so
with that rule nobody can publish loads or instances on another node's behalf).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import msgpack

from fluxnode.core.errors import FrameInvalid
from fluxnode.core.session.instances import MAX_ID_CHARS, InstanceSummary, NodeLoad
from fluxnode.core.session.wire import unpack_strict

TOPIC: Final = "flux/instances/1"
VERSION: Final = 1
#: Summaries in one message: a node is a member of at most this many instances it publishes.
MAX_SUMMARIES: Final = 512
MAX_BYTES: Final = 256 << 10
MAX_URL_CHARS: Final = 512
MAX_VISITORS: Final = 1_000_000


@dataclass(frozen=True)
class DirectoryMessage:
    load: NodeLoad
    summaries: tuple[InstanceSummary, ...]


def encode_directory(message: DirectoryMessage) -> bytes:
    load = message.load
    if len(message.summaries) > MAX_SUMMARIES:
        raise ValueError(f"at most {MAX_SUMMARIES} summaries in one directory message")
    body = [
        VERSION,
        [load.node, load.visitors, load.max_visitors, load.gateway, load.updated_at],
        [s.to_wire() for s in message.summaries],
    ]
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return packed


def _count(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_VISITORS:
        raise FrameInvalid(f"{what} must be an integer in 0..{MAX_VISITORS}")
    return value


def _load(obj: object) -> NodeLoad:
    if not isinstance(obj, list) or len(obj) != 5:
        raise FrameInvalid("node load must be [node, visitors, max_visitors, gateway, updated_at]")
    node, visitors, max_visitors, gateway, updated = obj
    if not isinstance(node, str) or not 1 <= len(node) <= MAX_ID_CHARS:
        raise FrameInvalid(f"node must be a string of 1..{MAX_ID_CHARS} characters")
    if gateway is not None and (
        not isinstance(gateway, str) or not 1 <= len(gateway) <= MAX_URL_CHARS
    ):
        raise FrameInvalid(f"gateway must be nil or a URL of 1..{MAX_URL_CHARS} characters")
    if type(updated) not in (int, float) or not math.isfinite(updated):
        raise FrameInvalid("updated_at must be a finite number")
    assert isinstance(updated, int | float)
    return NodeLoad(
        node,
        _count(visitors, "visitors"),
        _count(max_visitors, "max_visitors"),
        float(updated),
        gateway,
    )


def decode_directory(data: bytes) -> DirectoryMessage:
    """The message in `data`; raises `FrameInvalid` (and nothing else) when it is not one."""
    obj = unpack_strict(data, MAX_BYTES, "directory message", containers=False)
    if not isinstance(obj, list) or len(obj) != 3:
        raise FrameInvalid("directory message must be [version, load, summaries]")
    version, load_obj, summaries_obj = obj
    if type(version) is not int or version != VERSION:
        raise FrameInvalid(f"directory message version must be {VERSION}")
    load = _load(load_obj)
    if not isinstance(summaries_obj, list) or len(summaries_obj) > MAX_SUMMARIES:
        raise FrameInvalid(f"summaries must be a list of at most {MAX_SUMMARIES}")
    summaries = tuple(InstanceSummary.from_wire(s) for s in summaries_obj)
    for summary in summaries:
        if summary.origin != load.node:
            raise FrameInvalid(f"summary of {summary.instance_id} is not from {load.node}")
    return DirectoryMessage(load, summaries)
