"""The JS reference harness (interop/) agrees with facts nobody here wrote.

Kubo's well-known CIDs pin the importer settings; a CAR written by the harness round-trips
through @ipld/car and ipfs-unixfs-exporter; Helia's trustless-gateway client fetches a file
block by block from a stand-in gateway and refuses a block whose bytes do not match its CID.
The stand-in gateway below is a few lines of stdlib serving the harness's own CAR: it tests
the harness, not our gateway.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop import jsref

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.usefixtures("js_harness")]

HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"  # `hello world\n`, Kubo default
EMPTY_FILE_V0 = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
EMPTY_DIR_V0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def test_kubo_well_known_cids(tmp_path: Path) -> None:
    hello = tmp_path / "hello.txt"
    hello.write_bytes(b"hello world\n")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    empty_dir = tmp_path / "emptydir"
    empty_dir.mkdir()

    out = jsref.unixfs_add(hello, 0)
    assert out["cid"] == HELLO_V0
    assert out["blocks"] == 1
    assert jsref.unixfs_add(empty, 0)["cid"] == EMPTY_FILE_V0
    out = jsref.unixfs_add(empty_dir, 0)
    assert out["cid"] == EMPTY_DIR_V0
    assert out["shardSplitThresholdBytes"] == 262144

    # CIDv1 uses raw leaves: a one-chunk file is a raw block, printed in base32.
    v1 = jsref.unixfs_add(hello, 1)
    assert v1["cid"].startswith("bafkrei")
    assert v1["blocks"] == 1


def _make_tree(root: Path) -> dict[str, Path]:
    """Files spanning several chunks and more than one level, an empty file and dir."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "emptydir").mkdir()
    files = {
        "hello.txt": b"hello world\n",
        "empty": b"",
        # 1 MiB + 4 bytes of distinct chunks: five leaves under one root
        "sub/multi.bin": b"".join(
            hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(32768)
        )
        + b"tail",
        "sub/deeper/small.txt": b"deep\n",
    }
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    return {rel: root / rel for rel in files}


@pytest.mark.parametrize("cid_version", [0, 1])
def test_car_roundtrip(tmp_path: Path, cid_version: int) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    files = _make_tree(tree)

    car = tmp_path / f"tree-v{cid_version}.car"
    added = jsref.unixfs_add(tree, cid_version, car=car)
    root = added["cid"]
    assert root.startswith("Qm" if cid_version == 0 else "bafy")
    assert jsref.unixfs_add(tree, cid_version)["cid"] == root  # deterministic, CAR or not

    read = jsref.car_read(car)
    assert read["roots"] == [root]
    cids = [cid for cid, _size in read["blocks"]]
    assert len(cids) == len(set(cids)) == added["blocks"]
    # Exactly the DAG's blocks, no orphans: 3 one-block files, multi.bin's 5 leaves + root,
    # and 4 directories (root, sub, sub/deeper, emptydir).
    assert added["blocks"] == 3 + 6 + 4
    assert root in cids
    if cid_version == 0:
        assert EMPTY_DIR_V0 in cids and EMPTY_FILE_V0 in cids and HELLO_V0 in cids

    for rel, path in files.items():
        got = jsref.unixfs_cat(car, f"{root}/{rel}")
        assert got == {"sha256": _sha256(path), "size": path.stat().st_size}, rel

    # A single big file: the root is the file itself.
    big = files["sub/multi.bin"]
    car2 = tmp_path / "multi.car"
    added2 = jsref.unixfs_add(big, cid_version, car=car2)
    assert added2["blocks"] == 6  # 4 full 256 KiB chunks + the tail + the root
    assert jsref.car_read(car2)["roots"] == [added2["cid"]]
    assert jsref.unixfs_cat(car2, added2["cid"])["sha256"] == _sha256(big)


