"""Two real nodes as separate OS processes on loopback, and a security negotiation probe."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NodeFactory, run_cli
from tests.helpers import status, wait_for

pytestmark = pytest.mark.slow


def wait_for_peer(data_dir: Path, peer_id: str, timeout: float = 30.0) -> dict[str, Any]:
    wait_for(
        lambda: peer_id in {p["peer_id"] for p in status(data_dir)["peers"]},
        f"{peer_id} to appear in {data_dir} status",
        timeout=timeout,
        detail=lambda: status(data_dir),
    )
    return status(data_dir)


def test_two_processes_bootstrap_ping_and_stop_cleanly(nodes: NodeFactory) -> None:
    a = nodes.start("a", gateway=True)
    a_info = a.wait_ready()
    b = nodes.start("b", "--bootstrap", a_info["addrs"][0])
    b_info = b.wait_ready()
    assert a.pid != b.pid

    st_a = wait_for_peer(a.data_dir, b_info["peer_id"])
    st_b = wait_for_peer(b.data_dir, a_info["peer_id"])
    assert st_a["peer_id"] == a_info["peer_id"]
    assert st_b["peer_id"] == b_info["peer_id"]
    assert st_a["version"] == st_b["version"]
    assert st_a["uptime_s"] > 0
    assert st_a["gateway_url"] == a_info["gateway_url"]
    assert st_a["gateway_url"].startswith("http://127.0.0.1:")

    ping = run_cli("ping", "--data-dir", str(b.data_dir), a_info["peer_id"], "-n", "5")
    assert ping.returncode == 0, ping.stderr
    rtts = json.loads(ping.stdout)["rtts_ms"]
    assert len(rtts) == 5
    assert all(0 < r < 5000 for r in rtts)
    print(f"ping a<-b over loopback: {sorted(rtts)[2]:.3f} ms median")

    for node in (a, b):
        node.terminate()
        assert node.proc.returncode == 0, node.log()
        assert not (node.data_dir / "node.json").exists()
        assert not (node.data_dir / "admin.sock").exists()
        with pytest.raises(ProcessLookupError):
            os.kill(node.pid, 0)
    assert "stopping" in a.log()
    # B's peer store outlives it: A is remembered for the next start
    from libp2p.peer.id import ID

    peers_db = (b.data_dir / "peers.db").read_bytes()
    a_id = ID.from_base58(a_info["peer_id"])
    assert a_id.to_bytes() in peers_db or a_info["peer_id"].encode() in peers_db


def test_bootstrap_retries_until_the_peer_appears(nodes: NodeFactory, tmp_path: Path) -> None:
    # B starts first, pointing at a node that is not there yet; A then comes up on that port.
    init = run_cli("init", "--data-dir", str(tmp_path / "a"))
    a_peer = json.loads(init.stdout)["peer_id"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = nodes.start("b", "--bootstrap", f"/ip4/127.0.0.1/tcp/{port}/p2p/{a_peer}")
    b.wait_ready()
    time.sleep(1.5)  # let B fail and back off at least once
    a = nodes.start("a", "--listen", f"/ip4/127.0.0.1/tcp/{port}")
    a.wait_ready()
    wait_for_peer(b.data_dir, a_peer, timeout=60)
    assert "bootstrap dial failed, retry in" in b.log()
    a.terminate()
    b.terminate()


def _ms_frame(text: str) -> bytes:
    data = text.encode() + b"\n"
    assert len(data) < 128  # one-byte uvarint is enough here
    return bytes([len(data)]) + data


def _ms_read(sock: socket.socket) -> str:
    length = sock.recv(1)[0]
    buf = b""
    while len(buf) < length:
        chunk = sock.recv(length - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf.decode().rstrip("\n")


def _propose(port: int, protocol: str) -> str:
    """Speak multistream-select by hand (no libp2p code) and return the node's answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_ms_frame("/multistream/1.0.0") + _ms_frame(protocol))
        assert _ms_read(sock) == "/multistream/1.0.0"
        return _ms_read(sock)


def test_node_refuses_plaintext_and_secio_and_accepts_noise(nodes: NodeFactory) -> None:
    a = nodes.start("a")
    port = int(a.wait_ready()["addrs"][0].split("/tcp/")[1].split("/")[0])
    assert _propose(port, "/plaintext/2.0.0") == "na"
    assert _propose(port, "/secio/1.0.0") == "na"
    assert _propose(port, "/tls/1.0.0") == "na"
    assert _propose(port, "/noise") == "/noise"
    a.terminate()


def test_plaintext_only_libp2p_peer_cannot_connect(nodes: NodeFactory) -> None:
    """A real py-libp2p host offering only plaintext is refused; the same host with Noise is not."""
    import multiaddr
    import trio
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport

    from fluxnode.p2p.host import muxer_options, security_options

    a = nodes.start("a")
    addr = multiaddr.Multiaddr(a.wait_ready()["addrs"][0])
    results: dict[str, bool] = {}

    async def attempt(label: str, sec: dict) -> None:
        kp = create_new_key_pair()
        host = new_host(key_pair=kp, sec_opt=sec(kp), muxer_opt=muxer_options())
        async with host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            try:
                with trio.fail_after(15):
                    await host.connect(info_from_p2p_addr(addr))
                results[label] = True
            except Exception:
                results[label] = False

    async def main() -> None:
        await attempt("plaintext", lambda kp: {PLAINTEXT_PROTOCOL_ID: InsecureTransport(kp)})
        await attempt("noise", security_options)

    trio.run(main)
    assert results == {"plaintext": False, "noise": True}
    a.terminate()
