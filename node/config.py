"""The node's one frozen configuration object, built from the key table in `config_keys.py`.

Sources, lowest to highest precedence: built-in defaults < `DATA_DIR/config.toml` < `FLUX_*`
environment variables < command-line flags. Every layer is checked on its own, so a wrong value
in the file is an error even when a flag overrides it. Everything is validated here, before
anything is written; an error names the key, the bad value and where it came from (file path,
variable or flag), and the CLI turns it into exit code 2.
"""

from __future__ import annotations

import argparse
import os
import re
import textwrap
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from fluxnode.atomicfile import UnsafeFile, read_regular_file
from fluxnode.core.errors import ConfigError
from fluxnode.core.world import WorldLimits
from fluxnode.node.config_keys import (
    CONFIG_FILE_NAME,
    DATA_DIR_ENV,
    DATA_DIR_FLAG,
    ENV_KEYS,
    KEYS,
    KEYS_BY_NAME,
    SECRET_ENV,
)
from fluxnode.node.config_kinds import Boolean, Choice, KeySpec, ListOf
from fluxnode.node.config_sections import (
    SECTIONS,
    ChainSection,
    ContentSection,
    GatewaySection,
    HostingSection,
    IdentitySection,
    LogSection,
    NetworkSection,
    SessionSection,
    StorageSection,
    WebrtcSection,
)
from fluxnode.node.rtc_loopback import LOOPBACK_ICE_ENV, MESH_FAIL_FOR_ENV

__all__ = [
    "CONFIG_FILE_NAME",
    "CONFIG_TEMPLATE",
    "CliOverrides",
    "Config",
    "add_config_flags",
    "load_config",
    "overrides_from_args",
    "read_config_file",
    "render_readme_table",
    "render_template",
]

MAX_CONFIG_BYTES = 1 << 20
#: Deepest `[`/`{` nesting accepted in config.toml, checked before parsing: tomllib recurses
#: once per level and a deeply nested file would exhaust the stack. This file needs 3.
MAX_TOML_DEPTH = 16


@dataclass(frozen=True)
class Config:
    data_dir: Path
    identity: IdentitySection
    network: NetworkSection
    gateway: GatewaySection
    log: LogSection
    storage: StorageSection
    content: ContentSection
    chain: ChainSection
    hosting: HostingSection
    session: SessionSection
    webrtc: WebrtcSection
    world: WorldLimits
    #: (key, where its value came from) for every key not at its default.
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def source(self, key: str) -> str:
        return dict(self.sources).get(key, "default")

    @property
    def key_file_is_default(self) -> bool:
        return self.source("identity.key_file") == "default"

    @property
    def config_file(self) -> Path:
        return self.data_dir / CONFIG_FILE_NAME


@dataclass(frozen=True)
class Given:
    """One value from one layer: TOML-typed, or text still to be read by its kind."""

    key: str
    value: object
    source: str
    is_text: bool = False


@dataclass(frozen=True)
class CliOverrides:
    """What the command line gave: the data dir and each config flag, in order."""

    data_dir: str | None = None
    flags: tuple[Given, ...] = ()


def default_data_dir(env: Mapping[str, str]) -> Path:
    if env.get(DATA_DIR_ENV):
        return Path(env[DATA_DIR_ENV]).expanduser()
    return Path(platformdirs.user_data_dir("flux-node", appauthor=False))


def load_config(cli: CliOverrides, env: Mapping[str, str] | None = None) -> Config:
    """Build the Config from defaults, file, environment and flags. Reads only; never writes."""
    env = os.environ if env is None else env
    test_only = {LOOPBACK_ICE_ENV, MESH_FAIL_FOR_ENV}  # set by tests on node processes
    known = {*ENV_KEYS, DATA_DIR_ENV, *SECRET_ENV, *test_only}
    unknown = sorted(k for k in env if k.startswith("FLUX_") and k not in known)
    if unknown:
        raise ConfigError(
            unknown[0],
            f"unknown environment variable; known: {', '.join(sorted(known))}",
            "environment",
        )
    try:
        data_dir = Path(cli.data_dir).expanduser() if cli.data_dir else default_data_dir(env)
    except RuntimeError as exc:  # `~nosuchuser`
        raise ConfigError("data_dir", str(exc), DATA_DIR_FLAG if cli.data_dir else None) from None

    path = data_dir / CONFIG_FILE_NAME
    file_layer = [Given(k, v, str(path)) for k, v in read_config_file(path).items()]
    env_layer = [
        Given(spec.key, env[var], f"environment variable {var}", is_text=True)
        for var, spec in ENV_KEYS.items()
        if var in env
    ]
    values: dict[str, tuple[object, str]] = {}
    for given in (*file_layer, *env_layer, *cli.flags):  # later layers win
        values[given.key] = (_parse(given, data_dir), given.source)
    for spec in KEYS:
        if spec.key not in values:
            default = (
                None
                if spec.default is None
                else _parse(Given(spec.key, spec.default, ""), data_dir)
            )
            values[spec.key] = (default, "default")
    _check_across_keys(values)

    sections: dict[str, object] = {}
    for name, cls in SECTIONS.items():
        kwargs = {s.attr: values[s.key][0] for s in KEYS if s.section == name}
        sections[name] = cls(**kwargs)
    sources = tuple((k, src) for k, (_, src) in values.items() if src != "default")
    return Config(data_dir=data_dir, sources=sources, **sections)  # type: ignore[arg-type]


