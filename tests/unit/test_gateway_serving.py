"""What the gateway serves when a block is bad or not covered by a pin: never error text as
content, never a clean end of a broken body, never a block no pin covers."""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from fluxnode.core.cid import Cid
from fluxnode.core.dagpb import decode_node
from fluxnode.gateway import make_gateway_app
from fluxnode.storage.carfile import iter_blocks, read_header
from fluxnode.storage.content import RepoContent
from fluxnode.storage.repo import Repo
from tests.unit.gateway_helpers import FakeNode, dechunk, get, raw_request, serve

CHUNK = 256 * 1024
DATA = random.Random(11).randbytes(12 * CHUNK)
BAD_LEAF = 6  # bytes [6 * CHUNK, 7 * CHUNK) live in the corrupted block


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "data")


@pytest.fixture
async def port(repo: Repo) -> AsyncIterator[int]:
    async with serve(make_gateway_app(FakeNode(), RepoContent(repo))) as p:
        yield p


def corrupt_leaf(repo: Repo) -> tuple[Cid, Cid]:
    root = repo.add(io.BytesIO(DATA)).cid  # type: ignore[arg-type]
    leaf = decode_node(repo.blocks.get(root)).links[BAD_LEAF].cid
    path = repo.blocks.path_for(leaf)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    return root, leaf


def loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def assert_no_path(body: bytes, repo: Repo) -> None:
    assert str(repo.blocks.root).encode() not in body
    assert b".data" not in body


async def test_plain_get_over_a_corrupted_leaf_is_cut_not_hung(
    port: int, repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    root, _ = corrupt_leaf(repo)
    resp = await raw_request(port, get(f"/ipfs/{root}"))
    assert resp.status == 200
    assert resp.content_length == len(DATA)
    # The connection closes short of the promised length, and what came is the file's bytes.
    assert len(resp.body) < len(DATA)
    assert resp.body == DATA[: len(resp.body)]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/ipfs/{root}") as r,
    ):
        assert r.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()
    warnings = loud(caplog)
    assert len(warnings) == 2  # one per request
    assert all(r.exc_info is None and "block_corrupted" in r.getMessage() for r in warnings)


async def test_range_over_a_corrupted_leaf_is_cut_without_error_text(
    port: int, repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    root, _ = corrupt_leaf(repo)
    first = 5 * CHUNK + 100
    resp = await raw_request(port, get(f"/ipfs/{root}", f"Range: bytes={first}-{8 * CHUNK}"))
    assert resp.status == 206
    assert resp.headers["content-range"] == f"bytes {first}-{8 * CHUNK}/{len(DATA)}"
    assert len(resp.body) < resp.content_length
    assert resp.body == DATA[first : first + len(resp.body)]
    assert b"HTTP/1.1" not in resp.body and b'"code"' not in resp.body
    assert [r.exc_info for r in loud(caplog)] == [None]


async def test_range_starting_in_a_corrupted_leaf_is_a_json_500_without_paths(
    port: int, repo: Repo
) -> None:
    root, leaf = corrupt_leaf(repo)
    start = BAD_LEAF * CHUNK + 10
    resp = await raw_request(port, get(f"/ipfs/{root}", f"Range: bytes={start}-"))
    assert resp.status == 500
    assert resp.headers["content-type"].startswith("application/json")
    assert json.loads(resp.body)["error"]["code"] == "block_corrupted"
    assert_no_path(resp.body, repo)
    raw = await raw_request(port, get(f"/ipfs/{leaf}?format=raw"))
    assert raw.status == 500
    assert json.loads(raw.body)["error"]["code"] == "block_corrupted"
    assert_no_path(raw.body, repo)


async def test_car_over_a_corrupted_leaf_never_ends_cleanly(
    port: int, repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    root, _ = corrupt_leaf(repo)
    resp = await raw_request(port, get(f"/ipfs/{root}?format=car"))
    assert resp.status == 200
    assert resp.headers["transfer-encoding"] == "chunked"
    data, complete = dechunk(resp.body)
    assert not complete
    assert b'"code"' not in data
    car = io.BytesIO(data)
    assert read_header(car).roots == (root,)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/ipfs/{root}?format=car") as r,
    ):
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()
    assert all(r.exc_info is None for r in loud(caplog))


async def test_corrupted_directory_block_is_a_json_500_without_paths(
    port: int, repo: Repo, tmp_path: Path
) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    root = repo.add(folder).cid
    path = repo.blocks.path_for(root)
    path.write_bytes(path.read_bytes() + b"x")
    for target in (f"/ipfs/{root}/", f"/ipfs/{root}?format=car", f"/ipfs/{root}?format=raw"):
        resp = await raw_request(port, get(target))
        assert resp.status == 500, target
        assert json.loads(resp.body)["error"]["code"] == "block_corrupted"
        assert_no_path(resp.body, repo)


def world(tmp_path: Path) -> Path:
    root = tmp_path / "w"
    (root / "models").mkdir(parents=True)
    (root / "models" / "door.glb").write_bytes(DATA[: 3 * CHUNK])
    (root / "world.json").write_text('{"name": "demo"}')
    return root


async def test_direct_pin_covers_its_block_only(port: int, repo: Repo, tmp_path: Path) -> None:
    root = repo.add(world(tmp_path), pin=False).cid
    repo.pins.add(root, recursive=False)
    listing = await raw_request(port, get(f"/ipfs/{root}/"))
    assert listing.status == 200
    assert b"world.json" in listing.body
    for target in (
        f"/ipfs/{root}/world.json",
        f"/ipfs/{root}/world.json?format=raw",
        f"/ipfs/{root}/models/door.glb",
        f"/ipfs/{root}/models/",
        f"/ipfs/{root}?format=car",
        f"/ipfs/{root}/models?format=car&dag-scope=block",
    ):
        resp = await raw_request(port, get(target))
        assert resp.status == 404, target
        assert json.loads(resp.body)["error"]["code"] == "not_found"
    block_car = await raw_request(port, get(f"/ipfs/{root}?format=car&dag-scope=block"))
    assert block_car.status == 200
    car = io.BytesIO(dechunk(block_car.body)[0])
    read_header(car)
    assert [c for c, _ in iter_blocks(car)] == [root]


async def test_recursive_pin_inside_a_direct_pinned_folder_is_served(
    port: int, repo: Repo, tmp_path: Path
) -> None:
    root = repo.add(world(tmp_path), pin=False).cid
    repo.pins.add(root, recursive=False)
    models = repo.exporter.resolve(root, ["models"]).cid
    repo.pins.add(models)
    door = await raw_request(port, get(f"/ipfs/{root}/models/door.glb"))
    assert door.status == 200
    assert door.body == DATA[: 3 * CHUNK]
    car = await raw_request(port, get(f"/ipfs/{root}/models?format=car"))
    assert car.status == 200
    blocks = list(iter_blocks(_car_body(car.body)))
    assert [c for c, _ in blocks][:2] == [root, models]
    assert (await raw_request(port, get(f"/ipfs/{root}/world.json"))).status == 404
    assert (await raw_request(port, get(f"/ipfs/{root}?format=car"))).status == 404


def _car_body(body: bytes) -> io.BytesIO:
    data, complete = dechunk(body)
    assert complete
    car = io.BytesIO(data)
    read_header(car)
    return car
