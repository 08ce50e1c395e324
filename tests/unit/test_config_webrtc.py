"""The `[webrtc]` config section: meshes on or off, the operator's ICE servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fluxnode.core.errors import ConfigError
from fluxnode.core.session.frames import IceServer
from fluxnode.node.cli import EXIT_OK, EXIT_USAGE, main
from fluxnode.node.config import CliOverrides, Config, load_config


@pytest.fixture(autouse=True)
def no_flux_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("FLUX_")]:
        monkeypatch.delenv(var)


def load(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> Config:
    (tmp_path / "config.toml").write_text(toml)
    return load_config(CliOverrides(data_dir=str(tmp_path)), env=env or {})


def test_webrtc_is_on_with_no_ice_servers_by_default(tmp_path: Path) -> None:
    cfg = load(tmp_path, "")
    assert cfg.webrtc.enabled is True and cfg.webrtc.ice_servers == ()


def test_ice_servers_are_read_as_tables(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        "[webrtc]\nenabled = true\nice_servers = [\n"
        '  {urls = ["stun:stun.example.org:3478"]},\n'
        '  {urls = "turns:turn.example.org:443", username = "u", credential = "p"},\n]\n',
    )
    assert cfg.webrtc.ice_servers == (
        IceServer(("stun:stun.example.org:3478",)),
        IceServer(("turns:turn.example.org:443",), "u", "p"),
    )
    assert load(tmp_path, "", {"FLUX_WEBRTC_ENABLED": "0"}).webrtc.enabled is False


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[webrtc]\nenabled = "yes"\n', "must be true or false"),
        ('[webrtc]\nice_servers = "stun:x"\n', "must be a list of at most 8 tables"),
        ("[webrtc]\nice_servers = [{}]\n", "server 1 must be a table of urls, username"),
        ('[webrtc]\nice_servers = [{urls = ["http://x"]}]\n', "'http://x' is not a stun:/turn:"),
        ("[webrtc]\nice_servers = [{urls = []}]\n", "urls must be a list of 1..4 URLs"),
        ('[webrtc]\nice_servers = [{urls = ["turn:t.example"]}]\n', "TURN server needs a user"),
        ('[webrtc]\nice_servers = [{urls = ["stun:x"], password = "p"}]\n', "must be a table"),
        ('[webrtc]\nice_servers = [{urls = ["stun:x"], username = 3}]\n', "must be strings"),
        ("[webrtc]\nice_servers = [" + '{urls = ["stun:x"]},' * 9 + "]\n", "at most 8"),
    ],
)
def test_bad_webrtc_values_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load(tmp_path, toml)
    assert info.value.key.startswith("webrtc.")


def test_run_with_bad_ice_servers_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "node"
    assert main(["init", "--data-dir", str(d)]) == EXIT_OK
    (d / "config.toml").write_text('[webrtc]\nice_servers = [{urls = ["turn:t.example"]}]\n')
    capsys.readouterr()
    assert main(["run", "--data-dir", str(d)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "webrtc.ice_servers" in err and "needs a username and a credential" in err
    assert "Traceback" not in err
