"""The node's one frozen configuration object.

Sources, lowest to highest precedence: built-in defaults < `DATA_DIR/config.toml` < `FLUX_*`
environment variables < command-line flags. Every value is validated here, before anything is
written; an error names the key, the bad value and where it came from (file path, variable or
flag), and the CLI turns it into exit code 2.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import multiaddr
import platformdirs

from fluxnode.core.errors import ConfigError
from fluxnode.core.paths import parse_size

CONFIG_FILE_NAME = "config.toml"
DEFAULT_KEY_FILE_NAME = "identity.key"
DEFAULT_LISTEN = ("/ip4/0.0.0.0/tcp/4011",)
DEFAULT_GATEWAY = "127.0.0.1:8011"
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_CONFIG_BYTES = 1 << 20
MAX_ADDRS = 64
MAX_DENYLIST_FILES = 64

#: TOML schema: table -> allowed keys. Anything else is an error (typos must not pass silently).
TOML_KEYS: dict[str, frozenset[str]] = {
    "identity": frozenset({"key_file"}),
    "network": frozenset({"listen", "bootstrap", "dial_timeout"}),
    "gateway": frozenset({"enabled", "listen"}),
    "log": frozenset({"level"}),
    "storage": frozenset({"max_size"}),
    "content": frozenset({"denylist"}),
    "chain": frozenset({"rpc", "chain_id", "deployment", "confirmations", "timeout", "quorum"}),
    "hosting": frozenset({"mode", "replication", "worlds", "follow", "grace", "interval"}),
    "world": frozenset(
        {"max_total_size", "max_file_size", "max_files", "max_manifest_size", "max_objects"}
    ),
}

#: `[world]` keys -> (WorldLimits field, whether the value is a size like "32MiB").
WORLD_LIMIT_KEYS: dict[str, tuple[str, bool]] = {
    "max_total_size": ("max_total_bytes", True),
    "max_file_size": ("max_file_bytes", True),
    "max_files": ("max_files", False),
    "max_manifest_size": ("max_manifest_bytes", True),
    "max_objects": ("max_objects", False),
}

#: Environment variables and the dotted key each sets.
ENV_KEYS: dict[str, str] = {
    "FLUX_DATA_DIR": "data_dir",
    "FLUX_KEY_FILE": "identity.key_file",
    "FLUX_LISTEN": "network.listen",
    "FLUX_BOOTSTRAP": "network.bootstrap",
    "FLUX_DIAL_TIMEOUT": "network.dial_timeout",
    "FLUX_GATEWAY": "gateway.listen",
    "FLUX_GATEWAY_ENABLED": "gateway.enabled",
    "FLUX_LOG_LEVEL": "log.level",
    "FLUX_STORAGE_MAX_SIZE": "storage.max_size",
    "FLUX_DENYLIST": "content.denylist",
    "FLUX_CHAIN_RPC": "chain.rpc",
    "FLUX_CHAIN_ID": "chain.chain_id",
    "FLUX_CHAIN_DEPLOYMENT": "chain.deployment",
    "FLUX_CHAIN_CONFIRMATIONS": "chain.confirmations",
    "FLUX_HOSTING_MODE": "hosting.mode",
    "FLUX_HOSTING_REPLICATION": "hosting.replication",
    "FLUX_HOSTING_INTERVAL": "hosting.interval",
}


@dataclass(frozen=True)
class Config:
    data_dir: Path
    key_file: Path
    key_file_is_default: bool
    listen: tuple[str, ...] = DEFAULT_LISTEN
    bootstrap: tuple[str, ...] = ()
    dial_timeout_s: float = 10.0
    gateway_enabled: bool = True
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8011
    log_level: str = "info"
    #: Block store quota in bytes; None means unlimited.
    storage_max_bytes: int | None = None
    #: Denylist files (compact `.deny` format, see core/denylist.py), in override order.
    denylist_files: tuple[Path, ...] = ()
    #: Overrides of core.world.WorldLimits fields (field name -> value).
    world_limits: Mapping[str, int] = field(default_factory=dict)
    #: Polygon access. Empty `chain_rpc` = no chain: ticketed/private land worlds deny.
    chain_rpc: tuple[str, ...] = ()
    chain_id: int = 80002
    chain_deployment: Path | None = None
    chain_confirmations: int = 2
    chain_timeout_s: float = 5.0
    chain_quorum: int = 1
    #: What this node pins for the network: "explicit", "follow" or "auto" (see README).
    hosting_mode: str = "explicit"
    hosting_replication: int = 2
    hosting_worlds: tuple[str, ...] = ()
    hosting_follow: tuple[str, ...] = ()
    hosting_grace_s: float = 600.0
    hosting_interval_s: float = 10.0
    #: Where each non-default value came from, for error messages and `flux-node config`.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def config_file(self) -> Path:
        return self.data_dir / CONFIG_FILE_NAME

    @property
    def gateway_url(self) -> str | None:
        if not self.gateway_enabled:
            return None
        host = f"[{self.gateway_host}]" if ":" in self.gateway_host else self.gateway_host
        return f"http://{host}:{self.gateway_port}"


@dataclass(frozen=True)
class CliOverrides:
    """Values given as flags; None/empty means "not given"."""

    data_dir: str | None = None
    key_file: str | None = None
    listen: tuple[str, ...] = ()
    bootstrap: tuple[str, ...] = ()
    gateway: str | None = None
    no_gateway: bool = False
    log_level: str | None = None


def default_data_dir(env: Mapping[str, str]) -> Path:
    if env.get("FLUX_DATA_DIR"):
        return Path(env["FLUX_DATA_DIR"]).expanduser()
    return Path(platformdirs.user_data_dir("flux-node", appauthor=False))


def load_config(cli: CliOverrides, env: Mapping[str, str] | None = None) -> Config:
    """Build the Config from file, environment and flags. Reads only; never writes."""
    env = os.environ if env is None else env
    unknown = sorted(k for k in env if k.startswith("FLUX_") and k not in ENV_KEYS)
    if unknown:
        raise ConfigError(
            unknown[0], f"unknown environment variable; known: {', '.join(ENV_KEYS)}", "environment"
        )

    data_dir = Path(cli.data_dir).expanduser() if cli.data_dir else default_data_dir(env)
    raw: dict[str, tuple[Any, str]] = {}  # dotted key -> (value, source)

    path = data_dir / CONFIG_FILE_NAME
    for key, value in _read_toml(path).items():
        raw[key] = (value, str(path))
    for var, key in ENV_KEYS.items():
        if key != "data_dir" and env.get(var) is not None:
            raw[key] = (_env_value(key, env[var]), f"environment variable {var}")
    flag_values: dict[str, tuple[Any, str]] = {}
    if cli.key_file is not None:
        flag_values["identity.key_file"] = (cli.key_file, "flag --key-file")
    if cli.listen:
        flag_values["network.listen"] = (list(cli.listen), "flag --listen")
    if cli.bootstrap:
        flag_values["network.bootstrap"] = (list(cli.bootstrap), "flag --bootstrap")
    if cli.gateway is not None:
        flag_values["gateway.listen"] = (cli.gateway, "flag --gateway")
        flag_values["gateway.enabled"] = (True, "flag --gateway")
    if cli.no_gateway:
        flag_values["gateway.enabled"] = (False, "flag --no-gateway")
    if cli.log_level is not None:
        flag_values["log.level"] = (cli.log_level, "flag --log-level")
    raw.update(flag_values)
    return _build(data_dir, raw)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError("config", f"cannot read config file: {exc.strerror}", str(path)) from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError("config", f"file larger than {MAX_CONFIG_BYTES} bytes", str(path))
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("config", f"not valid TOML: {exc}", str(path)) from exc
    flat: dict[str, Any] = {}
    for table, body in doc.items():
        if table not in TOML_KEYS:
            raise ConfigError(table, f"unknown section; known: {', '.join(TOML_KEYS)}", str(path))
        if not isinstance(body, dict):
            raise ConfigError(table, "must be a table ([section])", str(path))
        for key, value in body.items():
            if key not in TOML_KEYS[table]:
                raise ConfigError(f"{table}.{key}", "unknown key", str(path))
            flat[f"{table}.{key}"] = value
    return flat


def _env_value(key: str, text: str) -> Any:
    if key in ("network.listen", "network.bootstrap", "chain.rpc", "content.denylist"):
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _build(data_dir: Path, raw: dict[str, tuple[Any, str]]) -> Config:
    sources = {k: src for k, (_, src) in raw.items()}

    def get(key: str, default: Any) -> tuple[Any, str]:
        return raw.get(key, (default, "default"))

    key_file_value, src = get("identity.key_file", None)
    if key_file_value is None:
        key_file, is_default = data_dir / DEFAULT_KEY_FILE_NAME, True
    else:
        if not isinstance(key_file_value, str) or not key_file_value:
            raise ConfigError("identity.key_file", "must be a non-empty path", src)
        key_file, is_default = data_dir / Path(key_file_value).expanduser(), False

    listen_value, src = get("network.listen", list(DEFAULT_LISTEN))
    listen = _multiaddrs("network.listen", listen_value, src, need_peer_id=False)
    if not listen:
        raise ConfigError("network.listen", "at least one listen address is required", src)
    boot_value, src = get("network.bootstrap", [])
    bootstrap = _multiaddrs("network.bootstrap", boot_value, src, need_peer_id=True)

    timeout_value, src = get("network.dial_timeout", 10.0)
    dial_timeout = _number("network.dial_timeout", timeout_value, src, 0.1, 300.0)

    enabled_value, src = get("gateway.enabled", True)
    gateway_enabled = _boolean("gateway.enabled", enabled_value, src)
    gw_value, src = get("gateway.listen", DEFAULT_GATEWAY)
    gateway_host, gateway_port = parse_host_port("gateway.listen", gw_value, src)

    level_value, src = get("log.level", "info")
    if not isinstance(level_value, str) or level_value.lower() not in LOG_LEVELS:
        raise ConfigError(
            "log.level", f"must be one of {', '.join(LOG_LEVELS)}; got {level_value!r}", src
        )

    size_value, src = get("storage.max_size", None)
    max_bytes = None
    if size_value is not None:
        try:
            max_bytes = parse_size(size_value)
        except ValueError as exc:
            raise ConfigError("storage.max_size", f'{exc} (e.g. "50GiB")', src) from None

    deny_value, src = get("content.denylist", [])
    if not isinstance(deny_value, list) or not all(
        isinstance(p, str) and p and "\0" not in p for p in deny_value
    ):
        raise ConfigError("content.denylist", "must be a list of non-empty file paths", src)
    if len(deny_value) > MAX_DENYLIST_FILES:
        raise ConfigError("content.denylist", f"at most {MAX_DENYLIST_FILES} files", src)
    denylist_files = tuple(data_dir / Path(p).expanduser() for p in deny_value)

    rpc_value, src = get("chain.rpc", [])
    if not isinstance(rpc_value, list) or not all(isinstance(u, str) for u in rpc_value):
        raise ConfigError("chain.rpc", "must be a list of http(s):// URLs", src)
    for url in rpc_value:
        if not url.startswith(("http://", "https://")) or len(url) > 2000:
            raise ConfigError("chain.rpc", f"not an http(s) URL: {url[:80]!r}", src)
    if len(rpc_value) > 16:
        raise ConfigError("chain.rpc", "at most 16 endpoints", src)
    chain_id_value, src = get("chain.chain_id", 80002)
    chain_id = int(_number("chain.chain_id", chain_id_value, src, 1, 2**53))
    if float(chain_id_value) != chain_id:
        raise ConfigError("chain.chain_id", f"must be an integer, got {chain_id_value!r}", src)
    dep_value, src = get("chain.deployment", None)
    deployment = None
    if dep_value is not None:
        if not isinstance(dep_value, str) or not dep_value:
            raise ConfigError("chain.deployment", "must be a path to a deployment JSON file", src)
        deployment = data_dir / Path(dep_value).expanduser()
    conf_value, src = get("chain.confirmations", 2)
    confirmations = int(_number("chain.confirmations", conf_value, src, 0, 10_000))
    timeout_value, src = get("chain.timeout", 5.0)
    chain_timeout = _number("chain.timeout", timeout_value, src, 0.1, 120.0)
    quorum_value, src = get("chain.quorum", 1)
    quorum = int(_number("chain.quorum", quorum_value, src, 1, 16))
    if rpc_value and quorum > len(rpc_value):
        raise ConfigError(
            "chain.quorum", f"{quorum} is more than the {len(rpc_value)} endpoints", src
        )

    mode_value, src = get("hosting.mode", "explicit")
    if mode_value not in ("explicit", "follow", "auto"):
        raise ConfigError(
            "hosting.mode", f"must be explicit, follow or auto; got {mode_value!r}", src
        )
    repl_value, src = get("hosting.replication", 2)
    replication = int(_number("hosting.replication", repl_value, src, 1, 64))
    hw_value, src = get("hosting.worlds", [])
    hf_value, src2 = get("hosting.follow", [])
    for key, value, where in (
        ("hosting.worlds", hw_value, src),
        ("hosting.follow", hf_value, src2),
    ):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, "must be a list of strings", where)
    grace_value, src = get("hosting.grace", 600.0)
    grace = _number("hosting.grace", grace_value, src, 0.0, 30 * 86400.0)
    hi_value, src = get("hosting.interval", 10.0)
    hosting_interval = _number("hosting.interval", hi_value, src, 0.2, 3600.0)

    world_limits: dict[str, int] = {}
    for key, (limit_field, is_size) in WORLD_LIMIT_KEYS.items():
        value, src = get(f"world.{key}", None)
        if value is None:
            continue
        try:
            number = parse_size(value) if is_size else int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"world.{key}", f"bad value {value!r}: {exc}", src) from None
        if isinstance(value, bool) or number < 1:
            raise ConfigError(f"world.{key}", f"must be positive, got {value!r}", src)
        world_limits[limit_field] = number

    return Config(
        data_dir=data_dir,
        key_file=key_file,
        key_file_is_default=is_default,
        listen=listen,
        bootstrap=bootstrap,
        dial_timeout_s=dial_timeout,
        gateway_enabled=gateway_enabled,
        gateway_host=gateway_host,
        gateway_port=gateway_port,
        log_level=level_value.lower(),
        storage_max_bytes=max_bytes,
        denylist_files=denylist_files,
        world_limits=world_limits,
        chain_rpc=tuple(rpc_value),
        chain_id=chain_id,
        chain_deployment=deployment,
        chain_confirmations=confirmations,
        chain_timeout_s=chain_timeout,
        chain_quorum=quorum,
        hosting_mode=str(mode_value),
        hosting_replication=replication,
        hosting_worlds=tuple(hw_value),
        hosting_follow=tuple(v.lower() for v in hf_value),
        hosting_grace_s=grace,
        hosting_interval_s=hosting_interval,
        sources=sources,
    )


def _multiaddrs(key: str, value: Any, src: str, *, need_peer_id: bool) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(key, "must be a list of multiaddr strings", src)
    if len(value) > MAX_ADDRS:
        raise ConfigError(key, f"at most {MAX_ADDRS} addresses", src)
    return tuple(validate_multiaddr(key, v, src, need_peer_id=need_peer_id) for v in value)


def validate_multiaddr(key: str, text: str, src: str, *, need_peer_id: bool) -> str:
    """Accept /ip4|ip6|dns*/.../tcp/PORT[/p2p/ID]: the transports this node can use."""
    try:
        addr = multiaddr.Multiaddr(text)
        names = [p.name for p in addr.protocols()]
    except Exception as exc:
        raise ConfigError(key, f"bad multiaddr {text!r}: {exc}", src) from exc
    if not names or names[0] not in ("ip4", "ip6", "dns", "dns4", "dns6"):
        raise ConfigError(key, f"bad multiaddr {text!r}: must start with /ip4, /ip6 or /dns", src)
    if len(names) < 2 or names[1] != "tcp":
        raise ConfigError(key, f"bad multiaddr {text!r}: only TCP is supported", src)
    port = int(addr.value_for_protocol("tcp"))
    if not 0 <= port <= 65535:
        raise ConfigError(key, f"bad port {port} in {text!r}", src)
    has_peer = "p2p" in names
    if need_peer_id and not has_peer:
        raise ConfigError(key, f"bad multiaddr {text!r}: must end with /p2p/<peer id>", src)
    if not need_peer_id and has_peer:
        raise ConfigError(key, f"bad multiaddr {text!r}: a listen address has no /p2p/", src)
    return text


def parse_host_port(key: str, value: Any, src: str) -> tuple[str, int]:
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(key, f"must be HOST:PORT, got {value!r}", src)
    host, _, port_text = value.rpartition(":")
    host = host.strip("[]")
    if not host:
        raise ConfigError(key, f"missing host in {value!r}", src)
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(key, f"bad port {port_text!r} in {value!r}", src) from None
    if not 0 <= port <= 65535:
        raise ConfigError(key, f"bad port {port} in {value!r} (must be 0..65535)", src)
    return host, port


def _number(key: str, value: Any, src: str, lo: float, hi: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(key, f"must be a number, got {value!r}", src) from None
    if isinstance(value, bool) or not lo <= number <= hi:
        raise ConfigError(key, f"must be between {lo:g} and {hi:g}, got {value!r}", src)
    return number


def _boolean(key: str, value: Any, src: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
        return False
    raise ConfigError(key, f"must be true or false, got {value!r}", src)


CONFIG_TEMPLATE = """\
# Flux node configuration.
# Precedence (lowest to highest): this file < FLUX_* environment variables < command-line flags.
# Unknown sections or keys are an error, so a typo never passes silently.

