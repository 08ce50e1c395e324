"""Config values an adversary or a careless operator gives: bounds, types, files that are no
files, secrets in the environment. Each case is an error naming key and source, never a
traceback, a hang or an echo of some file's content."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from fluxnode.core.errors import ConfigError
from fluxnode.core.replication import HostingPolicy
from fluxnode.core.world import WorldLimits
from fluxnode.node.cli import build_parser
from fluxnode.node.config import (
    CONFIG_TEMPLATE,
    CliOverrides,
    Config,
    load_config,
    overrides_from_args,
    render_readme_table,
    toml_depth,
)
from fluxnode.node.config_keys import DEPLOY_KEY_ENV, KEYS, OWNER_KEY_ENV
from fluxnode.node.config_kinds import parse_size
from fluxnode.node.denylist_files import load_denylist

README = Path(__file__).resolve().parents[2] / "README.md"


def load(data_dir: Path, env: dict[str, str] | None = None, *argv: str) -> Config:
    args = build_parser().parse_args(["run", "--data-dir", str(data_dir), *argv])
    return load_config(overrides_from_args(args), env={} if env is None else env)


def write(data_dir: Path, text: str) -> Path:
    path = data_dir / "config.toml"
    path.write_text(text)
    return path


# -- sizes and numbers ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[storage]\nmax_size = "infGiB"\n', "storage.max_size"),
        ('[storage]\nmax_size = "1e400"\n', "storage.max_size"),
        ('[storage]\nmax_size = "nan"\n', "storage.max_size"),
        ("[storage]\nmax_size = inf\n", "storage.max_size"),
        ('[storage]\nmax_size = "\u0661\u0662GiB"\n', "storage.max_size"),  # Arabic-Indic digits
        ('[storage]\nmax_size = "1' + "0" * 5000 + '"\n', "storage.max_size"),
        ("[world]\nmax_files = inf\n", "world.max_files"),
        ("[world]\nmax_files = 1.5\n", "world.max_files"),
        ('[world]\nmax_total_size = "infMiB"\n', "world.max_total_size"),
        ("[network]\ndial_timeout = nan\n", "network.dial_timeout"),
        ("[chain]\nchain_id = 1e300\n", "chain.chain_id"),
        ('[gateway]\nlisten = "127.0.0.1:\uff18\uff10"\n', "gateway.listen"),  # full-width digits
    ],
)
def test_out_of_range_values_are_config_errors(tmp_path: Path, toml: str, key: str) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    assert info.value.key == key and info.value.source == str(path)


@pytest.mark.parametrize("value", ["inf", "infGiB", "1e400", "-1", "12 XB"])
def test_storage_size_from_env_is_checked(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="FLUX_STORAGE_MAX_SIZE") as info:
        load(tmp_path, {"FLUX_STORAGE_MAX_SIZE": value})
    assert info.value.key == "storage.max_size"


def test_sizes_parse_exactly() -> None:
    assert parse_size("50GiB") == 50 << 30
    assert parse_size("1.5 KiB") == 1536
    assert parse_size("10GB") == 10 * 10**9
    assert parse_size(7) == 7
    big = parse_size("9999999999999999999TiB")  # exact integer arithmetic, no float overflow
    assert big == 9999999999999999999 << 40


# -- nesting and file kinds -------------------------------------------------------------------
@pytest.mark.parametrize("opener", ["[", "{a="])
def test_deeply_nested_config_is_refused_before_parsing(tmp_path: Path, opener: str) -> None:
    closer = {"[": "]", "{a=": "}"}[opener]
    write(tmp_path, "[network]\nlisten = " + opener * 100_000 + closer * 100_000 + "\n")
    with pytest.raises(ConfigError, match="nested") as info:
        load(tmp_path)
    assert info.value.key == "config"


def test_depth_ignores_brackets_in_strings_and_comments() -> None:
    text = (
        "[a]\n"
        'x = "[[[[[[[[[[[[[[[[[[[[\\"[["  # [[[[[[[[[[[[[[[[[[[[[[\n'
        "y = '[[[[[[[[[[[[[[[[[[[[\\'\n"
        'z = """\n[[[[[[[[[[[[[[[[[[[[[\n"""\n'
        "w = '''[[[[[[[[[[[[[[[[[[[[['''\n"
        "v = [[1], [2]]\n"
    )
    assert toml_depth(text) == 2


def test_strings_with_brackets_still_parse(tmp_path: Path) -> None:
    write(tmp_path, '[hosting]\nworlds = ["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]\n')
    assert load(tmp_path).hosting.worlds == frozenset({"[" * 30})


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["fifo", "directory", "device", "huge", "dangling"])
def test_config_file_that_is_no_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "config.toml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "huge":
        with path.open("wb") as fh:  # sparse: refused by its size, never read
            fh.truncate(2 << 30)
    else:
        path.symlink_to(tmp_path / "missing.toml")
    expected = {
        "fifo": "not a regular file",
        "directory": "not a regular file",
        "device": "not a regular file",
        "huge": "larger than",
        "dangling": "symlink to a missing file",
    }[kind]
    with pytest.raises(ConfigError, match=expected) as info:
        load(tmp_path)
    assert info.value.source == str(path)


# -- every layer is checked -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("toml", "env", "argv", "key"),
    [
        ("[network]\nlisten = 5\n", {}, ["--listen", "/ip4/127.0.0.1/tcp/1"], "network.listen"),
        ("[gateway]\nlisten = 8011\n", {}, ["--gateway", "127.0.0.1:1"], "gateway.listen"),
        ('[gateway]\nenabled = "no"\n', {}, ["--no-gateway"], "gateway.enabled"),
        ("[log]\nlevel = 3\n", {"FLUX_LOG_LEVEL": "debug"}, [], "log.level"),
        ("[log]\nlevel = 3\n", {}, ["--log-level", "debug"], "log.level"),
        ('[identity]\nkey_file = ""\n', {}, ["--key-file", "k"], "identity.key_file"),
    ],
)
def test_an_overridden_bad_value_is_still_an_error(
    tmp_path: Path, toml: str, env: dict[str, str], argv: list[str], key: str
) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        load(tmp_path, env, *argv)
    assert info.value.key == key and info.value.source == str(path)


def test_an_overridden_bad_env_value_is_still_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable FLUX_LISTEN"):
        load(tmp_path, {"FLUX_LISTEN": "garbage"}, "--listen", "/ip4/127.0.0.1/tcp/1")


@pytest.mark.parametrize("value", ['"yes"', '"true"', "1", '"on"'])
def test_booleans_in_the_file_are_toml_booleans(tmp_path: Path, value: str) -> None:
    write(tmp_path, f"[gateway]\nenabled = {value}\n")
    with pytest.raises(ConfigError, match="must be true or false") as info:
        load(tmp_path)
    assert info.value.key == "gateway.enabled"


@pytest.mark.parametrize(
    ("text", "expected"), [("true", True), ("1", True), ("FALSE", False), ("0", False)]
)
def test_booleans_in_the_environment(tmp_path: Path, text: str, expected: bool) -> None:
    assert load(tmp_path, {"FLUX_GATEWAY_ENABLED": text}).gateway.enabled is expected


@pytest.mark.parametrize("text", ["yes", "on", "", "2"])
def test_other_booleans_in_the_environment_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="FLUX_GATEWAY_ENABLED"):
        load(tmp_path, {"FLUX_GATEWAY_ENABLED": text})


def test_unknown_home_in_a_path_is_a_config_error(tmp_path: Path) -> None:
    write(tmp_path, '[identity]\nkey_file = "~no-such-user-here/identity.key"\n')
    with pytest.raises(ConfigError, match="cannot expand") as info:
        load(tmp_path)
    assert info.value.key == "identity.key_file"


@pytest.mark.parametrize("command", ["init", "run", "id"])
def test_help_lists_the_config_flags(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--key-file FILE" in out and "identity.key_file" in out
    if command == "run":
        assert "[--gateway HOST:PORT | --no-gateway]" in out and "--listen MULTIADDR" in out


def test_gateway_flags_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["run", "--gateway", "127.0.0.1:1", "--no-gateway"])
    assert info.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_config_flags_are_only_those_of_the_command(tmp_path: Path) -> None:
    """`publish --key-file` names the owner's wallet key, not the node's identity key."""
    args = build_parser().parse_args(
        ["publish", "--data-dir", str(tmp_path), "w", "--slug", "s", "--key-file", "owner.key"]
    )
    cfg = load_config(overrides_from_args(args), env={})
    assert cfg.identity.key_file == tmp_path / "identity.key"


# -- secrets ----------------------------------------------------------------------------------
@pytest.mark.parametrize("var", [OWNER_KEY_ENV, DEPLOY_KEY_ENV])
def test_wallet_key_variables_are_accepted_and_never_kept(tmp_path: Path, var: str) -> None:
    secret = "ab" * 32
    cfg = load(tmp_path, {var: secret})
    assert secret not in repr(cfg)
    with pytest.raises(ConfigError) as info:  # not even in an error about another variable
        load(tmp_path, {var: secret, "FLUX_NOPE": "1"})
    assert info.value.key == "FLUX_NOPE" and secret not in str(info.value)


def test_deploy_key_variable_is_the_one_chain_deploy_reads() -> None:
    from fluxnode.chain.deploy import DEPLOY_KEY_ENV as CHAIN_DEPLOY_KEY_ENV

    assert DEPLOY_KEY_ENV == CHAIN_DEPLOY_KEY_ENV


# -- denylist files that are not denylists ----------------------------------------------------
SHADOW = "root:$6$S3CR3TSALT$S3CR3THASHS3CR3THASH:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n"
ENVIRON = "PATH=/usr/bin\0AWS_SECRET=S3CR3TVALUE\0HOME=/root\0"


@pytest.mark.parametrize("content", [SHADOW, ENVIRON, "/etc/S3CR3T\n", "//S3CR3T\n"])
def test_denylist_errors_name_file_and_line_never_content(tmp_path: Path, content: str) -> None:
    deny = tmp_path / "secret"
    deny.write_text(content)
    write(tmp_path, f'[content]\ndenylist = ["{deny}"]\n')
    with pytest.raises(ConfigError) as info:
        load_denylist(load(tmp_path))
    message = str(info.value)
    assert str(deny) in message and "line 1" in message and "expected" in message
    assert "S3CR3T" not in message


def test_proc_self_environ_is_not_echoed(tmp_path: Path) -> None:
    write(tmp_path, '[content]\ndenylist = ["/proc/self/environ"]\n')
    with pytest.raises(ConfigError) as info:
        load_denylist(load(tmp_path))
    message = str(info.value)
    assert "/proc/self/environ" in message and "line 1" in message
    environ = Path("/proc/self/environ").read_bytes().decode(errors="replace")
    values = {v for v in re.split(r"[\0=:]", environ) if len(v) >= 8}
    assert values and not any(v in message for v in values)


@pytest.mark.timeout(30)
def test_denylist_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    deny = tmp_path / "list.deny"
    os.mkfifo(deny)
    write(tmp_path, f'[content]\ndenylist = ["{deny}"]\n')
    with pytest.raises(ConfigError, match="not a regular file"):
        load_denylist(load(tmp_path))


# -- one table, one default -------------------------------------------------------------------
def test_defaults_agree_with_the_cores_own() -> None:
    cfg = load_config(CliOverrides(data_dir="/nonexistent"), env={})
    assert cfg.world == WorldLimits()
    assert cfg.hosting.policy == HostingPolicy()


def test_template_lists_every_key_at_its_default(tmp_path: Path) -> None:
    for spec in KEYS:
        assert f"[{spec.section}]" in CONFIG_TEMPLATE
        assert re.search(rf"^# {spec.name} = ", CONFIG_TEMPLATE, re.M), spec.key
    # Uncommenting every default line gives the defaults back, explicitly set.
    lines = []
    for line in CONFIG_TEMPLATE.splitlines():
        name = line[2:].partition(" = ")[0]
        explicit = any(s.name == name and s.default is not None for s in KEYS)
        lines.append(line[2:] if line.startswith("# ") and " = " in line and explicit else line)
    write(tmp_path, "\n".join(lines))
    explicit = load(tmp_path)
    assert len(explicit.sources) == sum(1 for s in KEYS if s.default is not None)
    (tmp_path / "config.toml").unlink()
    assert explicit == load(tmp_path)


def test_readme_table_is_the_key_table() -> None:
    assert render_readme_table() in README.read_text(), (
        "README's configuration table differs from node/config_keys.py; regenerate it with "
        "`python -m fluxnode.node.config`"
    )


def test_the_test_only_mesh_spell_variable_is_known_and_checked(tmp_path: Path) -> None:
    from fluxnode.core.session.mesh import FAIL_FOR
    from fluxnode.node.rtc_loopback import MESH_FAIL_FOR_ENV, mesh_fail_for

    load(tmp_path, {MESH_FAIL_FOR_ENV: "4"})  # not an unknown variable
    assert mesh_fail_for({}) == FAIL_FOR
    assert mesh_fail_for({MESH_FAIL_FOR_ENV: "4.5"}) == 4.5
    for bad in ("0", "-1", "soon", "nan", str(FAIL_FOR + 1)):
        with pytest.raises(ConfigError) as info:
            mesh_fail_for({MESH_FAIL_FOR_ENV: bad})
        assert info.value.key == MESH_FAIL_FOR_ENV
