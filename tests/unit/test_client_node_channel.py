"""`Visitor(node_channel=True)` against the real session edge in one process (gateway
WebSocket, `SessionService`, hub, `fluxnode.node.session_rtc`): once `RtcConfig` is known the
visitor offers its node a data channel; its transforms and acks then ride the channel, and the
node's viewer frames come back on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account

from fluxnode.client import PeerMoved, Visitor
from fluxnode.core.session import frames as fr
from tests.unit.mesh_double import until
from tests.unit.test_node_sessions import Edge, edge  # noqa: F401  (the fixture)

HERE = (0.5, 0.0, 5.0)  # a step from the example world's spawn point (0, 0, 5)


pytestmark = pytest.mark.usefixtures("loopback_ice")


async def saw(v: Visitor, match: Callable[[Any], bool], within: float = 10.0) -> Any:
    async with asyncio.timeout(within):
        while not match(event := await v.next_event()):
            pass
        return event


def moved(visitor: str, position: tuple[float, float, float]) -> Callable[[Any], bool]:
    return lambda e: (isinstance(e, PeerMoved) and e.visitor == visitor
                      and e.transform is not None and e.transform.position == position)  # fmt: skip


async def test_transforms_and_viewer_frames_ride_the_node_channel(edge: Edge) -> None:  # noqa: F811
    world = edge.records["public"].world_id
    rtc = edge.service.rtc
    async with (
        await Visitor.connect(edge.url, Account.create().key.hex(), world_id=world,
                              node_channel=True) as v,
        await Visitor.connect(edge.url, Account.create().key.hex(), world_id=world) as other,
    ):  # fmt: skip
        if v.mesh.ice_servers is None:  # a node without the hub's RtcConfig yet: as it would
            await v.mesh.receive(fr.RtcConfig(()))
        await until(lambda: v.mesh.node_channel_open and rtc.statistics()["open"] == 1)
        await v.move(HERE)
        await saw(other, moved(v.visitor, HERE))
        assert v.mesh.stats["channel_sent"] >= 1
        await until(lambda: rtc.statistics()["frames_in"] >= 1)
        frames_out = rtc.statistics()["frames_out"]
        await other.move((1.0, 0.0, 5.0))
        await saw(v, moved(other.visitor, (1.0, 0.0, 5.0)))
        await until(lambda: rtc.statistics()["frames_out"] > frames_out)
