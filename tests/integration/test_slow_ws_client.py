"""A WebSocket visitor that stops reading is dropped by the node; 50 others keep receiving.

One real `flux-node run` with its gateway and one public world. The slow client is a raw TCP
socket with a tiny receive buffer that does the WebSocket handshake by hand, signs in, joins,
and from then on neither reads nor writes (a frozen tab, a dead link): the kernel buffers on
both sides fill and the gateway's writer blocks on the socket; its views replace each other in
the queue, and after 8 s with no frame taken the client counts as too slow (the node ticks at
30 Hz, so the buffers fill within a second or two: well before the gateway's 15 s ping or the
node's 30 s silence limit could end the session instead). The test then checks what the node shows —
the drop counted in `/metrics`, a log line saying why, and the connection reset from the node's
side while our receive buffer is still full (a close that waited for us to read would never
come) — and that 50 `fluxnode.client.Visitor`s in the same instance all still receive a
mover's transforms sent after the drop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import socket
import struct
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fluxnode.chain.entry import new_session_key
from fluxnode.client import wallet_from
from fluxnode.client.signin import hello_for
from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire
from tests.conftest import NodeFactory, NodeProc
from tests.helpers import EXAMPLE_WORLD, publish, write_owner_key
from tests.integration.session_visitors import Watched, close_all, moved_to, stranger, visit

pytestmark = pytest.mark.slow

VIEWERS = 50
#: The node ticks fast so the never-acknowledging client's full snapshots (one per tick) fill
#: the buffers in seconds; the 51 other visitors only get a frame when the mover moves.
TICK_HZ = 30
OP_BINARY = 0x2
#: `tcpi_state` values (linux/tcp.h): still open; reset by the peer (a FIN would be CLOSE_WAIT).
TCP_ESTABLISHED, TCP_CLOSE = 1, 7
DROPPED = re.compile(r'^flux_session_clients_dropped_total\{reason="slow"\} (\S+)$', re.M)


class SlowSocket:
    """A WebSocket client on a raw socket (RFC 6455 by hand) that can stop reading for good."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Before connecting, so the window the kernel advertises stays small.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(20.0)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the node")
        self.buf += data

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self) -> fr.Frame:
        """The next session frame (server frames are unmasked and, here, unfragmented)."""
        b0, b1 = self._take(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._take(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._take(8))
        payload = self._take(n)
        assert b0 & 0x0F == OP_BINARY, f"opcode {b0 & 0x0F}: {payload[:80]!r}"
        return wire.decode(payload)

    def expect(self, kind: type[Any]) -> Any:
        while not isinstance(frame := self.read_frame(), kind):
            assert not isinstance(frame, fr.Denied | fr.Error), frame
        return frame

    def send(self, frame: fr.Frame) -> None:
        payload = wire.encode(frame)
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | OP_BINARY])
        if n < 126:
            head += bytes([0x80 | n])
        else:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def tcp_state(self) -> int:
        """The kernel's state of our end of the connection (`tcp_info.tcpi_state`), read
        without touching the bytes waiting in our receive buffer."""
        return self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def join_slowly(port: int, world_id: str) -> tuple[SlowSocket, str]:
    """Sign in and join like any visitor, reading only until `Joined`; then never again."""
    s = SlowSocket(port)
    key = new_session_key()
    challenge = s.expect(fr.Challenge)
    s.send(hello_for(wallet_from(stranger().key.hex()), key, challenge, time.time()))
    s.expect(fr.SignedIn)
    s.send(fr.Join(world_id, None, ()))
    joined = s.expect(fr.Joined)
    return s, str(joined.instance_id)


async def dropped_slow(url: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as r:
        assert r.status == 200
        found = DROPPED.search(await r.text())
    return float(found.group(1)) if found else 0.0


def start_node(nodes: NodeFactory, tmp: Path) -> tuple[NodeProc, str]:
    d = tmp / "a"
    d.mkdir()
    (d / "config.toml").write_text(f"[session]\ntick_hz = {TICK_HZ}\n")
    node = nodes.start("a", gateway=True)
    node.wait_ready(60)
    world = tmp / "world"
    shutil.copytree(EXAMPLE_WORLD, world)
    manifest = json.loads((world / "world.json").read_text())
    manifest["settings"]["maxPlayers"] = VIEWERS + 10  # everyone in one instance
    manifest.pop("$schema", None)
    (world / "world.json").write_text(json.dumps(manifest))
    key = tmp / "owner.key"
    owner = write_owner_key(key)
    publish(node.data_dir, world, key, slug="busy")
    return node, f"{owner.address.lower()}/busy"


async def test_a_client_that_never_reads_is_dropped_while_fifty_keep_receiving(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    node, world_id = start_node(nodes, tmp_path)
    url = str(node.info["gateway_url"])
    port = int(url.rsplit(":", 1)[1].rstrip("/"))
    slow, slow_instance = await asyncio.to_thread(join_slowly, port, world_id)
    seated: list[Watched] = []
    try:
        sem = asyncio.Semaphore(10)

        async def one(label: str) -> Watched:
            async with sem:
                return await visit(url, stranger(), world_id, label)

        seated = list(await asyncio.gather(*(one(f"v{i}") for i in range(VIEWERS + 1))))
        mover, viewers = seated[0], seated[1:]
        assert {v.instance for v in seated} == {slow_instance}, "not all in one instance"
        assert mover.v.joined is not None
        sx, sy, sz = mover.v.joined.spawn.position

        # Until the node drops it (bounded, with the node's log when it does not).
        deadline = time.monotonic() + 90
        step = 0
        while await dropped_slow(url) < 1:
            assert time.monotonic() < deadline, f"never dropped:\n{node.log()[-3000:]}"
            step += 1
            await mover.v.move((sx + 0.1 * (step % 20), sy, sz))
            await asyncio.sleep(0.1)

        # The node ended the connection itself, without waiting for us to read: a reset.
        while (state := slow.tcp_state()) == TCP_ESTABLISHED:
            assert time.monotonic() < deadline, "the node dropped the client but kept its socket"
            await asyncio.sleep(0.1)
        assert state == TCP_CLOSE, f"tcpi_state {state}"
        # Dropped for not reading its socket (the writer was blocked on it), so aborted.
        line = "session client 127.0.0.1 dropped: too slow (its socket took no frame for 8 s; its"
        assert line in node.log(), node.log()[-3000:]

        # Everyone else still gets the mover's transforms, sent after the drop.
        marks = [v.mark() for v in viewers]
        target = (sx + 0.05, sy, sz + 0.1)  # a position the walk above never used
        await mover.v.move(target)
        await asyncio.gather(
            *(
                v.wait_for(moved_to(mover, target), "the mover's step after the drop", 30, m)
                for v, m in zip(viewers, marks, strict=True)
            )
        )
        assert all(v.v.closed_reason is None for v in seated)
        assert await dropped_slow(url) == 1.0
    finally:
        slow.sock.close()
        await close_all(seated)