def _parse(given: Given, data_dir: Path) -> object:
    spec = KEYS_BY_NAME[given.key]
    try:
        raw = spec.kind.from_text(given.value) if given.is_text else given.value  # type: ignore[arg-type]
        return spec.kind.parse(raw, data_dir)
    except ValueError as exc:
        raise ConfigError(given.key, str(exc), given.source or None) from None


def _check_across_keys(values: Mapping[str, tuple[object, str]]) -> None:
    rpc, _ = values["chain.rpc"]
    quorum, src = values["chain.quorum"]
    assert isinstance(rpc, tuple) and isinstance(quorum, int)
    if rpc and quorum > len(rpc):
        raise ConfigError("chain.quorum", f"{quorum} is more than the {len(rpc)} endpoints", src)


# -- the file ---------------------------------------------------------------------------------
def read_config_file(path: Path) -> dict[str, object]:
    """config.toml as `section.key` -> TOML value; {} when there is none.

    Only a regular file of at most MAX_CONFIG_BYTES is read (a FIFO or device would block or
    never end); nesting is bounded before parsing; unknown sections and keys are errors.
    """
    where = str(path)
    try:
        data = read_regular_file(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        return {}
    except UnsafeFile as exc:
        raise ConfigError("config", f"config file {exc}", where) from None
    except OSError as exc:
        raise ConfigError("config", f"cannot read config file: {exc.strerror}", where) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("config", f"not UTF-8 (byte {exc.start})", where) from None
    depth = toml_depth(text)
    if depth > MAX_TOML_DEPTH:
        raise ConfigError("config", f"nested {depth} levels deep (at most {MAX_TOML_DEPTH})", where)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"not valid TOML: {exc}", where) from None
    except RecursionError:  # toml_depth is an estimate on invalid TOML; never a traceback
        raise ConfigError("config", "nested too deeply", where) from None
    flat: dict[str, object] = {}
    for table, body in doc.items():
        names = {s.name for s in KEYS if s.section == table}
        if not names:
            raise ConfigError(table, f"unknown section; known: {', '.join(SECTIONS)}", where)
        if not isinstance(body, dict):
            raise ConfigError(table, "must be a table ([section])", where)
        for key, value in body.items():
            if key not in names:
                raise ConfigError(f"{table}.{key}", "unknown key", where)
            flat[f"{table}.{key}"] = value
    return flat


_TOKEN = re.compile(r'"""|\'\'\'|\\.|["\'#\n\[\]{}]', re.DOTALL)


def toml_depth(text: str) -> int:
    """Deepest nesting of `[`/`{` outside strings and comments (what tomllib recurses on)."""
    depth = deepest = 0
    state = ""  # "", '"', "'", '"""', "'''" or "#"
    pos = 0
    while (m := _TOKEN.search(text, pos)) is not None:
        tok = m.group()
        pos = m.end()
        if tok.startswith("\\") and state in ("'", "'''", "#", ""):
            pos = m.start() + 1  # no escapes here: the backslash is a plain character
            continue
        if state == "#":
            state = "" if tok == "\n" else state
        elif state in ('"', '"""', "'", "'''"):
            quote = state[0]
            if tok == state or (len(state) == 1 and tok in (quote * 3, "\n")):
                state = ""  # `"x"""` closes, then opens and closes an empty string
        elif tok in ('"', "'", '"""', "'''", "#"):
            state = tok
        elif tok in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif tok in "]}":
            depth = max(0, depth - 1)
    return deepest


# -- flags ------------------------------------------------------------------------------------
def _dest(spec: KeySpec) -> str:
    return f"config:{spec.key}"


