"""`/flux/session/1` between real hosts on 127.0.0.1: order, limits, floods and peer loss."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import multiaddr
import pytest
from libp2p.abc import IHost
from libp2p.peer.peerinfo import info_from_p2p_addr

from fluxnode.core.cid import encode_varint
from fluxnode.core.errors import BadRequest, NotEnabled, PeerError
from fluxnode.p2p import (
    HostClient,
    HostSettings,
    Request,
    ServiceIO,
    TrioBridge,
    generate_private_key,
)
from fluxnode.p2p.host import build_host
from fluxnode.p2p.messages import SessionFrame, SessionLinkStats, SessionPeerDown
from fluxnode.p2p.session_frames import (
    MAX_LINK_FRAME,
    PROTOCOL,
    SessionLinkLimits,
    encode_frames,
)
from tests.integration.conftest import Host, Hosts, wait_for_peers

pytestmark = pytest.mark.slow
WAIT_S = 20.0


@dataclass
class Inbox:
    """Every session event a host emitted, collected by a background task."""

    frames: dict[str, list[bytes]] = field(default_factory=dict)
    downs: list[str] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def collect(self, client: HostClient) -> None:
        async for event in client.events():
            async with self.changed:
                if isinstance(event, SessionFrame):
                    self.frames.setdefault(event.peer_id, []).append(event.data)
                elif isinstance(event, SessionPeerDown):
                    self.downs.append(event.peer_id)
                self.changed.notify_all()

    def got(self, peer: Host) -> list[bytes]:
        return self.frames.get(peer.info.peer_id, [])

    async def wait(self, what: str, predicate: Callable[[], bool]) -> None:
        try:
            async with asyncio.timeout(WAIT_S), self.changed:
                await self.changed.wait_for(predicate)
        except TimeoutError:
            pytest.fail(f"timed out waiting for {what}")


@contextlib.asynccontextmanager
async def inboxes(*hosts: Host) -> AsyncIterator[list[Inbox]]:
    boxes = [Inbox() for _ in hosts]
    pairs = zip(boxes, hosts, strict=True)
    tasks = [asyncio.create_task(box.collect(h.client)) for box, h in pairs]
    try:
        yield boxes
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def wait_for_status(
    host: Host, what: str, predicate: Callable[[SessionLinkStats], bool]
) -> SessionLinkStats:
    """Poll the link's counters (they have no event) until `predicate`, bounded by WAIT_S."""
    for _ in range(int(WAIT_S / 0.05)):
        stats = await host.client.session_link_status()
        if predicate(stats):
            return stats
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def peer_stats(stats: SessionLinkStats, peer: Host) -> Any:
    (one,) = [p for p in stats.peers if p.peer_id == peer.info.peer_id]
    return one


async def linked(hosts: Hosts, *names: str, **kwargs: Any) -> list[Host]:
    """Hosts with the session link on, each dialling the first one; all connected."""
    first = await hosts.start(names[0], session_link=True, **kwargs)
    rest = [await hosts.start(n, (first.addr,), session_link=True) for n in names[1:]]
    await wait_for_peers(first, *rest)
    return [first, *rest]


def batch(tag: str, i: int, n: int = 3) -> tuple[bytes, ...]:
    return tuple(f"{tag}-{i}-{k}".encode() for k in range(n))


async def test_frames_cross_both_ways_between_three_hosts_in_order_per_peer(
    hosts: Hosts,
) -> None:
    a, b, c = await linked(hosts, "a", "b", "c")
    await wait_for_peers(b, a)
    await c.client.connect(b.addr)
    everyone = [a, b, c]
    async with inboxes(*everyone) as boxes:

        async def talk(src: Host, dst: Host) -> None:
            for i in range(40):  # one batch per "tick", back to back
                await src.client.session_send(dst.info.peer_id, batch(src.info.peer_id, i))

        await asyncio.gather(*(talk(s, d) for s in everyone for d in everyone if s is not d))
        for dst, box in zip(everyone, boxes, strict=True):
            for src in everyone:
                if src is dst:
                    continue
                want = [f for i in range(40) for f in batch(src.info.peer_id, i)]
                await box.wait(
                    f"120 frames at {dst}", lambda box=box, src=src: len(box.got(src)) >= 120
                )
                assert box.got(src) == want
    stats = await a.client.session_link_status()
    assert (stats.frames_in, stats.frames_out) == (240, 240)
    assert stats.streams_out == 2
    assert stats.dropped_rate == stats.dropped_queue == stats.send_failed == 0


@dataclass(frozen=True)
class RawWrite(Request[str]):
    """Open a session stream to `addr`, write `data` as is, and say how the stream ended."""

    addr: str
    data: bytes