@pytest.mark.parametrize("cid_version", [0, 1])
def test_no_orphan_blocks(tmp_path: Path, cid_version: int) -> None:
    """The importer persists an empty-directory node for every directory entry; only a DAG that
    links to it may list it (count and CAR)."""
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f.txt").write_bytes(b"x")
    car = tmp_path / "d.car"
    added = jsref.unixfs_add(d, cid_version, car=car)
    assert added["blocks"] == 3  # f.txt, sub, d
    cids = [cid for cid, _ in jsref.car_read(car)["blocks"]]
    assert len(cids) == 3 and added["cid"] in cids
    empty = tmp_path / "empty"
    empty.mkdir()
    assert jsref.unixfs_add(empty, cid_version)["cid"] not in cids


def test_car_read_rejects_corrupt_block(tmp_path: Path) -> None:
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello world\n")
    car = tmp_path / "hello.car"
    jsref.unixfs_add(src, 0, car=car)
    data = car.read_bytes()
    bad = tmp_path / "bad.car"
    bad.write_bytes(data.replace(b"hello world\n", b"jello world\n"))
    with pytest.raises(jsref.JSRefError, match="do not hash"):
        jsref.car_read(bad)
    with pytest.raises(jsref.JSRefError, match="do not hash"):
        jsref.unixfs_cat(bad, HELLO_V0)


# --- a stand-in trustless gateway (GET /ipfs/{cid}?format=raw) over a CAR's blocks ---


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return n, i


def _car_block_bytes(data: bytes) -> list[bytes]:
    """Block payloads of a CARv1 in file order (CIDs are skipped; car_read names them)."""
    header_len, i = _varint(data, 0)
    i += header_len
    out = []
    while i < len(data):
        section_len, i = _varint(data, i)
        end = i + section_len
        if data[i] == 0x12 and data[i + 1] == 0x20:  # CIDv0: a bare sha2-256 multihash
            j = i + 34
        else:  # CIDv1: version, codec, hash code, digest length, digest
            j = i
            for _ in range(3):
                _, j = _varint(data, j)
            digest_len, j = _varint(data, j)
            j += digest_len
        out.append(data[j:end])
        i = end
    return out


class _Gateway:
    def __init__(self, blocks: dict[str, bytes]) -> None:
        self.blocks = blocks
        self.corrupt: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        gw = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                gw.requests.append((self.path, self.headers.get("Accept")))
                cid = path.removeprefix("/ipfs/")
                body = gw.blocks.get(cid)
                if body is None or query != "format=raw":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if cid in gw.corrupt:
                    body = body[:-1] + bytes([body[-1] ^ 0x01])
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.ipld.raw")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # Helia fetches many blocks at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Gateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def gateway_tree(tmp_path: Path) -> Iterator[tuple[_Gateway, str, dict[str, Path]]]:
    tree = tmp_path / "tree"
    tree.mkdir()
    files = _make_tree(tree)
    car = tmp_path / "tree.car"
    root = jsref.unixfs_add(tree, 1, car=car)["cid"]
    cids = [cid for cid, _ in jsref.car_read(car)["blocks"]]
    payloads = _car_block_bytes(car.read_bytes())
    assert len(payloads) == len(cids)
    with _Gateway(dict(zip(cids, payloads, strict=True))) as gw:
        yield gw, root, files


def test_gateway_fetch_verifies_blocks(
    gateway_tree: tuple[_Gateway, str, dict[str, Path]],
) -> None:
    gw, root, files = gateway_tree
    big = files["sub/multi.bin"]
    got = jsref.gateway_fetch(gw.url, f"{root}/sub/multi.bin")
    assert (got["sha256"], got["size"]) == (_sha256(big), big.stat().st_size)
    assert gw.requests, "no request reached the gateway"
    assert all(p.endswith("?format=raw") for p, _ in gw.requests)
    assert {a for _, a in gw.requests} == {"application/vnd.ipld.raw"}

    # Flip one bit in one leaf of that file: Helia must refuse the block, so the fetch fails.
    leaf_cids = [c for c in gw.blocks if c.startswith("bafkrei") and len(gw.blocks[c]) == 262144]
    assert leaf_cids
    gw.corrupt.add(leaf_cids[0])
    with pytest.raises(jsref.JSRefError, match="failed verification"):
        jsref.gateway_fetch(gw.url, f"{root}/sub/multi.bin")
