"""The denylist enforced by the repository (add, CAR import, pin) and the gateway (451)."""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from fluxnode.core.cid import Cid
from fluxnode.core.denylist import ContentDenied, Denylist
from fluxnode.core.status import NodeStatus
from fluxnode.gateway import make_gateway_app
from fluxnode.storage.carfile import iter_blocks, read_header
from fluxnode.storage.content import RepoContent
from fluxnode.storage.repo import Repo

DATA = random.Random(11).randbytes(600_000)


class FakeNode:
    async def status(self) -> NodeStatus:
        return NodeStatus("12D3KooWtest", (), "0", 1.0)


def deny(*rules: object) -> Denylist:
    return Denylist.parse("\n".join(str(r) for r in rules), "test.deny")


def world(tmp_path: Path) -> Path:
    root = tmp_path / "w"
    (root / "models").mkdir(parents=True)
    (root / "models" / "door.glb").write_bytes(DATA)
    (root / "world.json").write_text('{"name": "demo"}')
    return root


def nothing_stored(repo: Repo) -> bool:
    return repo.stat().blocks == 0 and repo.pins.list() == []


@pytest.fixture
def source(tmp_path: Path) -> tuple[Repo, Cid, Cid, Cid]:
    """A repo holding the demo world: (repo, root, models dir, door.glb)."""
    repo = Repo(tmp_path / "src")
    root = repo.add(world(tmp_path)).cid
    models = repo.exporter.resolve(root, ["models"]).cid
    door = repo.exporter.resolve(root, ["models", "door.glb"]).cid
    return repo, root, models, door


def test_add_of_denied_content_writes_nothing(tmp_path: Path) -> None:
    probe = Repo(tmp_path / "probe")
    cid = probe.add(io.BytesIO(DATA), only_hash=True).cid
    repo = Repo(tmp_path / "r", denylist=deny(f"/ipfs/{cid.to_v1()}"))
    with pytest.raises(ContentDenied) as info:
        repo.add(io.BytesIO(DATA))
    assert info.value.http_status == 451
    assert nothing_stored(repo)
    # only_hash writes nothing anyway and may tell the CID
    assert repo.add(io.BytesIO(DATA), only_hash=True).cid == cid
    # a folder holding a denied file is refused as a whole
    folder = world(tmp_path)
    door = probe.add(folder / "models" / "door.glb", only_hash=True).cid
    repo = Repo(tmp_path / "r2", denylist=deny(door))
    with pytest.raises(ContentDenied):
        repo.add(folder)
    assert nothing_stored(repo)
    # other content is unaffected
    repo.add(io.BytesIO(b"fine"))
    assert repo.stat().blocks == 1


