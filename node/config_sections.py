"""The frozen sections a Config is made of, one class per TOML table; their fields are filled
from the key table in `node/config_keys.py` (a key `gateway.listen` fills `GatewaySection.
listen`, or the field its spec names)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from fluxnode.core.replication import HostingPolicy, Policy
from fluxnode.core.session.frames import IceServer
from fluxnode.core.world import WorldLimits
from fluxnode.node.config_kinds import HostPort
from fluxnode.node.logs import LogFormat


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class IdentitySection:
    key_file: Path


@dataclass(frozen=True)
class NetworkSection:
    listen: tuple[str, ...]
    bootstrap: tuple[str, ...]
    dial_timeout_s: float


@dataclass(frozen=True)
class GatewaySection:
    enabled: bool
    listen: HostPort
    #: Origins whose pages may call the gateway's API from a browser; empty = no CORS headers.
    cors_origins: tuple[str, ...]
    #: Token bucket per client IP on the light-client routes; rate 0 = no per-IP limit.
    ip_rate: float
    ip_burst: float

    @property
    def url(self) -> str | None:
        return f"http://{self.listen}" if self.enabled else None


@dataclass(frozen=True)
class LogSection:
    level: LogLevel
    format: LogFormat


@dataclass(frozen=True)
class StorageSection:
    #: Block store quota in bytes; None means unlimited.
    max_bytes: int | None


@dataclass(frozen=True)
class ContentSection:
    #: Denylist files (compact `.deny` format, see core/denylist.py), in override order.
    denylist: tuple[Path, ...]


@dataclass(frozen=True)
class ChainSection:
    #: Empty = no chain configured: ticketed and private land worlds deny.
    rpc: tuple[str, ...]
    chain_id: int
    deployment: Path
    confirmations: int
    timeout_s: float
    quorum: int


@dataclass(frozen=True)
class HostingSection:
    mode: Policy
    replication: int
    worlds: frozenset[str]
    follow: frozenset[str]
    grace_s: float
    interval_s: float

    @property
    def policy(self) -> HostingPolicy:
        return HostingPolicy(
            self.mode,
            replication=self.replication,
            worlds=self.worlds,
            follow=self.follow,
            grace_s=self.grace_s,
        )


@dataclass(frozen=True)
class SessionSection:
    """Live sessions on this node: who may visit through it and how fast it ticks."""

    #: Visitors this node hosts at once; 0 = none (it still relays for its instances).
    max_visitors: int
    #: Address denylist files (one 0x address a line, `#` comments), see
    #: `fluxnode.node.denylist_files.load_address_denylist`.
    deny_addresses: tuple[Path, ...]
    #: The SIWE domain visitors sign for; None = the gateway's HOST:PORT as bound
    #: (`fluxnode.node.session_setup.session_domain`).
    domain: str | None
    tick_hz: int
    #: Visitor reports kept (the oldest are dropped beyond it).
    reports_max: int


@dataclass(frozen=True)
class WebrtcSection:
    """WebRTC meshes and voice between visitors (docs/session-protocol.md)."""

    enabled: bool
    ice_servers: tuple[IceServer, ...]  # empty: host candidates only
    #: Peer connections this node holds to its visitors' clients at once; 0 = none.
    max_node_channels: int


#: Section name -> the frozen class its keys build (WorldLimits is core's own).
SECTIONS: dict[str, type] = {
    "identity": IdentitySection,
    "network": NetworkSection,
    "gateway": GatewaySection,
    "log": LogSection,
    "storage": StorageSection,
    "content": ContentSection,
    "chain": ChainSection,
    "hosting": HostingSection,
    "session": SessionSection,
    "webrtc": WebrtcSection,
    "world": WorldLimits,
}