def add_config_flags(parser: argparse.ArgumentParser, keys: Sequence[str]) -> None:
    """Give `parser` the flags of these config keys (help from the key table)."""
    specs = [KEYS_BY_NAME[k] for k in keys]
    targets: dict[str, list[KeySpec]] = {}
    for spec in specs:
        for key in (spec.key, *(k for k, _ in spec.flag_also)):
            targets.setdefault(key, []).append(spec)
    grouped: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for spec in specs:
        assert spec.flag is not None, spec.key
        rivals = next((t for t in targets.values() if len(t) > 1 and spec in t), None)
        owner: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup = parser
        if rivals is not None:
            if rivals[0].key not in grouped:
                grouped[rivals[0].key] = parser.add_mutually_exclusive_group()
            owner = grouped[rivals[0].key]
        help_text = f"{spec.doc} ({spec.key})"
        if spec.flag_const is not None:
            owner.add_argument(
                spec.flag,
                dest=_dest(spec),
                action="store_const",
                const=spec.flag_const,
                help=f"set {spec.key} = {toml_literal(spec.flag_const)} ({spec.doc})",
            )
            continue
        kind = spec.kind.item if isinstance(spec.kind, ListOf) else spec.kind
        owner.add_argument(
            spec.flag,
            dest=_dest(spec),
            action="append" if spec.flag_repeat else "store",
            choices=kind.choices if isinstance(kind, Choice) else None,
            metavar=None if isinstance(kind, Choice) else (spec.metavar or spec.name.upper()),
            help=help_text + (" (repeatable)" if spec.flag_repeat else ""),
        )
    parser.set_defaults(_config_flags=(*getattr(parser, "_config_flags", ()), *keys))


def overrides_from_args(args: argparse.Namespace) -> CliOverrides:
    flags: list[Given] = []
    for key in getattr(args, "_config_flags", ()):
        spec = KEYS_BY_NAME[key]
        value = getattr(args, _dest(spec), None)
        if value is None:
            continue
        source = f"flag {spec.flag}"
        text = spec.flag_const is None and not spec.flag_repeat
        flags.append(Given(key, value, source, is_text=text))
        flags.extend(Given(other, v, source) for other, v in spec.flag_also)
    return CliOverrides(data_dir=getattr(args, "data_dir", None), flags=tuple(flags))


# -- documents --------------------------------------------------------------------------------
def toml_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    raise TypeError(f"no TOML literal for {value!r}")


def _env_doc(spec: KeySpec) -> str:
    if isinstance(spec.kind, ListOf):
        return "comma-separated"
    if isinstance(spec.kind, Boolean):
        return "true/false/1/0"
    return ""


def render_template() -> str:
    """The commented config.toml `flux-node init` writes: every key, at its default."""
    out = [
        "# Flux node configuration.",
        "# Precedence (lowest to highest): this file < FLUX_* environment variables < flags.",
        "# Unknown sections or keys are an error, so a typo never passes silently.",
    ]
    section = ""
    for spec in KEYS:
        if spec.section != section:
            section = spec.section
            out += ["", f"[{section}]"]
        doc = spec.doc[0].upper() + spec.doc[1:] + "."
        out += textwrap.wrap(doc, 96, initial_indent="# ", subsequent_indent="# ")
        where = [f"Type: {spec.kind.doc}"]
        if spec.env:
            extra = _env_doc(spec)
            where.append(f"Env: {spec.env}" + (f" ({extra})" if extra else ""))
        if spec.flag:
            where.append(f"Flag: {spec.flag}")
        out.append("#   " + "   ".join(where))
        if spec.default is None:
            out.append(f"# {spec.name} = {spec.example}")
            continue
        if spec.example:
            out.append(f"#   e.g. {spec.name} = {spec.example}")
        out.append(f"# {spec.name} = {toml_literal(spec.default)}")
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_readme_table() -> str:
    """The README's configuration table (a test checks the README holds exactly this)."""
    rows = [
        "| key (`config.toml`) | meaning | type | env | flag | default |",
        "|---|---|---|---|---|---|",
    ]
    for spec in KEYS:
        env = f"`{spec.env}`" if spec.env else ""
        if env and _env_doc(spec):
            env += f" ({_env_doc(spec)})"
        flag = f"`{spec.flag}`" if spec.flag else ""
        if spec.flag_repeat:
            flag += " (repeat)"
        default = "unset" if spec.default is None else f"`{toml_literal(spec.default)}`"
        cells = (f"`{spec.key}`", spec.doc, spec.kind.doc, env, flag, default)
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    rows.append(
        f"| data dir | where everything lives | path | `{DATA_DIR_ENV}` | `{DATA_DIR_FLAG}` "
        "| platform user data dir |"
    )
    for var, doc in SECRET_ENV.items():
        rows.append(f"| (secret, not a key) | {_cell(doc)}; never logged | hex key | `{var}` | | |")
    return "\n".join(rows) + "\n"


CONFIG_TEMPLATE = render_template()


if __name__ == "__main__":  # pragma: no cover - prints the README's table
    print(render_readme_table(), end="")
