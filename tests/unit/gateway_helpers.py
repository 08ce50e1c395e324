"""Running the gateway as the daemon does (GatewayRunner, a TCP site on 127.0.0.1, port 0) and
talking to it byte for byte, so that what a client really receives can be checked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from fluxnode.core.status import NodeStatus
from fluxnode.gateway import GatewayRunner


class FakeNode:
    """NodeApi: the gateway only asks it for status."""

    async def status(self) -> NodeStatus:
        return NodeStatus("12D3KooWtest", (), "0", 1.0)


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[int]:
    """Yield the port of a running gateway; stop it afterwards."""
    runner = GatewayRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_length(self) -> int:
        return int(self.headers["content-length"])


async def raw_request(port: int, head: bytes, *, timeout_s: float = 30.0) -> RawResponse:
    """Send `head` as is and read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        async with asyncio.timeout(timeout_s):
            response = await reader.read()
    finally:
        writer.close()
    head_bytes, _, body = response.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(lines[0].split(" ")[1]), headers, body)


def get(target: str, *extra: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: x", "Connection: close", *extra, "", ""]
    return "\r\n".join(lines).encode()


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """The data of a chunked body, and whether it ended with the terminating chunk."""
    out = bytearray()
    rest = body
    while rest:
        size_line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            return bytes(out), False
        size = int(size_line, 16)
        if size == 0:
            return bytes(out), rest.startswith(b"\r\n")
        if len(rest) < size + 2:
            out += rest[:size]
            return bytes(out), False
        out += rest[:size]
        rest = rest[size + 2 :]
    return bytes(out), False


async def wait_for_record(
    records: Callable[[], list[logging.LogRecord]], pred: Callable[[logging.LogRecord], bool]
) -> logging.LogRecord:
    """Wait (bounded) until a log record matching `pred` shows up."""
    async with asyncio.timeout(30):
        while True:
            for record in records():
                if pred(record):
                    return record
            await asyncio.sleep(0.01)
