"""The `[webrtc]` configuration keys (kept apart from `config_keys`, which merges them in).

WebRTC carries transforms and voice straight between visitors, and transforms between a
visitor's client and this node (`fluxnode.node.session_rtc`); what the node itself holds open
is bounded here.
"""

from __future__ import annotations

from dataclasses import dataclass

from fluxnode.node.config_kinds import Integer, KeySpec
from fluxnode.node.session_rtc import DEFAULT_MAX_CHANNELS


@dataclass(frozen=True)
class WebrtcSection:
    #: Peer connections this node holds to its visitors' clients at once; 0 = none.
    max_node_channels: int


WEBRTC_KEYS: tuple[KeySpec, ...] = (
    KeySpec(
        "webrtc.max_node_channels",
        Integer(0, 100_000),
        DEFAULT_MAX_CHANNELS,
        "visitors' clients that may carry their transforms to this node over a WebRTC data "
        "channel at once (one peer connection each; the rest use the WebSocket); 0: none",
        env="FLUX_WEBRTC_MAX_NODE_CHANNELS",
    ),
)
