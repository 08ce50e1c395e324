"""Every configuration key, in one table: the TOML key, its kind and bounds, its default, the
environment variable and flag that set it, and one line of documentation.

The sections these keys fill are the frozen classes of `node/config_sections.py`.
`node/config.py` builds the Config, the commented `config.toml` written by `flux-node init`,
the environment and flag handling and the README's table from this table and nothing else, so a
key's default lives here once. Where a lower layer already defines a default (core's
`WorldLimits`, `HostingPolicy`), the table takes it from there instead of repeating it.

Defaults are written as raw TOML values (what a user would type), so they go through the same
checks as user values and print into the template as they are.
"""

from __future__ import annotations

from fluxnode.core.replication import HostingPolicy, Policy
from fluxnode.core.world import WorldLimits
from fluxnode.node.config_kinds import (
    Boolean,
    Choice,
    FilePath,
    HostPortKind,
    IceServers,
    Integer,
    KeySpec,
    ListOf,
    Number,
    Size,
    Text,
    check_domain,
    check_http_url,
    check_multiaddr,
    check_origin,
    format_size,
)
from fluxnode.node.config_sections import LogLevel
from fluxnode.node.logs import LogFormat

CONFIG_FILE_NAME = "config.toml"
MAX_ADDRS = 64
MAX_DENYLIST_FILES = 64
MAX_RPC_ENDPOINTS = 16
MAX_HOSTING_ENTRIES = 10_000
MAX_TICK_HZ = 30
MAX_CORS_ORIGINS = 64

#: The variable naming the data dir: read before the config file, so it is no config key.
DATA_DIR_ENV = "FLUX_DATA_DIR"
DATA_DIR_FLAG = "--data-dir"
#: Wallet keys that their commands read from the environment (`publish`, `chain deploy`).
#: They are no config keys: the config accepts them, never reads, stores or logs their values.
OWNER_KEY_ENV = "FLUX_OWNER_KEY"
DEPLOY_KEY_ENV = "FLUX_DEPLOY_KEY"
SECRET_ENV = {
    OWNER_KEY_ENV: "the world owner's wallet key for `publish` (instead of `--key-file`)",
    DEPLOY_KEY_ENV: "the deployer's wallet key for `chain deploy` (instead of `--key-file`)",
}


_LISTEN = Text("TCP multiaddr", check=lambda t: check_multiaddr(t, need_peer_id=False))
_PEER = Text(
    "multiaddr ending in `/p2p/<id>`", check=lambda t: check_multiaddr(t, need_peer_id=True)
)
_SIZE = Size(1, 1 << 40)


_HP = HostingPolicy

