"""The /ipfs gateway routes against a real repo, over a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from fluxnode.core.cid import Cid
from fluxnode.core.status import NodeStatus
from fluxnode.gateway import make_gateway_app
from fluxnode.storage.carfile import iter_blocks, read_header
from fluxnode.storage.content import RepoContent
from fluxnode.storage.repo import Repo

DATA = random.Random(7).randbytes(700_000)


class FakeNode:
    """NodeApi: the gateway only asks it for status."""

    async def status(self) -> NodeStatus:
        return NodeStatus("12D3KooWtest", (), "0", 1.0)


async def raw_get(client: TestClient, target: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "data")


@pytest.fixture
async def client(repo: Repo) -> AsyncIterator[TestClient]:
    app = make_gateway_app(FakeNode(), RepoContent(repo))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


def world(tmp_path: Path) -> Path:
    root = tmp_path / "w"
    (root / "models").mkdir(parents=True)
    (root / "models" / "door.glb").write_bytes(DATA)
    (root / "world.json").write_text('{"name": "demo"}')
    return root


async def test_deserialized_file_with_range_etag_and_cache_headers(
    client: TestClient, repo: Repo, tmp_path: Path
) -> None:
    cid = repo.add(world(tmp_path)).cid
    r = await client.get(f"/ipfs/{cid}/models/door.glb")
    assert r.status == 200
    assert await r.read() == DATA
    assert r.headers["Content-Type"] == "model/gltf-binary"
    assert r.headers["Cache-Control"] == "public, max-age=29030400, immutable"
    etag = r.headers["ETag"]
    r = await client.get(f"/ipfs/{cid}/models/door.glb", headers={"Range": "bytes=100-299999"})
    assert r.status == 206
    assert r.headers["Content-Range"] == f"bytes 100-299999/{len(DATA)}"
    assert await r.read() == DATA[100:300_000]
    r = await client.get(f"/ipfs/{cid}/models/door.glb", headers={"Range": "bytes=-10"})
    assert await r.read() == DATA[-10:]
    r = await client.get(f"/ipfs/{cid}/models/door.glb", headers={"Range": "bytes=999999999-"})
    assert r.status == 416
    r = await client.get(f"/ipfs/{cid}/models/door.glb", headers={"If-None-Match": etag})
    assert r.status == 304
    r = await client.head(f"/ipfs/{cid}/models/door.glb")
    assert r.status == 200
    assert int(r.headers["Content-Length"]) == len(DATA)
    assert await r.read() == b""


async def test_directory_listing_and_redirect(
    client: TestClient, repo: Repo, tmp_path: Path
) -> None:
    cid = repo.add(world(tmp_path)).cid
    r = await client.get(f"/ipfs/{cid}/models", allow_redirects=False)
    assert r.status == 301
    assert r.headers["Location"].endswith("/models/")
    r = await client.get(f"/ipfs/{cid}/")
    assert r.status == 200
    page = await r.text()
    assert "world.json" in page and "models" in page


async def test_trustless_raw_block_and_car(client: TestClient, repo: Repo) -> None:
    cid = repo.add(io.BytesIO(DATA)).cid  # type: ignore[arg-type]
    r = await client.get(f"/ipfs/{cid}", headers={"Accept": "application/vnd.ipld.raw"})
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/vnd.ipld.raw"
    block = await r.read()
    assert cid.verify(block)
    r = await client.get(f"/ipfs/{cid}?format=car")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/vnd.ipld.car")
    car = io.BytesIO(await r.read())
    assert read_header(car).roots == (cid,)
    blocks = list(iter_blocks(car))  # every block verified against its CID
    assert blocks[0][0] == cid
    assert len(blocks) == 4
    r = await client.get(f"/ipfs/{cid}?format=car&dag-scope=block")
    car = io.BytesIO(await r.read())
    read_header(car)
    assert [c for c, _ in iter_blocks(car)] == [cid]
    # child blocks of a pinned DAG are servable on their own, as trustless clients ask for them
    child = blocks[1][0]
    r = await client.get(f"/ipfs/{child}?format=raw")
    assert r.status == 200
    assert child.verify(await r.read())


async def test_unpinned_content_is_not_served(client: TestClient, repo: Repo) -> None:
    cid = repo.add(io.BytesIO(b"not pinned"), pin=False).cid  # type: ignore[arg-type]
    r = await client.get(f"/ipfs/{cid}")
    assert r.status == 404
    assert (await r.json())["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/ipfs/not-a-cid", "invalid_cid"),
        ("/ipfs/QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5O", "invalid_cid"),
        ("/ipfs/{cid}/%2e%2e/%2e%2e/etc/passwd", "bad_request"),
        ("/ipfs/{cid}/a%2Fb", "bad_request"),
        ("/ipfs/{cid}/%ff", "bad_request"),
        ("/ipfs/{cid}?format=tar", "bad_request"),
        ("/ipfs/{cid}?format=car&dag-scope=everything", "bad_request"),
    ],
)
async def test_bad_requests_answer_400_json(
    client: TestClient, repo: Repo, path: str, code: str
) -> None:
    cid = repo.add(io.BytesIO(b"x")).cid  # type: ignore[arg-type]
    # Sent byte for byte: an HTTP client library would normalise the dot segments away.
    status, body = await raw_get(client, path.format(cid=cid))
    assert status == 400
    assert json.loads(body)["error"]["code"] == code
    assert b"Traceback" not in body


async def test_missing_path_is_404_and_corrupt_block_is_500_not_served(
    client: TestClient, repo: Repo, tmp_path: Path
) -> None:
    cid = repo.add(world(tmp_path)).cid
    r = await client.get(f"/ipfs/{cid}/nope.txt")
    assert r.status == 404
    file_cid = repo.exporter.resolve(cid, ["world.json"]).cid
    path = repo.blocks.path_for(file_cid)
    path.write_bytes(path.read_bytes().replace(b"demo", b"evil"))
    r = await client.get(f"/ipfs/{cid}/world.json")
    assert r.status == 500
    body = await r.json()
    assert body["error"]["code"] == "block_corrupted"
    assert "evil" not in str(body)
    assert Cid.parse(str(file_cid)) == file_cid
