"""Config precedence and validation (in-process, fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxnode.core.errors import ConfigError
from fluxnode.core.replication import Policy
from fluxnode.node.cli import build_parser
from fluxnode.node.config import (
    CONFIG_TEMPLATE,
    CliOverrides,
    Config,
    load_config,
    overrides_from_args,
)
from fluxnode.node.config_sections import LogLevel

PEER = "12D3KooWKAWP3M4vd2ytWFGpA7N3JLx6NHqs9ky1XLK6GUELLAaR"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "config.toml").write_text(text)
    return tmp_path


def run_flags(tmp_path: Path, *argv: str, env: dict[str, str] | None = None) -> Config:
    """The Config `flux-node run --data-dir tmp_path ARGV...` would use."""
    args = build_parser().parse_args(["run", "--data-dir", str(tmp_path), *argv])
    return load_config(overrides_from_args(args), env={} if env is None else env)


def test_defaults_without_any_file(tmp_path: Path) -> None:
    cfg = load_config(CliOverrides(data_dir=str(tmp_path)), env={})
    assert cfg.data_dir == tmp_path
    assert cfg.identity.key_file == tmp_path / "identity.key" and cfg.key_file_is_default
    assert cfg.network.listen == ("/ip4/0.0.0.0/tcp/4011",)
    assert cfg.gateway.url == "http://127.0.0.1:8011"
    assert cfg.hosting.interval_s == 10.0 and cfg.hosting.mode is Policy.EXPLICIT
    assert cfg.log.level is LogLevel.INFO


def test_template_written_by_init_parses_and_sets_nothing(tmp_path: Path) -> None:
    write(tmp_path, CONFIG_TEMPLATE)
    cfg = load_config(CliOverrides(data_dir=str(tmp_path)), env={})
    assert cfg.sources == ()  # every key in it is a commented-out default
    assert cfg == load_config(CliOverrides(data_dir=str(tmp_path)), env={})


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    write(
        tmp_path,
        '[network]\nlisten = ["/ip4/127.0.0.1/tcp/1"]\n[log]\nlevel = "debug"\n'
        '[gateway]\nlisten = "127.0.0.1:9"\n',
    )
    env = {"FLUX_LISTEN": "/ip4/127.0.0.1/tcp/2,/ip4/127.0.0.1/tcp/3", "FLUX_LOG_LEVEL": "error"}
    cfg = load_config(CliOverrides(data_dir=str(tmp_path)), env=env)
    assert cfg.network.listen == ("/ip4/127.0.0.1/tcp/2", "/ip4/127.0.0.1/tcp/3")
    assert cfg.log.level == "error"
    assert cfg.gateway.listen.port == 9  # only the file set it
    cfg = run_flags(tmp_path, "--listen", "/ip4/127.0.0.1/tcp/4", "--no-gateway", env=env)
    assert cfg.network.listen == ("/ip4/127.0.0.1/tcp/4",)
    assert cfg.gateway.enabled is False and cfg.gateway.url is None
    assert cfg.source("network.listen") == "flag --listen"
    assert cfg.source("log.level") == "environment variable FLUX_LOG_LEVEL"


def test_data_dir_from_env(tmp_path: Path) -> None:
    cfg = load_config(CliOverrides(), env={"FLUX_DATA_DIR": str(tmp_path / "x")})
    assert cfg.data_dir == tmp_path / "x"


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[network]\nlisen = []\n", "network.lisen"),
        ("[netwrk]\n", "netwrk"),
        ("network = 3\n", "network"),
        ('[network]\nlisten = ["/ip4/127.0.0.1/tcp/99999"]\n', "network.listen"),
        ('[network]\nlisten = ["/ip4/1.2.3/tcp/1"]\n', "network.listen"),
        ('[network]\nlisten = ["/ip4/127.0.0.1/udp/1"]\n', "network.listen"),
        ("[network]\nlisten = []\n", "network.listen"),
        ('[network]\nlisten = "/ip4/127.0.0.1/tcp/1"\n', "network.listen"),
        ('[network]\nbootstrap = ["/ip4/127.0.0.1/tcp/1"]\n', "network.bootstrap"),
        ("[network]\ndial_timeout = -1\n", "network.dial_timeout"),
        ('[gateway]\nlisten = "127.0.0.1:70000"\n', "gateway.listen"),
        ('[gateway]\nlisten = "127.0.0.1"\n', "gateway.listen"),
        ('[gateway]\nenabled = "maybe"\n', "gateway.enabled"),
        ('[log]\nlevel = "loud"\n', "log.level"),
        ("[network\n", "config"),
    ],
)
def test_bad_file_values_name_key_and_file(tmp_path: Path, toml: str, key: str) -> None:
    write(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        load_config(CliOverrides(data_dir=str(tmp_path)), env={})
    assert info.value.key == key
    assert info.value.source == str(tmp_path / "config.toml")
    assert str(tmp_path / "config.toml") in str(info.value)


def test_bad_env_and_flag_values_name_their_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable FLUX_GATEWAY"):
        load_config(CliOverrides(data_dir=str(tmp_path)), env={"FLUX_GATEWAY": "x:y"})
    with pytest.raises(ConfigError, match="FLUX_LISTN"):
        load_config(CliOverrides(data_dir=str(tmp_path)), env={"FLUX_LISTN": "x"})
    with pytest.raises(ConfigError, match="flag --bootstrap") as info:
        run_flags(tmp_path, "--bootstrap", "garbage")
    assert info.value.key == "network.bootstrap"


def test_bootstrap_with_peer_id_is_accepted(tmp_path: Path) -> None:
    addr = f"/ip4/127.0.0.1/tcp/4011/p2p/{PEER}"
    cfg = run_flags(tmp_path, "--bootstrap", addr)
    assert cfg.network.bootstrap == (addr,)


def test_oversized_config_file_is_rejected(tmp_path: Path) -> None:
    write(tmp_path, "#" * (1 << 20) + "x\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_config(CliOverrides(data_dir=str(tmp_path)), env={})


def test_chain_settings(tmp_path: Path) -> None:
    write(
        tmp_path,
        '[chain]\nrpc = ["http://127.0.0.1:8545", "https://x.example/rpc"]\n'
        'chain_id = 137\nconfirmations = 5\nquorum = 2\ndeployment = "d.json"\n',
    )
    cfg = load_config(CliOverrides(data_dir=str(tmp_path)), env={})
    assert cfg.chain.rpc == ("http://127.0.0.1:8545", "https://x.example/rpc")
    assert (cfg.chain.chain_id, cfg.chain.confirmations, cfg.chain.quorum) == (137, 5, 2)
    assert isinstance(cfg.chain.rpc, tuple)
    assert cfg.chain.deployment == tmp_path / "d.json"
    for bad, key in [
        ('rpc = ["ftp://x"]', "chain.rpc"),
        ("chain_id = 1.5", "chain.chain_id"),
        ('rpc = ["http://a"]\nquorum = 2', "chain.quorum"),
        ("confirmations = -1", "chain.confirmations"),
    ]:
        write(tmp_path, f"[chain]\n{bad}\n")
        with pytest.raises(ConfigError) as info:
            load_config(CliOverrides(data_dir=str(tmp_path)), env={})
        assert info.value.key == key


def test_content_denylist_files_from_file_and_env_and_loading(tmp_path: Path) -> None:
    from fluxnode.node.denylist_files import load_denylist

    cid = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    write(tmp_path, '[content]\ndenylist = ["lists/a.deny", "b.deny"]\n')
    cfg = load_config(CliOverrides(data_dir=str(tmp_path)), env={})
    assert cfg.content.denylist == (tmp_path / "lists" / "a.deny", tmp_path / "b.deny")
    assert cfg.source("content.denylist") == str(tmp_path / "config.toml")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "a.deny").write_text(f"# first\n/ipfs/{cid}\n")
    (tmp_path / "b.deny").write_text(f"!/ipfs/{cid}\n")
    denylist = load_denylist(cfg)
    assert len(denylist) == 2 and denylist.sources == tuple(str(p) for p in cfg.content.denylist)
    from fluxnode.core.cid import Cid

    assert not denylist.is_denied(Cid.parse(cid))  # the later file's allow rule wins

    env = {"FLUX_DENYLIST": "x.deny, y.deny"}
    cfg = load_config(CliOverrides(data_dir=str(tmp_path)), env=env)
    assert cfg.content.denylist == (tmp_path / "x.deny", tmp_path / "y.deny")
    assert cfg.source("content.denylist") == "environment variable FLUX_DENYLIST"
    with pytest.raises(ConfigError, match=r"x\.deny.*") as info:
        load_denylist(cfg)  # missing file
    assert "cannot read denylist" in str(info.value)

    (tmp_path / "x.deny").write_text(f"/ipfs/{cid}\n/ipfs/bogus\n")
    (tmp_path / "y.deny").write_bytes(b"\xff\n")
    with pytest.raises(ConfigError, match=r"line 2: invalid CID") as info:
        load_denylist(cfg)
    assert str(tmp_path / "x.deny") in str(info.value)
    (tmp_path / "x.deny").write_text("")
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        load_denylist(cfg)
    assert str(tmp_path / "y.deny") in str(info.value)


@pytest.mark.parametrize("value", ['"a.deny"', "[1]", '[""]'])
def test_bad_content_denylist_values(tmp_path: Path, value: str) -> None:
    write(tmp_path, f"[content]\ndenylist = {value}\n")
    with pytest.raises(ConfigError, match=r"content\.denylist: must be a list"):
        load_config(CliOverrides(data_dir=str(tmp_path)), env={})