KEYS: tuple[KeySpec, ...] = (
    KeySpec(
        "identity.key_file",
        FilePath(),
        "identity.key",
        "the node's libp2p Ed25519 key (protobuf), created by `flux-node init` with mode 0600",
        env="FLUX_KEY_FILE",
        flag="--key-file",
        metavar="FILE",
    ),
    KeySpec(
        "network.listen",
        ListOf(_LISTEN, max_items=MAX_ADDRS, min_items=1),
        ["/ip4/0.0.0.0/tcp/4011"],
        "multiaddrs to listen on",
        env="FLUX_LISTEN",
        flag="--listen",
        flag_repeat=True,
        metavar="MULTIADDR",
    ),
    KeySpec(
        "network.bootstrap",
        ListOf(_PEER, max_items=MAX_ADDRS),
        [],
        "peers to dial at start and redial with backoff",
        env="FLUX_BOOTSTRAP",
        flag="--bootstrap",
        flag_repeat=True,
        metavar="MULTIADDR",
    ),
    KeySpec(
        "network.dial_timeout",
        Number(0.1, 300.0),
        10.0,
        "seconds before a dial is abandoned",
        field="dial_timeout_s",
        env="FLUX_DIAL_TIMEOUT",
    ),
    KeySpec(
        "gateway.enabled",
        Boolean(),
        True,
        "serve the HTTP gateway for light clients",
        env="FLUX_GATEWAY_ENABLED",
        flag="--no-gateway",
        flag_const=False,
    ),
    KeySpec(
        "gateway.listen",
        HostPortKind(),
        "127.0.0.1:8011",
        "where the gateway listens (`--gateway` also turns it on)",
        env="FLUX_GATEWAY",
        flag="--gateway",
        flag_also=(("gateway.enabled", True),),
        metavar="HOST:PORT",
    ),
    KeySpec(
        "gateway.cors_origins",
        ListOf(
            Text("origin", check=check_origin), max_items=MAX_CORS_ORIGINS, doc="list of origins"
        ),
        [],
        "browser origins (`https://app.example`, or `*` for any) allowed to call the gateway's "
        "API across origins; empty: no CORS headers",
        env="FLUX_GATEWAY_CORS_ORIGINS",
        example='["https://app.example"]',
    ),
    KeySpec(
        "gateway.ip_rate",
        Number(0.0, 100_000.0),
        20.0,
        "requests a second one client IP may make to the light-client routes (`/api/`, `/w/`, "
        "`/ws`, `/session`; sign-in counts 5); 0: no per-IP limit (behind a proxy that limits "
        "clients itself, where every request comes from the proxy's IP)",
        env="FLUX_GATEWAY_IP_RATE",
    ),
    KeySpec(
        "gateway.ip_burst",
        Number(1.0, 1_000_000.0),
        60.0,
        "requests one client IP may make at once before `gateway.ip_rate` applies",
        env="FLUX_GATEWAY_IP_BURST",
    ),
    KeySpec(
        "log.level",
        Choice(LogLevel),
        "info",
        "log level",
        env="FLUX_LOG_LEVEL",
        flag="--log-level",
    ),
    KeySpec(
        "log.format",
        Choice(LogFormat),
        "text",
        "log lines as text or as one JSON object a line (secrets are redacted in both)",
        env="FLUX_LOG_FORMAT",
        flag="--log-format",
    ),
    KeySpec(
        "storage.max_size",
        Size(0, 1 << 50),
        None,
        "most bytes the block store may hold; adding past it fails before writing "
        "(unset: no limit)",
        field="max_bytes",
        env="FLUX_STORAGE_MAX_SIZE",
        example='"50GiB"',
    ),
    KeySpec(
        "content.denylist",
        ListOf(FilePath(), max_items=MAX_DENYLIST_FILES, doc="list of paths"),
        [],
        "denylists (IPFS compact `.deny`, badbits `//<sha256>`, or one CID a line) of content "
        "this node refuses to store, serve or relay; later files override earlier ones; "
        "relative to the data dir; a malformed file stops the node",
        env="FLUX_DENYLIST",
        example='["denylists/badbits.deny"]',
    ),
    KeySpec(
        "chain.rpc",
        ListOf(Text("http(s) URL", check=check_http_url), max_items=MAX_RPC_ENDPOINTS),
        [],
        "JSON-RPC endpoints, tried in order; empty: no chain, so ticketed and private land "
        "worlds deny",
        env="FLUX_CHAIN_RPC",
        example='["https://rpc-amoy.polygon.technology"]',
    ),
    KeySpec(
        "chain.chain_id",
        Integer(1, 2**53),
        80002,
        "chain every endpoint must report (80002 Polygon Amoy, 137 Polygon PoS)",
        env="FLUX_CHAIN_ID",
    ),
    KeySpec(
        "chain.deployment",
        FilePath(),
        "deployment.json",
        "contract addresses written by `flux-node chain devnet|deploy`",
        env="FLUX_CHAIN_DEPLOYMENT",
    ),
    KeySpec(
        "chain.confirmations",
        Integer(0, 10_000),
        2,
        "only blocks this deep are trusted",
        env="FLUX_CHAIN_CONFIRMATIONS",
    ),
    KeySpec(
        "chain.timeout",
        Number(0.1, 120.0),
        5.0,
        "seconds per RPC request",
        field="timeout_s",
        env="FLUX_CHAIN_TIMEOUT",
    ),
    KeySpec(
        "chain.quorum",
        Integer(1, MAX_RPC_ENDPOINTS),
        1,
        "endpoints that must agree (k of n) on ownership answers",
        env="FLUX_CHAIN_QUORUM",
    ),
    KeySpec(
        "hosting.mode",
        Choice(Policy),
        _HP.mode.value,
        "what this node pins for others: `explicit` (only `worlds`), `follow` (also worlds of "
        "the owners in `follow`), `auto` (also help every world reach `replication` holders)",
        env="FLUX_HOSTING_MODE",
    ),
    KeySpec(
        "hosting.replication",
        Integer(1, 64),
        _HP.replication,
        "holders each world should reach",
        env="FLUX_HOSTING_REPLICATION",
    ),
    KeySpec(
        "hosting.worlds",
        ListOf(Text("world id"), max_items=MAX_HOSTING_ENTRIES, container=frozenset),
        sorted(_HP.worlds),
        'world ids always hosted, e.g. "land:42" or "0xabc.../plaza"',
        env="FLUX_HOSTING_WORLDS",
    ),
    KeySpec(
        "hosting.follow",
        ListOf(Text("address", lower=True), max_items=MAX_HOSTING_ENTRIES, container=frozenset),
        sorted(_HP.follow),
        "owner addresses whose worlds `follow` mode hosts",
        env="FLUX_HOSTING_FOLLOW",
    ),
    KeySpec(
        "hosting.grace",
        Number(0.0, 30 * 86400.0),
        _HP.grace_s,
        "seconds before an over-replicated or old version is released",
        field="grace_s",
        env="FLUX_HOSTING_GRACE",
    ),
    KeySpec(
        "hosting.interval",
        Number(0.2, 3600.0),
        10.0,
        "seconds between hosting rounds (gossip, plan, challenge)",
        field="interval_s",
        env="FLUX_HOSTING_INTERVAL",
    ),
    KeySpec(
        "session.max_visitors",
        Integer(0, 100_000),
        200,
        "visitors this node hosts at once (more are sent to another node hosting the world); "
        "0: no visitors, the node still relays for its instances",
        env="FLUX_SESSION_MAX_VISITORS",
    ),
    KeySpec(
        "session.deny_addresses",
        ListOf(FilePath(), max_items=MAX_DENYLIST_FILES, doc="list of paths"),
        [],
        "address denylists (one 0x address a line, `#` comments) of wallets this node never "
        "lets in; relative to the data dir; a malformed file stops the node",
        env="FLUX_SESSION_DENY_ADDRESSES",
        example='["denylists/addresses.txt"]',
    ),
    KeySpec(
        "session.domain",
        Text("host[:port]", check=check_domain),
        None,
        "the domain visitors' sign-in messages must name (unset: the gateway's HOST:PORT)",
        env="FLUX_SESSION_DOMAIN",
        example='"worlds.example.org"',
    ),
    KeySpec(
        "session.tick_hz",
        Integer(1, MAX_TICK_HZ),
        10,
        "session ticks per second (one batch of transforms per instance and tick)",
        env="FLUX_SESSION_TICK_HZ",
    ),
    KeySpec(
        "session.reports_max",
        Integer(1, 10_000_000),
        10_000,
        "visitor reports kept for the operator (`flux-node reports`); the oldest go first",
        env="FLUX_SESSION_REPORTS_MAX",
    ),
    KeySpec(
        "webrtc.enabled",
        Boolean(),
        True,
        "WebRTC meshes (peer-to-peer transforms, voice); false: all relays through nodes",
        env="FLUX_WEBRTC_ENABLED",
    ),
    KeySpec(
        "webrtc.ice_servers",
        IceServers(),
        [],
        "STUN/TURN servers for WebRTC, tables {urls = [...], username, credential}; empty: "
        "host candidates only (a LAN); no public default is ever used",
        example='[{urls = ["stun:stun.example.org:3478"]}]',
    ),
    KeySpec(
        "webrtc.max_node_channels",
        Integer(0, 100_000),
        200,
        "visitors' clients that may carry their transforms to this node over a WebRTC data "
        "channel at once (one peer connection each; the rest use the WebSocket); 0: none",
        env="FLUX_WEBRTC_MAX_NODE_CHANNELS",
    ),
    KeySpec(
        "world.max_total_size",
        _SIZE,
        format_size(WorldLimits.max_total_bytes),
        "largest world package (`world validate|pack`, `publish`)",
        field="max_total_bytes",
    ),
    KeySpec(
        "world.max_file_size",
        _SIZE,
        format_size(WorldLimits.max_file_bytes),
        "largest file in a world package",
        field="max_file_bytes",
    ),
    KeySpec(
        "world.max_files",
        Integer(1, 1_000_000),
        WorldLimits.max_files,
        "most files and folders in a world package",
    ),
    KeySpec(
        "world.max_manifest_size",
        _SIZE,
        format_size(WorldLimits.max_manifest_bytes),
        "largest `world.json`",
        field="max_manifest_bytes",
    ),
    KeySpec(
        "world.max_objects",
        Integer(1, 1_000_000),
        WorldLimits.max_objects,
        "most objects in `world.json`",
    ),
)

KEYS_BY_NAME: dict[str, KeySpec] = {spec.key: spec for spec in KEYS}
ENV_KEYS: dict[str, KeySpec] = {spec.env: spec for spec in KEYS if spec.env}