def test_add_refused_keeps_blocks_that_were_there(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    kept = repo.add(io.BytesIO(b"x" * 300_000)).cid  # shares its leaf blocks with the next
    before = sorted(str(c) for c in repo.blocks.iter_cids())
    denied = repo.add(io.BytesIO(b"x" * 600_000), only_hash=True).cid
    repo = Repo(tmp_path / "r", denylist=deny(denied))
    with pytest.raises(ContentDenied):
        repo.add(io.BytesIO(b"x" * 600_000))
    assert sorted(str(c) for c in repo.blocks.iter_cids()) == before
    assert [p.cid for p in repo.pins.list()] == [str(kept)]


@pytest.mark.parametrize("which", ["root", "models", "door"])
def test_car_with_a_denied_block_is_refused_whole(
    tmp_path: Path, source: tuple[Repo, Cid, Cid, Cid], which: str
) -> None:
    src, root, models, door = source
    car = io.BytesIO()
    src.export_car(root, car)
    denied = {"root": root, "models": models, "door": door}[which]
    repo = Repo(tmp_path / "dst", denylist=deny(f"/ipfs/{denied}"))
    for pin_roots in (True, False):
        with pytest.raises(ContentDenied):
            repo.import_car(io.BytesIO(car.getvalue()), pin_roots=pin_roots)
        assert nothing_stored(repo)
    # the same CAR goes in when the list does not name any of its blocks
    ok = Repo(tmp_path / "ok", denylist=deny(Cid.hash_block(b"other", 1, 0x55)))
    assert ok.import_car(io.BytesIO(car.getvalue())).roots == (root,)


def test_pin_of_denied_root_or_dag_is_refused(
    tmp_path: Path, source: tuple[Repo, Cid, Cid, Cid]
) -> None:
    src, root, models, door = source
    car = io.BytesIO()
    src.export_car(root, car)
    data_dir = tmp_path / "dst"
    Repo(data_dir).import_car(io.BytesIO(car.getvalue()), pin_roots=False)
    for denied, recursive in ((root, True), (root, False), (door, True)):
        repo = Repo(data_dir, denylist=deny(denied))
        with pytest.raises(ContentDenied):
            repo.pins.add(root, recursive=recursive)
        assert repo.pins.list() == []
    # a direct pin of the root is fine when only a child is denied
    Repo(data_dir, denylist=deny(door)).pins.add(root, recursive=False)
    # the repo refuses to read out denied content too
    repo = Repo(data_dir, denylist=deny(models))
    with pytest.raises(ContentDenied):
        list(repo.cat(root, ["models", "door.glb"]))
    with pytest.raises(ContentDenied):
        repo.export_car(models, io.BytesIO())


@pytest.fixture
async def gateway(
    tmp_path: Path, source: tuple[Repo, Cid, Cid, Cid]
) -> AsyncIterator[tuple[TestClient, RepoContent, Cid, Cid, Cid]]:
    """The source repo served by a gateway whose denylist the test sets later."""
    src, root, models, door = source
    content = RepoContent(src)
    app = make_gateway_app(FakeNode(), content)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client, content, root, models, door


async def expect_451(client: TestClient, target: str) -> None:
    r = await client.get(target)
    assert r.status == 451, (target, r.status, await r.text())
    body = await r.json()
    assert body["error"]["code"] == "content_denied"


async def test_gateway_answers_451_for_denied_cid(
    gateway: tuple[TestClient, RepoContent, Cid, Cid, Cid],
) -> None:
    client, content, root, _models, door = gateway
    assert (await client.get(f"/ipfs/{root}/world.json")).status == 200
    content.repo.denylist = deny(f"/ipfs/{root.to_v1()}")  # listed as v1, served as v0
    await expect_451(client, f"/ipfs/{root}/")
    await expect_451(client, f"/ipfs/{root.to_v1()}/world.json")
    await expect_451(client, f"/ipfs/{root}?format=car")
    content.repo.denylist = deny(door)
    await expect_451(client, f"/ipfs/{door}")
    await expect_451(client, f"/ipfs/{door}?format=raw")
    assert (await client.get(f"/ipfs/{root}/world.json")).status == 200


async def test_gateway_answers_451_for_a_path_through_a_denied_block(
    gateway: tuple[TestClient, RepoContent, Cid, Cid, Cid],
) -> None:
    client, content, root, models, _door = gateway
    content.repo.denylist = deny(models)
    await expect_451(client, f"/ipfs/{root}/models/door.glb")
    await expect_451(client, f"/ipfs/{root}/models/")
    assert (await client.get(f"/ipfs/{root}/world.json")).status == 200
    # path rules: exact and prefix, including a legacy badbits anchor
    content.repo.denylist = deny(f"/ipfs/{root}/models/door.glb")
    await expect_451(client, f"/ipfs/{root}/models/door.glb")
    assert (await client.get(f"/ipfs/{root}/models/")).status == 200
    content.repo.denylist = deny(f"/ipfs/{root}/mod*")
    await expect_451(client, f"/ipfs/{root}/models/door.glb")
    anchor = hashlib.sha256(f"{root.to_v1()}/world.json".encode()).hexdigest()
    content.repo.denylist = deny(f"//{anchor}")
    await expect_451(client, f"/ipfs/{root}/world.json")
    assert (await client.get(f"/ipfs/{root}/models/")).status == 200


async def test_gateway_car_leaves_out_denied_blocks(
    gateway: tuple[TestClient, RepoContent, Cid, Cid, Cid],
) -> None:
    client, content, root, models, door = gateway
    content.repo.denylist = deny(door)
    r = await client.get(f"/ipfs/{root}?format=car")
    assert r.status == 200
    stream = io.BytesIO(await r.read())
    assert read_header(stream).roots == (root,)
    sent = {cid.multihash for cid, _ in iter_blocks(stream)}
    assert root.multihash in sent and models.multihash in sent
    assert door.multihash not in sent