[identity]
# libp2p Ed25519 key (protobuf), created by `flux-node init`, mode 0600. Relative to the data dir.
# Env: FLUX_KEY_FILE   Flag: --key-file
# key_file = "identity.key"

[network]
# Multiaddrs to listen on (TCP). Env: FLUX_LISTEN (comma-separated)   Flag: --listen (repeat)
# listen = ["/ip4/0.0.0.0/tcp/4011"]
# Peers to dial at start and redial with backoff; each must end in /p2p/<peer id>.
# Env: FLUX_BOOTSTRAP (comma-separated)   Flag: --bootstrap (repeat)
# bootstrap = []
# Seconds before a dial is abandoned. Env: FLUX_DIAL_TIMEOUT
# dial_timeout = 10.0

[gateway]
# HTTP gateway for light clients. Env: FLUX_GATEWAY_ENABLED   Flag: --no-gateway
# enabled = true
# HOST:PORT to serve it on. Env: FLUX_GATEWAY   Flag: --gateway
# listen = "127.0.0.1:8011"

[log]
# debug | info | warning | error. Env: FLUX_LOG_LEVEL   Flag: --log-level
# level = "info"

[storage]
# Most bytes the block store may hold (e.g. "50GiB"); adding past it fails before writing.
# Unset means no limit. Env: FLUX_STORAGE_MAX_SIZE
# max_size = "50GiB"

