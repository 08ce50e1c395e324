"""Client errors at the gateway: strict Range parsing, aiohttp's own 400s in our JSON, a header
deadline against slowloris clients, names with a newline, and quiet logs for all of them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fluxnode.core.errors import RangeNotSatisfiable
from fluxnode.gateway import GatewayLimits, make_gateway_app
from fluxnode.gateway.ranges import HUGE, ByteRange, parse_range
from fluxnode.storage.content import RepoContent
from fluxnode.storage.repo import Repo
from tests.unit.gateway_helpers import FakeNode, get, raw_request, serve, wait_for_record

DATA = random.Random(5).randbytes(300_000)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "data")


@pytest.fixture
async def port(repo: Repo) -> AsyncIterator[int]:
    async with serve(make_gateway_app(FakeNode(), RepoContent(repo))) as p:
        yield p


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", ByteRange(0, 10)),
        ("bytes=90-", ByteRange(90, 100)),
        ("bytes=-10", ByteRange(90, 100)),
        ("bytes=-1000", ByteRange(0, 100)),
        ("bytes=10-1000", ByteRange(10, 100)),
        ("BYTES=1-2", ByteRange(1, 3)),
        ("bytes= 1-2 ,", ByteRange(1, 3)),
        ("bytes=00001-00002", ByteRange(1, 3)),
        ("bytes=0-" + "9" * 5000, ByteRange(0, 100)),
        ("bytes=-" + "9" * 5000, ByteRange(0, 100)),
        ("bytes=-", None),
        ("bytes=5-3", None),
        ("bytes=\u0661\u0662-", None),  # Arabic-Indic digits are not DIGIT
        ("bytes=\uff11-\uff12", None),  # nor are fullwidth ones
        ("bytes=+1-2", None),
        ("bytes=1 - 2", None),
        ("bytes=0-1,5-6", None),
        ("bytes=", None),
        ("bytes 0-1", None),
        ("items=0-1", None),
    ],
)
def test_parse_range(header: str, expected: ByteRange | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=" + "9" * 5000 + "-", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)
    assert HUGE > 2**59  # larger than any file a node holds


async def test_range_edge_cases_over_http(
    port: int, repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cid = repo.add(io.BytesIO(DATA)).cid  # type: ignore[arg-type]
    huge = await raw_request(port, get(f"/ipfs/{cid}", "Range: bytes=" + "7" * 5000 + "-"))
    assert huge.status == 416
    assert huge.headers["content-range"] == f"bytes */{len(DATA)}"
    empty = await raw_request(port, get(f"/ipfs/{cid}", "Range: bytes=-"))
    assert (empty.status, empty.body) == (200, DATA)
    arabic = get(f"/ipfs/{cid}").replace(b"\r\n\r\n", "\r\nRange: bytes=\u0661-\r\n\r\n".encode())
    assert (await raw_request(port, arabic)).status == 200
    last = await raw_request(port, get(f"/ipfs/{cid}", "Range: bytes=-" + "1" * 3000))
    assert (last.status, last.body) == (206, DATA)
    stale = await raw_request(port, get(f"/ipfs/{cid}", "Range: bytes=0-9", 'If-Range: "x"'))
    assert (stale.status, stale.body) == (200, DATA)
    fresh = await raw_request(port, get(f"/ipfs/{cid}", "Range: bytes=0-9", f'If-Range: "{cid}"'))
    assert (fresh.status, fresh.body) == (206, DATA[:10])
    no_tracebacks(caplog)


@pytest.mark.parametrize(
    ("head", "status", "code"),
    [
        (b"GARBAGE\r\n\r\n", 400, "bad_request"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400, "bad_request"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (
            b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
            431,
            "request_header_too_large",
        ),
        (
            b"GET /healthz HTTP/1.1\r\n"
            + b"".join(b"X-%d: 1\r\n" % i for i in range(200))
            + b"\r\n",
            431,
            "request_header_too_large",
        ),
    ],
)
async def test_aiohttp_protocol_errors_are_json(
    port: int, caplog: pytest.LogCaptureFixture, head: bytes, status: int, code: str
) -> None:
    caplog.set_level(logging.DEBUG)
    resp = await raw_request(port, head)
    assert resp.status == status
    assert resp.headers["content-type"].startswith("application/json")
    body = json.loads(resp.body)
    assert body["error"]["code"] == code
    assert b"a" * 200 not in resp.body  # the oversized input is not echoed back
    no_tracebacks(caplog)


async def test_a_slow_request_head_is_cut_at_the_header_deadline(repo: Repo) -> None:
    app = make_gateway_app(FakeNode(), RepoContent(repo), GatewayLimits(header_timeout_s=0.5))
    async with serve(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def trickle() -> None:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            try:
                while True:  # one byte at a time, never finishing the head
                    writer.write(b"a")
                    await writer.drain()
                    await asyncio.sleep(0.05)
            except ConnectionError:
                return

        sender = asyncio.create_task(trickle())
        try:
            # The server closes the connection (EOF, no response) well before this bound; on a
            # server without a header deadline the head trickles in for the whole bound.
            async with asyncio.timeout(30):
                assert await reader.read() == b""
        finally:
            sender.cancel()
            writer.close()
        # The deadline applies to request heads only: a prompt request is answered.
        assert (await raw_request(port, get("/healthz"))).status == 200


async def test_names_with_a_newline_are_looked_up(port: int, repo: Repo, tmp_path: Path) -> None:
    folder = tmp_path / "w"
    (folder / "x\ny").mkdir(parents=True)
    (folder / "a\nb.txt").write_bytes(b"newline")
    (folder / "x\ny" / "c.txt").write_bytes(b"inner")
    cid = repo.add(folder).cid
    file = await raw_request(port, get(f"/ipfs/{cid}/a%0Ab.txt"))
    assert (file.status, file.body) == (200, b"newline")
    folder_redirect = await raw_request(port, get(f"/ipfs/{cid}/x%0Ay"))
    assert folder_redirect.status == 301
    assert folder_redirect.headers["location"] == f"/ipfs/{cid}/x%0Ay/"
    inner = await raw_request(port, get(f"/ipfs/{cid}/x%0Ay/c.txt"))
    assert (inner.status, inner.body) == (200, b"inner")
    missing = await raw_request(port, get(f"/ipfs/{cid}/no%0Asuch"))
    assert missing.status == 404
    assert json.loads(missing.body)["error"]["code"] == "path_not_found"


async def test_client_disconnect_mid_stream_is_logged_at_debug(
    port: int, repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    big = random.Random(3).randbytes(16 * 1024 * 1024)
    cid = repo.add(io.BytesIO(big)).cid  # type: ignore[arg-type]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(get(f"/ipfs/{cid}"))
    await reader.readexactly(1024)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.close()  # with linger 0: a reset, as a client that crashed
    await wait_for_record(lambda: caplog.records, lambda r: "client left" in r.getMessage())
    no_tracebacks(caplog)


async def test_a_client_that_stops_reading_is_dropped(
    repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    big = random.Random(4).randbytes(32 * 1024 * 1024)
    cid = repo.add(io.BytesIO(big)).cid  # type: ignore[arg-type]
    app = make_gateway_app(FakeNode(), RepoContent(repo), GatewayLimits(write_stall_s=0.5))
    async with serve(app) as port:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(get(f"/ipfs/{cid}"))
        await wait_for_record(lambda: caplog.records, lambda r: "took no data" in r.getMessage())
        received = 0
        try:  # the server reset the connection: the bytes still buffered here, then an end
            async with asyncio.timeout(30):
                while chunk := await reader.read(1 << 16):
                    received += len(chunk)
        except ConnectionResetError:
            pass
        writer.close()
    assert received < len(big)
