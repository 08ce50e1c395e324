"""Helia's trustless-gateway client fetches and verifies a multi-MiB file from a running node's
gateway, and refuses the same file when a proxy tampers with one block on the way."""

from __future__ import annotations

import hashlib
import http.server
import random
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import NodeFactory, run_cli
from tests.interop import jsref

pytestmark = [pytest.mark.interop, pytest.mark.slow]


@contextmanager
def tampering_proxy(upstream: str, victim: str) -> Iterator[str]:
    """Forward to `upstream`; flip one byte in the raw block of `victim`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            req = urllib.request.Request(upstream + self.path, headers=dict(self.headers))
            with urllib.request.urlopen(req, timeout=30) as resp:
                body = bytearray(resp.read())
                status, headers = resp.status, resp.headers
            if victim in self.path and body:
                body[len(body) // 2] ^= 0x01
            self.send_response(status)
            for key in ("Content-Type", "Cache-Control", "ETag"):
                if headers.get(key):
                    self.send_header(key, headers[key])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(bytes(body))

        def log_message(self, *args: object) -> None:
            return

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 128  # Helia asks for many blocks at once

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_helia_fetches_and_verifies_and_rejects_tampering(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    data = random.Random(21).randbytes(6 * 1024 * 1024 + 12345)
    src = tmp_path / "world.glb"
    src.write_bytes(data)
    a = nodes.start("a", gateway=True)
    url = a.wait_ready()["gateway_url"]
    for version in ("0", "1"):
        out = run_cli(
            "add", "--data-dir", str(a.data_dir), "-q", "--cid-version", version, str(src)
        )
        cid = out.stdout.strip()
        got = jsref.gateway_fetch(url, cid)
        assert got["sha256"] == hashlib.sha256(data).hexdigest()
        assert got["size"] == len(data)
        assert got["blockRequests"] == 26  # 25 leaves + root, each fetched as a raw block

    # Corrupt one leaf of the CIDv0 DAG in transit.
    cid = run_cli("add", "--data-dir", str(a.data_dir), "-q", str(src)).stdout.strip()
    victim = _first_leaf(url, cid)
    with tampering_proxy(url, victim) as proxy:
        with pytest.raises(jsref.JSRefError) as info:
            jsref.gateway_fetch(proxy, cid)
        assert "verif" in info.value.stderr.lower() or "hash" in info.value.stderr.lower()
        # Control: an untouched CID through the same proxy still verifies.
        clean = run_cli("add", "--data-dir", str(a.data_dir), "-q", "-", input="clean\n")
        assert jsref.gateway_fetch(proxy, clean.stdout.strip())["size"] == 6
    a.terminate()


def _first_leaf(url: str, root: str) -> str:
    """The CID of the root's first link, read from the root's raw block."""
    from fluxnode.core.dagpb import decode_node

    with urllib.request.urlopen(f"{url}/ipfs/{root}?format=raw") as resp:
        return str(decode_node(resp.read()).links[0].cid)