class RawPeer:
    """A bare libp2p host that writes whatever bytes it is told on `/flux/session/1`; with
    `sink`, it also accepts session streams and never reads them (a stalled peer). Ready with
    its (peer ID, address)."""

    def __init__(self, *, sink: bool = False) -> None:
        self._sink = sink
        self._host: IHost | None = None
        self._io: ServiceIO | None = None

    async def serve(self, io: ServiceIO) -> None:
        settings = HostSettings(generate_private_key(), ("/ip4/127.0.0.1/tcp/0",))
        host = build_host(settings)
        async with host.run(listen_addrs=[multiaddr.Multiaddr(a) for a in settings.listen]):
            self._host, self._io = host, io
            if self._sink:
                host.set_stream_handler(PROTOCOL, self._hold)  # type: ignore[arg-type]
            peer = str(host.get_id())
            io.ready((peer, f"{host.get_addrs()[0]}"))
            await io.sleep_forever()

    async def _hold(self, stream: Any) -> None:
        assert self._io is not None
        await self._io.sleep_forever()

    async def handle(self, request: Request[Any]) -> object:
        assert isinstance(request, RawWrite) and self._host and self._io
        info = info_from_p2p_addr(multiaddr.Multiaddr(request.addr))
        await self._host.connect(info)
        stream = await self._host.new_stream(info.peer_id, [PROTOCOL])  # type: ignore[list-item]
        await stream.write(request.data)
        try:
            with self._io.fail_after(WAIT_S):
                while await stream.read(1024):
                    pass
        except TimeoutError:
            return "still open"
        except Exception as exc:  # what a reset looks like to the writer
            return f"reset ({type(exc).__name__})"
        return "closed cleanly"


async def test_an_oversized_frame_resets_that_stream_only_and_others_keep_flowing(
    hosts: Hosts,
) -> None:
    a, b = await linked(hosts, "a", "b")
    raw: TrioBridge[tuple[str, str]] = TrioBridge(RawPeer(), name="flux-trio-raw")
    raw_id, _ = await raw.start()
    try:
        async with inboxes(a) as (at_a,):
            await b.client.session_send(a.info.peer_id, (b"before",))
            data = encode_frames([b"fine"]) + encode_varint(MAX_LINK_FRAME + 1) + b"x" * 100
            ended = await raw.call(RawWrite(f"{a.addr}", data))
            assert ended.startswith("reset")
            await b.client.session_send(a.info.peer_id, (b"after", b"still"))
            await at_a.wait("b's frames", lambda: len(at_a.got(b)) == 3)
            await at_a.wait("raw peer down", lambda: raw_id in at_a.downs)
        assert at_a.got(b) == [b"before", b"after", b"still"]
        assert at_a.frames.get(raw_id) == [b"fine"]  # what came before the bad prefix
        assert b.info.peer_id not in at_a.downs
        assert (await a.client.session_link_status()).reset_oversized == 1
    finally:
        await raw.aclose()


async def test_a_flooding_peer_is_rate_limited_while_another_peer_gets_through(
    hosts: Hosts,
) -> None:
    limits = SessionLinkLimits(frames_per_s=20, frame_burst=20)
    a, flood, calm = await linked(hosts, "a", "flood", "calm", session_limits=limits)
    async with inboxes(a) as (at_a,):
        for i in range(4):  # back to back, in order: the calls of one peer are not reordered
            await flood.client.session_send(a.info.peer_id, batch("flood", i, 50))
        for i in range(5):
            await calm.client.session_send(a.info.peer_id, batch("calm", i, 2))
        await at_a.wait("calm's 10 frames", lambda: len(at_a.got(calm)) == 10)
        assert at_a.got(calm) == [f for i in range(5) for f in batch("calm", i, 2)]

        def flood_counted(stats: SessionLinkStats) -> bool:
            f = peer_stats(stats, flood)
            return bool(f.frames_in + f.dropped_rate == 200)

        stats = await wait_for_status(a, "all 200 flood frames counted", flood_counted)
    f = peer_stats(stats, flood)
    assert f.dropped_rate >= 100  # a burst of 20 and 20/s: the flood took well under 4 s
    assert peer_stats(stats, calm).dropped_rate == 0
    assert stats.dropped_rate == f.dropped_rate
    # What got through came in the order it was sent, the first burst complete.
    sent = [f for i in range(4) for f in batch("flood", i, 50)]
    got = at_a.got(flood)
    assert len(got) == f.frames_in
    assert got[:20] == sent[:20]
    assert [sent.index(x) for x in got] == sorted(sent.index(x) for x in got)