[content]
# Denylist files of content this node refuses to store, serve or relay: IPFS compact denylist
# (`.deny`, IPIP-383) including legacy badbits `//<sha256>` lines, or one CID per line.
# Relative to the data dir; later files override earlier ones. A malformed file stops the node.
# Env: FLUX_DENYLIST (comma-separated)
# denylist = ["denylists/badbits.deny"]

[chain]
# JSON-RPC endpoints (tried in order, failing over; each must report chain_id).
# Env: FLUX_CHAIN_RPC (comma-separated). Empty: no chain, so ticketed and private land worlds deny.
# rpc = ["https://rpc-amoy.polygon.technology"]
# chain_id = 80002                 # Polygon Amoy; 137 = Polygon PoS.  Env: FLUX_CHAIN_ID
# Deployment file written by `flux-node chain devnet|deploy` (addresses, deploy block).
# Env: FLUX_CHAIN_DEPLOYMENT
# deployment = "deployment.json"
# Only blocks this deep are trusted. Env: FLUX_CHAIN_CONFIRMATIONS
# confirmations = 2
# timeout = 5.0                    # seconds per RPC request
# quorum = 1                       # endpoints that must agree (k of n) for ownership answers

[hosting]
# What this node pins for others: "explicit" (only `worlds`), "follow" (also worlds whose owner
# is in `follow`), or "auto" (also help every world reach `replication` holders, within the quota).
# Env: FLUX_HOSTING_MODE, FLUX_HOSTING_REPLICATION, FLUX_HOSTING_INTERVAL
# mode = "explicit"
# replication = 2
# worlds = []                      # world ids, e.g. "land:42" or "0xabc.../plaza"
# follow = []                      # owner addresses
# grace = 600                      # seconds before releasing an over-replicated or old version
# interval = 10                    # seconds between hosting rounds (gossip, plan, challenge)

[world]
# Limits for world packages (`flux-node world validate|pack`). Sizes take units like "32MiB".
# max_total_size = "32MiB"
# max_file_size = "16MiB"
# max_files = 1000
# max_manifest_size = "1MiB"
# max_objects = 2000
"""
