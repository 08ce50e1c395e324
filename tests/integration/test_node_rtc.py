"""The node's own WebRTC data channel in a real `flux-node run` process (loopback ICE through
`FLUX_TEST_LOOPBACK_ICE`, the limit through `FLUX_WEBRTC_MAX_NODE_CHANNELS`), driven by raw
aiortc clients in this process (`tests.unit.rtc_client`) and watched by a WebSocket-only
`Visitor`: transforms over the channel move the visitor as the other sees it, ViewerFrames come
back over it, the node's limit holds, and closing the WebSocket frees the peer connection
(`flux-node status`: sessions.rtc)."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_account import Account

from fluxnode.client import PeerMoved, Visitor
from fluxnode.core.session import frames as fr
from fluxnode.core.session.presence import Transform, ViewerFrame
from fluxnode.node.admin import admin_request
from tests.conftest import NodeFactory, clean_env
from tests.helpers import EXAMPLE_WORLD, publish, write_owner_key
from tests.unit.rtc_client import RtcSession

pytestmark = pytest.mark.slow

MAX_CHANNELS = 2


async def rtc_status(data_dir: Path) -> dict[str, Any]:
    status = await admin_request(data_dir, "GET", "/v0/status")
    return dict(status["sessions"]["rtc"])


async def until_status(data_dir: Path, key: str, want: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while (got := (await rtc_status(data_dir))[key]) != want:
        if time.monotonic() > deadline:
            raise AssertionError(f"sessions.rtc.{key} is {got}, not {want}, after {within:g} s")
        await asyncio.sleep(0.1)


async def test_a_visitor_moves_over_its_data_channel_to_a_real_node(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    env = clean_env(FLUX_TEST_LOOPBACK_ICE="1", FLUX_WEBRTC_MAX_NODE_CHANNELS=str(MAX_CHANNELS))
    node = nodes.start("a", env=env, gateway=True)
    url = node.wait_ready(60)["gateway_url"]
    write_owner_key(tmp_path / "owner.key")
    world = publish(node.data_dir, EXAMPLE_WORLD, tmp_path / "owner.key")["world_id"]
    opened: list[RtcSession] = []

    async def joined() -> RtcSession:
        s = await RtcSession.open(url)
        opened.append(s)
        await s.sign_in_and_join(Account.create().key.hex(), world)
        return s

    try:
        manifest = f"{url}/api/worlds/{world}/manifest"
        async with await Visitor.connect(
            url, Account.create().key.hex(), world_id=world, manifest=manifest, timeout=20.0
        ) as other:
            a, b = await joined(), await joined()
            took = [await a.open_channel(), await b.open_channel()]
            await until_status(node.data_dir, "open", 2)
            a.dc_send(Transform((0.5, 0.0, 5.0)))
            async with asyncio.timeout(10):
                while not (
                    isinstance(e := await other.next_event(), PeerMoved)
                    and e.visitor == a.visitor
                    and e.transform is not None
                    and e.transform.position == (0.5, 0.0, 5.0)
                ):
                    pass
            await other.move((1.0, 0.0, 5.0))
            await b.expect(
                ViewerFrame, lambda f: any(t is not None and t.position == (1.0, 0.0, 5.0)
                                           for t in f.changed.values()), on="dc",
            )  # fmt: skip
            c = await joined()  # over the node's limit
            await c.send(fr.Signal(fr.NODE_PEER, "offer", await c.make_offer()))
            full = await c.expect(fr.Error)
            assert full.code == "rtc_refused" and "no room" in full.message
            status = await rtc_status(node.data_dir)
            assert status["peer_connections"] == MAX_CHANNELS and status["max"] == MAX_CHANNELS
            node_ms = status["open_ms_max"]
            async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
                metrics = await resp.text()
            assert f"flux_node_channels {float(MAX_CHANNELS)}" in metrics
            await a.ws.close()
            await b.ws.close()
            await until_status(node.data_dir, "peer_connections", 0)
            closed = (await rtc_status(node.data_dir))["closed"]
            assert closed == {"websocket_closed": 2}
        print(
            f"channel open (client's view) {statistics.mean(took) * 1000:.0f} ms mean, "
            f"node's view (offer to open) max {node_ms:.0f} ms"
        )
    finally:
        for s in opened:
            await s.close()