async def test_frames_the_node_cannot_take_are_dropped_and_counted(hosts: Hosts) -> None:
    a, b = await linked(hosts, "a", "b")
    # Nobody consumes A's events: its event window (256) fills and the rest are dropped.
    for i in range(6):
        await b.client.session_send(a.info.peer_id, batch("b", i, 50))
    stats = await wait_for_status(
        a, "300 frames counted", lambda s: s.frames_in + s.dropped_queue == 300
    )
    assert (stats.frames_in, stats.dropped_queue) == (256, 44)
    assert a.client.statistics().events_dropped == 44


async def test_a_host_closing_is_reported_once_and_sends_to_it_then_fail(hosts: Hosts) -> None:
    a, b = await linked(hosts, "a", "b")
    async with inboxes(a) as (at_a,):
        await b.client.session_send(a.info.peer_id, (b"hi",))
        await a.client.session_send(b.info.peer_id, (b"hi back",))
        await at_a.wait("b's frame", lambda: at_a.got(b) == [b"hi"])
        await b.client.aclose()
        await at_a.wait("b down", lambda: b.info.peer_id in at_a.downs)
        with pytest.raises(PeerError, match="session send to"):
            await a.client.session_send(b.info.peer_id, (b"anyone?",))
    assert at_a.downs == [b.info.peer_id]


async def test_bad_sends_are_refused_and_change_nothing(hosts: Hosts) -> None:
    a, b = await linked(hosts, "a", "b")
    with pytest.raises(BadRequest, match="exceeds"):
        await a.client.session_send(b.info.peer_id, (b"x" * (MAX_LINK_FRAME + 1),))
    with pytest.raises(BadRequest, match="not a peer ID"):
        await a.client.session_send("not-a-peer-0OIl", (b"x",))
    with pytest.raises(BadRequest, match="ourselves"):
        await a.client.session_send(a.info.peer_id, (b"x",))
    stats = await a.client.session_link_status()
    assert (stats.frames_out, stats.streams_out, stats.send_failed) == (0, 0, 0)


async def test_the_link_is_off_unless_enabled(hosts: Hosts) -> None:
    plain = await hosts.start("plain")
    with pytest.raises(NotEnabled, match="session link"):
        await plain.client.session_link_status()


async def test_a_stopped_host_closes_its_connections_at_once(hosts: Hosts) -> None:
    a = await hosts.start("a")
    b = await hosts.start("b", (a.addr,))
    await wait_for_peers(a, b)
    await b.client.aclose()
    for _ in range(int(WAIT_S / 0.05)):
        if not await a.client.peers():
            return
        await asyncio.sleep(0.05)
    pytest.fail("the stopped host's connection stayed open")


async def test_a_stalled_peer_fails_fast_and_never_holds_up_the_others(hosts: Hosts) -> None:
    limits = SessionLinkLimits(send_queue=2, write_timeout_s=60.0)
    a, b = await linked(hosts, "a", "b", session_limits=limits)
    sink: TrioBridge[tuple[str, str]] = TrioBridge(RawPeer(sink=True), name="flux-trio-sink")
    sink_id, sink_addr = await sink.start()
    big = (b"s" * MAX_LINK_FRAME,)
    sends: list[asyncio.Task[None]] = []
    try:
        await a.client.connect(sink_addr)
        # The sink never reads, so A's stream to it can take one window (256 KiB: 3 frames
        # and most of a 4th) and its writer then blocks. Of 12 sends at most 5 are taken
        # (3 written, 2 queued, counting the one being written); the rest fail at once.
        sends = [asyncio.create_task(a.client.session_send(sink_id, big)) for _ in range(12)]
        async with asyncio.timeout(WAIT_S):
            while sum(t.done() for t in sends) < 10:
                pending = [t for t in sends if not t.done()]
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finished = [t for t in sends if t.done()]
        errors = [t.exception() for t in finished]
        assert all(e is None or "is full" in str(e) for e in errors)
        assert sum(isinstance(e, PeerError) for e in errors) >= 7
        assert not all(t.done() for t in sends)  # the stuck write is still waiting
        # Meanwhile another peer's ticks flow as ever.
        async with inboxes(b) as (at_b,):
            for i in range(10):
                await a.client.session_send(b.info.peer_id, (f"tick {i}".encode(),))
            await at_b.wait("a's ticks at b", lambda: len(at_b.got(a)) == 10)
        assert at_b.got(a) == [f"tick {i}".encode() for i in range(10)]
        assert (await a.client.session_link_status()).send_queue_full >= 7
    finally:
        for task in sends:
            task.cancel()
        await asyncio.gather(*sends, return_exceptions=True)
        await sink.aclose()
