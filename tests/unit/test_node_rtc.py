"""The node's own WebRTC data channel (`fluxnode.node.session_rtc`) on the real session edge in
one process (gateway WebSocket, `SessionService`, hub; `test_node_sessions.edge`), with a raw
aiortc client (`rtc_client.RtcSession`) and, for what others see, a WebSocket-only `Visitor`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from eth_account import Account

from fluxnode.client import Visitor
from fluxnode.client.events import PeerMoved
from fluxnode.core.session import frames as fr
from fluxnode.core.session.presence import Transform, ViewerFrame
from fluxnode.core.session.wire import encode
from fluxnode.node.session_rtc import MAX_BAD_FRAMES, MAX_IN_FRAME
from tests.unit.rtc_client import RtcSession
from tests.unit.test_node_sessions import Edge, edge  # noqa: F401  (the fixture)

HERE = (0.5, 0.0, 5.0)  # a step from the example world's spawn point (0, 0, 5)


async def until(check: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """Poll `check` (the node's counters change without telling anyone) for `within` s."""
    try:
        async with asyncio.timeout(within):
            while True:
                if check():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {within:g} s waiting for {what}") from None


class Node:
    """The edge and the raw sessions a test opened on it (closed at the end)."""

    def __init__(self, e: Edge) -> None:
        self.edge, self.url, self.service = e, e.url, e.service
        self.world = e.records["public"].world_id
        self.opened: list[RtcSession] = []

    def rtc(self) -> dict[str, Any]:
        return self.service.rtc.statistics()

    async def session(self) -> RtcSession:
        s = await RtcSession.open(self.url)
        self.opened.append(s)
        return s

    async def joined(self) -> RtcSession:
        s = await self.session()
        await s.sign_in_and_join(Account.create().key.hex(), self.world)
        return s

    async def watcher(self) -> Visitor:
        manifest = self.url + f"/api/worlds/{self.world}/manifest"
        return await Visitor.connect(self.url, Account.create().key.hex(), world_id=self.world,
                                     manifest=manifest)  # fmt: skip


@pytest.fixture
async def node(edge: Edge) -> AsyncIterator[Node]:  # noqa: F811  (the imported fixture)
    n = Node(edge)
    try:
        yield n
    finally:
        for s in n.opened:
            await s.close()


async def saw(v: Visitor, match: Callable[[Any], bool], within: float = 10.0) -> Any:
    async with asyncio.timeout(within):
        while not match(event := await v.next_event()):
            pass
        return event


def moved(visitor: str, position: tuple[float, float, float]) -> Callable[[Any], bool]:
    return lambda e: (
        isinstance(e, PeerMoved)
        and e.visitor == visitor
        and e.transform is not None
        and e.transform.position == position
    )


async def test_an_offer_before_join_is_refused(node: Node) -> None:
    s = await node.session()
    await s.sign_in(Account.create().key.hex())
    await s.send(fr.Signal(fr.NODE_PEER, "offer", await s.make_offer()))
    refused = await s.expect(fr.Error)
    assert refused.code == "rtc_refused" and "join" in refused.message
    assert node.rtc()["peer_connections"] == 0
    assert node.rtc()["refused"] == {"not_seated": 1}


async def test_transforms_over_the_channel_move_the_visitor_and_frames_come_back(
    node: Node,
) -> None:
    s = await node.joined()
    took = await s.open_channel()
    print(f"channel open after {took * 1000:.0f} ms (client's view)")
    await until(lambda: node.rtc()["open"] == 1, "the node to see the channel open")
    async with await node.watcher() as other:
        s.dc_send(Transform(HERE))
        await saw(other, moved(s.visitor, HERE))
        # The other visitor moves: our ViewerFrames now come over the channel.
        await other.move((1.0, 0.0, 5.0))
        frame = await s.expect(
            ViewerFrame, lambda f: any(t is not None and t.position == (1.0, 0.0, 5.0)
                                       for t in f.changed.values()), on="dc",
        )  # fmt: skip
        s.dc_send(fr.Ack(frame.seq))
        s.dc_send(fr.Heartbeat())
        await until(lambda: node.rtc()["frames_in"] >= 3, "Transform, Ack, Heartbeat taken")
    assert not any(isinstance(f, ViewerFrame) and f.seq == frame.seq for f in s.ws_frames)
    assert node.rtc()["bad_frames"] == 0


async def test_garbage_oversized_and_other_frames_on_the_channel_change_nothing(
    node: Node,
) -> None:
    s = await node.joined()
    await s.open_channel()
    async with await node.watcher() as other:
        hub_before = node.service.hub.statistics()
        bad_ws_before = node.service.stats.bad_client_frames
        chat = fr.ChatMessage("x", s.visitor, "hello", 0, b"")
        s.dc_send(b"\xc1 not msgpack")
        s.dc_send(encode(Transform(HERE)) + b"\0" * MAX_IN_FRAME)  # oversized
        s.dc_send(encode(chat))  # chat goes over the WebSocket only
        s.dc_send(encode(fr.Leave()))
        s.dc_send(encode(fr.Join(node.world)))
        s.dc.send("a text message")  # type: ignore[union-attr]
        await until(lambda: node.rtc()["bad_frames"] == 6, "six frames counted as bad")
        assert node.service.hub.statistics() == hub_before
        assert node.service.stats.bad_client_frames == bad_ws_before
        assert node.rtc()["frames_in"] == 0 and node.rtc()["open"] == 1
        # Still seated and still moving: a good frame after the bad ones is taken.
        s.dc_send(Transform(HERE))
        await saw(other, moved(s.visitor, HERE))
    assert all(not room.chat.history() for room in node.service.hub.rooms.values())


async def test_a_client_that_keeps_sending_bad_frames_loses_its_channel_not_its_session(
    node: Node,
) -> None:
    s = await node.joined()
    await s.open_channel()
    for _ in range(MAX_BAD_FRAMES + 1):
        s.dc_send(b"\xc1")
    closed = await s.expect(fr.Error, lambda e: "too many" in e.message)
    assert closed.code == "rtc_refused"
    await until(lambda: node.rtc()["peer_connections"] == 0, "the channel closed")
    assert node.rtc()["closed"] == {"bad_frames": 1}
    async with asyncio.timeout(10):
        await s.dc_closed.wait()
    # The WebSocket session goes on; ViewerFrames come over it again.
    async with await node.watcher() as other:
        await other.move((1.0, 0.0, 5.0))
        await s.expect(ViewerFrame, lambda f: bool(f.changed))
    assert not s.ws_closed.is_set()


async def test_transforms_over_the_channel_meet_the_same_checks(node: Node) -> None:
    s = await node.joined()
    await s.open_channel()
    since = len(s.ws_frames)
    s.dc_send(Transform((1e6, 0.0, 5.0)))  # far outside the world
    refused = await s.expect(fr.Error, since=since)
    assert refused.code == "transform_rejected"


async def test_closing_the_websocket_closes_the_peer_connection(node: Node) -> None:
    s = await node.joined()
    await s.open_channel()
    assert node.rtc()["peer_connections"] == 1
    await s.ws.close()
    await until(lambda: node.rtc()["peer_connections"] == 0, "the peer connection freed")
    assert node.rtc()["closed"] == {"websocket_closed": 1}
    async with asyncio.timeout(10):
        await s.dc_closed.wait()


async def test_leaving_the_instance_closes_the_peer_connection(node: Node) -> None:
    s = await node.joined()
    await s.open_channel()
    await s.send(fr.Leave())
    await until(lambda: node.rtc()["peer_connections"] == 0, "the peer connection freed")
    assert node.rtc()["closed"] == {"left": 1}


async def test_max_channels_is_enforced_and_a_new_offer_replaces_the_old(node: Node) -> None:
    node.service.rtc.max_channels = 1
    a = await node.joined()
    await a.open_channel()
    b = await node.joined()
    await b.send(fr.Signal(fr.NODE_PEER, "offer", await b.make_offer()))
    full = await b.expect(fr.Error)
    assert full.code == "rtc_refused" and "no room" in full.message
    first_dc = a.dc
    await a.open_channel()  # the same visitor again: replaces its channel, within the limit
    assert node.rtc()["peer_connections"] == 1 and node.rtc()["closed"] == {"replaced": 1}
    assert first_dc is not None
    await until(lambda: first_dc.readyState == "closed", "the first channel closed")


async def test_a_channel_that_never_connects_is_freed(node: Node) -> None:
    node.service.rtc.connect_timeout_s = 0.3
    s = await node.joined()
    await s.send(fr.Signal(fr.NODE_PEER, "offer", await s.make_offer()))
    await s.expect(fr.Signal)  # the answer, which this client never applies
    await until(lambda: node.rtc()["peer_connections"] == 0, "the pending channel freed")
    assert node.rtc()["closed"] == {"timeout": 1}


async def test_an_offer_with_media_or_a_wrong_channel_is_refused(node: Node) -> None:
    s = await node.joined()
    await s.send(fr.Signal(fr.NODE_PEER, "offer", "v=0\r\nnot an offer"))
    assert "offer" in (await s.expect(fr.Error)).message
    since = len(s.ws_frames)
    await s.send(fr.Signal(fr.NODE_PEER, "answer", "v=0"))
    assert "offers only" in (await s.expect(fr.Error, since=since)).message
    since = len(s.ws_frames)
    await s.open_channel(ordered=True, wait_open=False)
    wrong = await s.expect(fr.Error, lambda e: "unordered" in e.message, since=since)
    assert wrong.code == "rtc_refused"
    assert node.rtc()["peer_connections"] == 1 and node.rtc()["open"] == 0


async def test_offers_are_rate_limited(node: Node) -> None:
    s = await node.joined()
    offer = await s.make_offer()
    for _ in range(4):
        await s.send(fr.Signal(fr.NODE_PEER, "offer", offer))
    limited = await s.expect(fr.Error, lambda e: "too many offers" in e.message)
    assert limited.code == "rtc_refused"
    assert node.rtc()["refused"] == {"rate": 1} and node.rtc()["peer_connections"] == 1


async def test_stopping_closes_every_peer_connection(node: Node) -> None:
    a, b = await node.joined(), await node.joined()
    await a.open_channel()
    await b.open_channel()
    assert node.rtc()["peer_connections"] == 2
    await node.service.rtc.aclose()
    assert node.rtc()["peer_connections"] == 0
    assert node.rtc()["closed"] == {"node_stopping": 2}
