"""The devnet's rules as data: options, node config, the wallets file, leftover processes,
replication, the printed summary; and the bundled sample worlds are valid packages."""

from __future__ import annotations

import json
import struct
import sys
import tomllib
from pathlib import Path

import pytest

from fluxnode.chain.keys import WalletKey
from fluxnode.core.errors import ConfigError
from fluxnode.node import devnet_plan as plan
from fluxnode.node.config import CliOverrides, load_config
from fluxnode.node.devnet_plan import DevnetOptions, ReadyInfo, Wallets

ROOT = Path(__file__).resolve().parents[2]


def opts(**kw: object) -> DevnetOptions:
    args: dict[str, object] = {"nodes": 3, "dir": "dn", "port": 8011, "chain_port": 8545}
    args.update(kw)
    return DevnetOptions.from_args(anvil=None, **args)  # type: ignore[arg-type]


def test_options_name_ports_and_dirs() -> None:
    o = opts()
    assert o.names() == ["node1", "node2", "node3"]
    assert o.gateway_ports() == [8011, 8012, 8013]
    assert o.fixed_ports() == [
        ("--port", 8011),
        ("--port", 8012),
        ("--port", 8013),
        ("--chain-port", 8545),
    ]
    assert o.node_dir("node2") == Path("dn").absolute() / "nodes" / "node2"
    assert opts(port=0, chain_port=0).fixed_ports() == []
    assert opts(port=0).gateway_ports() == [0, 0, 0]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"nodes": 0}, "--nodes: must be 1..16, got 0"),
        ({"nodes": 17}, "--nodes: must be 1..16, got 17"),
        ({"port": -1}, "--port: bad port -1"),
        ({"chain_port": 70000}, "--chain-port: bad port 70000"),
        ({"chain_port": 8012}, "--chain-port: 8012 collides with a gateway port"),
    ],
)
def test_bad_options_are_config_errors(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        opts(**kw)
    assert str(info.value) == message


def test_a_missing_anvil_binary_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        DevnetOptions.from_args(3, "dn", 0, 0, str(tmp_path / "nope"))
    assert str(info.value) == f"--anvil: no anvil binary at {tmp_path / 'nope'}"


def test_node_config_is_a_valid_loopback_config(tmp_path: Path) -> None:
    text = plan.node_config("http://127.0.0.1:8545", 8012, 3, listen_port=4321)
    (tmp_path / "config.toml").write_text(text)
    cfg = load_config(CliOverrides(data_dir=str(tmp_path)), env={})
    assert cfg.network.listen == ("/ip4/127.0.0.1/tcp/4321",)
    assert (cfg.gateway.listen.host, cfg.gateway.listen.port) == ("127.0.0.1", 8012)
    assert cfg.chain.rpc == ("http://127.0.0.1:8545",)
    assert cfg.chain.confirmations == 0
    assert cfg.hosting.mode.value == "auto" and cfg.hosting.replication == 3
    assert tomllib.loads(text)["network"]["listen"] == ["/ip4/127.0.0.1/tcp/4321"]


def test_wallets_round_trip_and_bad_files_name_themselves() -> None:
    wallets = Wallets.generate()
    assert len({k.address for k in wallets.by_role().values()}) == 3
    text = wallets.to_json(chain_id=80002, rpc_url="http://127.0.0.1:8545", land_token=1)
    doc = json.loads(text)
    assert set(doc["wallets"]) == set(plan.ROLES)
    assert doc["wallets"]["owner"]["address"] == wallets.owner.address
    assert Wallets.from_json(text, "w.json") == wallets
    for bad in ("{", "[]", '{"wallets": {}}', text.replace(wallets.owner.key.hex(), "00" * 32)):
        with pytest.raises(ConfigError) as info:
            Wallets.from_json(bad, "w.json")
        assert str(info.value).startswith("w.json: not a devnet wallets file (")
        assert str(info.value).endswith("); delete it")


def test_wallet_keys_never_appear_in_reprs() -> None:
    wallets = Wallets.generate()
    assert wallets.owner.key.hex() not in repr(wallets)


def test_only_processes_whose_command_line_matches_are_leftovers() -> None:
    node = ["/venv/bin/python", "-m", "fluxnode", "run", "--data-dir", "/d/nodes/node1"]
    assert plan.is_our_leftover(node, ["run", "--data-dir", "/d/nodes/node1"])
    assert not plan.is_our_leftover(node, ["run", "--data-dir", "/d/nodes/node2"])
    assert not plan.is_our_leftover(["/usr/bin/vim"], ["run", "--data-dir", "/d/nodes/node1"])
    assert not plan.is_our_leftover([], ["anything"])  # gone, or not ours to read


def test_missing_replicas() -> None:
    want = {"a", "b"}
    assert plan.missing_replicas({"n1": {"a", "b", "c"}, "n2": {"a", "b"}}, want) == {}
    assert plan.missing_replicas({"n1": {"a", "b"}, "n2": {"b"}}, want) == {"n2": ["a"]}


def test_summary_names_every_link_the_wallets_and_how_to_stop(tmp_path: Path) -> None:
    info = ReadyInfo(
        dir=tmp_path,
        gateway_urls=["http://127.0.0.1:8011", "http://127.0.0.1:8012"],
        rpc_url="http://127.0.0.1:8545",
        chain_id=80002,
        worlds={
            "ticketed": {"world_id": "land:1", "cid": "bafy1", "name": "Devnet Gallery"},
            "public": {"world_id": "0xabc/plaza", "cid": "bafy2", "name": "Devnet Plaza"},
        },
        processes=[{"name": "anvil", "pid": 10}],
    )
    text = info.summary()
    for want in (
        "http://127.0.0.1:8011/ ",
        "http://127.0.0.1:8011/w/land:1",
        "http://127.0.0.1:8011/w/0xabc/plaza",
        "http://127.0.0.1:8012/",
        str(tmp_path / "wallets.json"),
    ):
        assert want in text
    assert text.splitlines()[-1] == "Ctrl-C stops everything."
    doc = json.loads(info.to_json(pid=42))
    assert doc["share_links"] == {
        "ticketed": "http://127.0.0.1:8011/w/land:1",
        "public": "http://127.0.0.1:8011/w/0xabc/plaza",
    }
    assert doc["pid"] == 42 and doc["processes"] == [{"name": "anvil", "pid": 10}]


@pytest.mark.parametrize("world", ["gallery", "plaza"])
def test_sample_worlds_are_valid_packages(world: str) -> None:
    from fluxnode.storage.worldpkg import open_package

    with open_package(plan.SAMPLE_WORLDS / world) as pack:
        manifest = pack.manifest
    clicks = [o.interactions.on_click for o in manifest.objects]
    assert "toggle:open" in clicks  # a door to open, on every sample world


def test_gallery_models_are_the_generated_glbs() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import sample_models
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    models = plan.SAMPLE_WORLDS / "gallery" / "models"
    built = sample_models.build()
    assert sorted(p.name for p in models.glob("*.glb")) == sorted(built)
    for name, data in built.items():
        assert (models / name).read_bytes() == data, f"{name}: run scripts/sample_models.py"
        magic, version, length = struct.unpack("<4sII", data[:12])
        assert (magic, version, length) == (b"glTF", 2, len(data))
    manifest = json.loads((plan.SAMPLE_WORLDS / "gallery" / "world.json").read_text())
    used = {o["properties"]["model"] for o in manifest["objects"] if "model" in o["properties"]}
    assert used == {f"models/{n}" for n in built}


def test_wallet_key_type_is_the_light_one() -> None:
    assert isinstance(Wallets.generate().visitor, WalletKey)
