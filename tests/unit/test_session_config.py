"""The `[session]` config section and the operator's address denylist files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxnode.core.errors import ConfigError
from fluxnode.node.cli import build_parser
from fluxnode.node.config import Config, load_config, overrides_from_args
from fluxnode.node.denylist_files import load_address_denylist, read_address_denylist_file
from fluxnode.node.session_setup import session_domain

ALICE = "0x" + "ab" * 20
BOB = "0x" + "cd" * 20


def load(data_dir: Path, toml: str = "", env: dict[str, str] | None = None) -> Config:
    if toml:
        (data_dir / "config.toml").write_text(toml)
    args = build_parser().parse_args(["run", "--data-dir", str(data_dir)])
    return load_config(overrides_from_args(args), env={} if env is None else env)


def test_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    s = cfg.session
    assert (s.max_visitors, s.deny_addresses, s.domain, s.tick_hz, s.reports_max) == (
        200,
        (),
        None,
        10,
        10_000,
    )
    assert session_domain(cfg, None) == "127.0.0.1:8011"  # unset: the gateway's HOST:PORT
    assert session_domain(cfg, "http://127.0.0.1:40123") == "127.0.0.1:40123"  # as bound


def test_values_from_file_and_environment(tmp_path: Path) -> None:
    toml = (
        '[session]\nmax_visitors = 0\ndeny_addresses = ["deny.txt"]\n'
        'domain = "worlds.example.org"\ntick_hz = 30\nreports_max = 5\n'
    )
    cfg = load(tmp_path, toml, env={"FLUX_SESSION_TICK_HZ": "20"})
    s = cfg.session
    assert s.max_visitors == 0  # hosts no visitors
    assert s.deny_addresses == (tmp_path / "deny.txt",)
    assert session_domain(cfg, "http://127.0.0.1:40123") == "worlds.example.org"
    assert s.tick_hz == 20
    assert cfg.source("session.tick_hz") == "environment variable FLUX_SESSION_TICK_HZ"
    assert s.reports_max == 5


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[session]\nmax_visitors = -1\n", "session.max_visitors"),
        ("[session]\nmax_visitors = 1.5\n", "session.max_visitors"),
        ('[session]\nmax_visitors = "200"\n', "session.max_visitors"),
        ("[session]\ntick_hz = 0\n", "session.tick_hz"),
        ("[session]\ntick_hz = 31\n", "session.tick_hz"),
        ("[session]\nreports_max = 0\n", "session.reports_max"),
        ('[session]\ndomain = ""\n', "session.domain"),
        ('[session]\ndomain = "https://example.org"\n', "session.domain"),
        ('[session]\ndomain = "exa mple.org"\n', "session.domain"),
        ('[session]\ndeny_addresses = "deny.txt"\n', "session.deny_addresses"),
        ("[session]\nmax_guests = 3\n", "session.max_guests"),
    ],
)
def test_bad_values_are_config_errors(tmp_path: Path, toml: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, toml)
    assert info.value.key == key
    assert info.value.source == str(tmp_path / "config.toml")


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FLUX_SESSION_MAX_VISITORS") as info:
        load(tmp_path, env={"FLUX_SESSION_MAX_VISITORS": "lots"})
    assert info.value.key == "session.max_visitors"


# -- the address denylist ---------------------------------------------------------------------
def deny_cfg(tmp_path: Path, *files: tuple[str, str]) -> Config:
    for name, text in files:
        (tmp_path / name).write_text(text)
    names = ", ".join(f'"{name}"' for name, _ in files)
    return load(tmp_path, f"[session]\ndeny_addresses = [{names}]\n")


def test_address_denylist_comments_case_and_duplicates(tmp_path: Path) -> None:
    text = (
        "# spammers\n\n"
        f"{ALICE.upper().replace('0X', '0x')}  # shouted in every instance\n"
        f"   {BOB}\n"
        f"{ALICE}\n"  # the same address again, lower-case
    )
    cfg = deny_cfg(tmp_path, ("a.txt", text), ("b.txt", f"{BOB}\n"))
    assert load_address_denylist(cfg) == frozenset({ALICE, BOB})


def test_no_files_means_nobody_denied(tmp_path: Path) -> None:
    assert load_address_denylist(load(tmp_path)) == frozenset()


@pytest.mark.parametrize(
    "bad_line",
    [
        "0x" + "ab" * 19,  # 39 bytes
        "0x" + "ab" * 21,
        "ab" * 20,  # no 0x
        "0x" + "zz" * 20,
        f"{ALICE} {BOB}",  # two on one line
        f"{ALICE},",
        "// a comment of another syntax",
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str) -> None:
    cfg = deny_cfg(tmp_path, ("deny.txt", f"# ok\n{ALICE}\n{bad_line}\n{BOB}\n"))
    with pytest.raises(ConfigError) as info:
        load_address_denylist(cfg)
    assert info.value.key == "session.deny_addresses"
    assert info.value.source == f"{tmp_path / 'deny.txt'}:3"
    assert bad_line not in str(info.value)  # never echoes the file


def test_missing_non_utf8_and_oversized_files(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[session]\ndeny_addresses = ["nowhere.txt"]\n')
    with pytest.raises(ConfigError, match="cannot read denylist"):
        load_address_denylist(cfg)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"\xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_address_denylist_file(bad)
    big = tmp_path / "big.txt"
    big.write_text(f"{ALICE}\n" * 10)
    with pytest.raises(ConfigError, match="larger than"):
        read_address_denylist_file(big, max_bytes=100)
