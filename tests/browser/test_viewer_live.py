"""The viewer in headless Chromium against a real running node (its gateway, its session
WebSocket), with a Python `fluxnode.client.Visitor` in the same world.

The page loads docs/examples/hello-world through the trustless routes (every block hashed in
the browser), signs in with an injected EIP-1193 wallet (eth-account signing in this process),
joins, sees the Python visitor in "who is here" and its avatar move, opens the door with a
click (the Python visitor receives the state change, and the page sees the Python visitor's
click back), chats both ways; a second page signs in with the dev wallet. A screenshot is kept
(under $FLUX_TEST_ARTIFACTS if set, else the test's tmp dir). A private world shows the node's
refusal, and a gateway that flips a byte of a block makes the page show a verification error
instead of the world.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from eth_account import Account

from fluxnode.chain.records import sign_record
from fluxnode.client import Chat, PeerJoined, PeerMoved, StateChanged, Visitor
from fluxnode.core.session.join import DENIED_PRIVATE
from tests.browser.conftest import (
    PageLog,
    inject_wallet,
    keep_screenshot,
    new_account,
    new_page,
    open_world,
    until,
    wait_state,
    world_page_url,
)
from tests.browser.gltf_samples import triangle_glb, triangle_gltf
from tests.conftest import NodeFactory, run_cli
from tests.helpers import EXAMPLE_WORLD, publish, write_owner_key
from tests.unit.gateway_helpers import serve

pytestmark = [pytest.mark.slow, pytest.mark.interop]


async def start_node(nodes: NodeFactory, tmp_path: Path) -> tuple[str, Path, Path]:
    node = nodes.start("alice", gateway=True)
    info = await asyncio.to_thread(node.wait_ready)
    key_file = tmp_path / "owner.key"
    write_owner_key(key_file)
    return str(info["gateway_url"]), node.data_dir, key_file


async def test_viewer_meets_a_python_visitor(
    nodes: NodeFactory, tmp_path: Path, browser: Any, artifacts: Path
) -> None:
    gateway, data_dir, key_file = await start_node(nodes, tmp_path)
    world = await asyncio.to_thread(publish, data_dir, EXAMPLE_WORLD, key_file)
    world_id, cid = world["world_id"], world["cid"]
    manifest = EXAMPLE_WORLD / "world.json"
    py = await Visitor.connect(gateway, new_account().key.hex(), world_id=world_id,
                               manifest=str(manifest))  # fmt: skip
    try:
        wallet = new_account()
        page, log = await new_page(browser)
        await inject_wallet(page, wallet)
        await open_world(page, log, world_page_url(gateway, world_id, cid), "#signin-injected")
        verified = await page.inner_text("#verified")
        assert cid in verified and "block(s) verified" in verified
        me = await page.evaluate("window.fluxViewer.session.replica.visitor")

        # Each side sees the other.
        joined = await until(py, lambda e: isinstance(e, PeerJoined) and e.visitor == me,
                             "PeerJoined of the browser")  # fmt: skip
        assert isinstance(joined, PeerJoined) and joined.address == wallet.address.lower()
        row = page.locator(f'#who li[data-visitor="{py.visitor}"]')
        await row.wait_for()
        assert await row.get_attribute("data-address") == py.address
        assert await row.locator("button.silence").count() == 0  # only the owner gets one

        # The Python visitor moves; the page's list and the avatar in the scene follow.
        for position in ((1.0, 0.0, 3.0), (2.0, 0.0, 1.5)):
            await py.move(position)
            shown = ",".join(f"{c:.2f}" for c in position)
            await page.wait_for_function(
                """([v, shown, pos]) => {
                  const li = document.querySelector(`#who li[data-visitor="${v}"]`);
                  const a = window.fluxViewer.view.avatars.get(v);
                  return li?.dataset.position === shown && a?.target &&
                         a.target.toArray().every((c, i) => Math.abs(c - pos[i]) < 1e-9);
                }""",
                arg=[py.visitor, shown, list(position)],
            )

        # The page walks forward (W held): the Python visitor sees the browser's avatar move.
        await page.focus("#scene")
        await page.keyboard.down("w")
        walked = await until(py, lambda e: isinstance(e, PeerMoved) and e.visitor == me
                             and e.transform is not None and e.transform.position[2] < 4.5,
                             "the browser's avatar walking")  # fmt: skip
        await page.keyboard.up("w")
        assert isinstance(walked, PeerMoved) and walked.transform is not None
        assert walked.transform.anim == "walk"

        # A click on the door: a signed op the Python visitor's replica accepts.
        point = await page.evaluate("window.fluxViewer.view.screenPoint('door-1')")
        await page.mouse.click(point["x"], point["y"])
        change = await until(py, lambda e: isinstance(e, StateChanged) and e.object_id == "door-1",
                             "the door's state change")  # fmt: skip
        assert change == StateChanged("door-1", "open", True, wallet.address.lower())
        assert py.replica is not None and py.replica.state is not None
        assert py.replica.state.value("door-1", "open") is True
        # ...and the Python visitor's click closes it again in the page.
        await py.interact("door-1")
        await page.wait_for_function(
            """() => { const v = window.fluxViewer;
                       const door = v.manifest.objects.find((o) => o.id === "door-1");
                       return v.session.replica.value(door, "open") === false; }"""
        )

        # Chat both ways.
        await page.fill("#chat-input", "hello from chromium")
        await page.press("#chat-input", "Enter")
        said = await until(py, lambda e: isinstance(e, Chat) and e.visitor == me, "the page's chat")
        assert isinstance(said, Chat) and said.text == "hello from chromium"
        await py.say("hello from python")
        line = page.locator(f'#chat-log li[data-visitor="{py.visitor}"] .text')
        await line.wait_for()
        assert await line.inner_text() == "hello from python"

        # A second tab signs in with the dev wallet (the node's chain 80002 is a test chain).
        context = await browser.new_context()
        dev_page = await context.new_page()
        dev_log = PageLog()
        dev_page.on("pageerror", lambda e: dev_log.lines.append(f"pageerror: {e}"))
        await open_world(dev_page, dev_log, world_page_url(gateway, world_id, cid), "#signin-dev")
        dev = await dev_page.evaluate(
            """() => ({ visitor: window.fluxViewer.session.replica.visitor,
                        address: window.fluxViewer.session.replica.address,
                        stored: localStorage.getItem("flux.devWallet.v1") })"""
        )
        assert dev["stored"] is not None and dev["address"] != wallet.address
        await page.locator(f'#who li[data-visitor="{dev["visitor"]}"]').wait_for()
        assert await page.inner_text("#who-count") == "3"
        await context.close()

        # The node refused none of the page's frames (each refusal is a notice in the log).
        assert await page.locator("#chat-log li.notice").all_inner_texts() == []

        shot = await keep_screenshot(page, artifacts, "viewer-live")
        assert shot.stat().st_size > 10_000
    finally:
        await py.close()


async def test_viewer_shows_why_entry_was_refused(
    nodes: NodeFactory, tmp_path: Path, browser: Any
) -> None:
    gateway, data_dir, key_file = await start_node(nodes, tmp_path)
    args = ["publish", "--data-dir", str(data_dir), str(EXAMPLE_WORLD), "--slug", "secret",
            "--key-file", str(key_file), "--visibility", "private",
            "--allow", "0x" + "11" * 20]  # fmt: skip
    out = await asyncio.to_thread(run_cli, *args)
    assert out.returncode == 0, out.stderr
    world = json.loads(out.stdout)
    page, log = await new_page(browser)
    await inject_wallet(page, new_account())
    await page.goto(world_page_url(gateway, world["world_id"], world["cid"]))
    await wait_state(page, "signin", log=log)
    await page.click("#signin-injected")
    assert await wait_state(page, "denied", "joined", "error", log=log) == "denied"
    assert await page.get_attribute("#error", "data-kind") == "denied"
    assert await page.inner_text("#error") == DENIED_PRIVATE


@asynccontextmanager
async def tampering_proxy(
    upstream: str, keep: str, *, flip: bool, record: dict[str, Any] | None = None
) -> AsyncIterator[str]:
    """An HTTP proxy to `upstream` that, when `flip`, changes the last byte of every raw block
    it relays except the one of `keep` (the root), so the root verifies and the next block
    does not. With `record`, it answers `GET /api/worlds/<id>` with it, as the directory
    route does (`{"world": ..., "record": ...}`)."""
    http = aiohttp.ClientSession(auto_decompress=False)

    async def world_detail(request: web.Request) -> web.Response:
        return web.json_response(
            {"world": {"world_id": request.match_info["id"]}, "record": record}
        )

    async def relay(request: web.Request) -> web.Response:
        async with http.get(upstream + request.path_qs, headers={
            k: v for k, v in request.headers.items() if k.lower() in ("accept", "accept-encoding")
        }) as r:  # fmt: skip
            body = bytearray(await r.read())
            raw = request.path.startswith("/ipfs/") and request.query.get("format") == "raw"
            if flip and raw and not request.path.startswith(f"/ipfs/{keep}") and body:
                body[-1] ^= 0x01
            headers = {k: v for k, v in r.headers.items()
                       if k.lower() in ("content-type", "content-encoding", "etag")}  # fmt: skip
            return web.Response(status=r.status, body=bytes(body), headers=headers)

    app = web.Application()
    if record is not None:
        app.router.add_get("/api/worlds/{id:.+}", world_detail)
    app.router.add_route("GET", "/{tail:.*}", relay)
    try:
        async with serve(app) as port:
            yield f"http://127.0.0.1:{port}"
    finally:
        await http.close()


@pytest.mark.parametrize("flip", [False, True], ids=["honest", "flips-a-byte"])
async def test_a_lying_gateway_shows_a_verification_error(
    nodes: NodeFactory, tmp_path: Path, browser: Any, flip: bool
) -> None:
    gateway, data_dir, key_file = await start_node(nodes, tmp_path)
    world = await asyncio.to_thread(publish, data_dir, EXAMPLE_WORLD, key_file)
    async with tampering_proxy(gateway, world["cid"], flip=flip) as proxy:
        page, log = await new_page(browser)
        await page.goto(world_page_url(proxy, world["world_id"], world["cid"]))
        # The proxy relays no WebSocket: an honest one gets as far as the session.
        await wait_state(page, "signin", "closed", "error", log=log)
        kind = await page.get_attribute("body", "data-error")
        if flip:
            assert kind == "verification", str(log)
            text = await page.inner_text("#error")
            assert text.startswith("Verification failed: block ")
            assert text.endswith("the gateway sent bytes that do not match their CID")
            assert await page.inner_text("#verified") == ""
            assert await page.evaluate("window.fluxViewer.view") is None
        else:
            assert kind != "verification", str(log)
            assert "block(s) verified" in await page.inner_text("#verified")


async def test_viewer_shows_gltf_models_through_verified_blocks(
    nodes: NodeFactory, tmp_path: Path, browser: Any
) -> None:
    world_dir = tmp_path / "models-world"
    (world_dir / "models").mkdir(parents=True)
    (world_dir / "models" / "tri.glb").write_bytes(triangle_glb())
    gltf, bin_bytes = triangle_gltf("tri%20data.bin")
    (world_dir / "models" / "tri.gltf").write_bytes(gltf)
    (world_dir / "models" / "tri data.bin").write_bytes(bin_bytes)
    objects = [{"id": "glb", "type": "model", "position": {"x": -1, "y": 1, "z": 0},
                "properties": {"model": "models/tri.glb"}},
               {"id": "gltf", "type": "model", "position": {"x": 1, "y": 1, "z": 0},
                "properties": {"model": "models/tri.gltf"}}]  # fmt: skip
    manifest = {"name": "Models", "settings": {"maxPlayers": 4, "visibility": "public"},
                "objects": objects}  # fmt: skip
    (world_dir / "world.json").write_text(json.dumps(manifest))
    gateway, data_dir, key_file = await start_node(nodes, tmp_path)
    world = await asyncio.to_thread(publish, data_dir, world_dir, key_file, slug="models")
    page, log = await new_page(browser)
    await page.goto(world_page_url(gateway, world["world_id"], world["cid"]))
    await wait_state(page, "signin", log=log)
    loaded = await page.wait_for_function(
        """() => {
          const objects = window.fluxViewer.view.objects;
          const meshes = (id) => { let n = 0;
            objects.get(id).node.traverse((o) => { if (o.isMesh && o.name === "triangle") n++; });
            return n; };
          const done = ["glb", "gltf"].every((id) => objects.get(id).node.userData.model);
          return done && { glb: meshes("glb"), gltf: meshes("gltf"),
                           blocks: window.fluxViewer.fetcher.stats.blocks };
        }"""
    )
    shown = await loaded.json_value()
    assert shown["glb"] == 1 and shown["gltf"] == 1, str(log)
    # world.json and three asset files, each its own verified block, plus the folders'.
    assert shown["blocks"] >= 6


@pytest.mark.parametrize("signer", ["owner", "someone-else"])
async def test_the_page_finds_the_world_from_its_signed_record(
    nodes: NodeFactory, tmp_path: Path, browser: Any, signer: str
) -> None:
    gateway, data_dir, key_file = await start_node(nodes, tmp_path)
    owner = Account.from_key(key_file.read_text().strip())
    world = await asyncio.to_thread(publish, data_dir, EXAMPLE_WORLD, key_file)
    account = owner if signer == "owner" else new_account()
    record = sign_record(world_id=world["world_id"], cid=world["cid"], seq=world["seq"],
                         visibility="public", issued_at=int(time.time()),
                         account=account)  # fmt: skip
    async with tampering_proxy(gateway, world["cid"], flip=False, record=record.to_json()) as proxy:
        page, log = await new_page(browser)
        await page.goto(world_page_url(proxy, world["world_id"]))  # no ?cid: the record says
        await wait_state(page, "signin", "closed", "error", log=log)
        if signer == "owner":
            verified = await page.inner_text("#verified")
            assert verified.startswith(f"{world['cid']} (from record signed by its owner)")
        else:
            assert await page.get_attribute("body", "data-error") == "verification"
            text = await page.inner_text("#error")
            owner_id = world["world_id"].split("/")[0]
            assert text == (f"Verification failed: the world record is signed by {account.address},"
                            f" not the world's owner {owner_id}")  # fmt: skip


async def test_the_owner_silences_a_visitor_from_the_who_is_here_list(
    nodes: NodeFactory, tmp_path: Path, browser: Any
) -> None:
    gateway, data_dir, key_file = await start_node(nodes, tmp_path)
    world = await asyncio.to_thread(publish, data_dir, EXAMPLE_WORLD, key_file)
    world_id, cid = world["world_id"], world["cid"]
    owner = Account.from_key(key_file.read_text().strip())
    py = await Visitor.connect(gateway, new_account().key.hex(), world_id=world_id,
                               manifest=str(EXAMPLE_WORLD / "world.json"))  # fmt: skip
    try:
        page, log = await new_page(browser)
        await inject_wallet(page, owner)
        await open_world(page, log, world_page_url(gateway, world_id, cid), "#signin-injected")
        button = page.locator(f'#who li[data-visitor="{py.visitor}"] button.silence')
        await button.wait_for()
        assert await button.inner_text() == "Silence"

        async def silenced_is(value: bool) -> None:
            async with asyncio.timeout(20):
                while True:
                    plan = py.mesh.plan
                    if plan is not None and (py.visitor in plan.silenced) is value:
                        return
                    await asyncio.sleep(0.05)

        # The page signs a Silence; the node checks it is the owner's and drops the Python
        # visitor's audio from every plan, which names it silenced.
        await button.click()
        await silenced_is(True)
        await page.locator(
            f'#who li[data-visitor="{py.visitor}"][data-voice="silenced"] button.silence'
        ).wait_for()
        assert await button.inner_text() == "Let speak"
        await button.click()
        await silenced_is(False)
        assert await page.locator("#chat-log li.notice").all_inner_texts() == []
    finally:
        await py.close()
