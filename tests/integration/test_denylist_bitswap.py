"""A denylisted CID is neither served nor stored over Bitswap by a real node process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from fluxnode.core.cid import Cid
from fluxnode.core.denylist import ContentDenied, Denylist
from fluxnode.core.errors import NotFound
from fluxnode.node.answers import NodeAnswers
from fluxnode.p2p import HostClient, HostSettings, generate_private_key
from fluxnode.storage.repo import Repo
from tests.conftest import NodeFactory, run_cli

pytestmark = pytest.mark.slow


async def fetch(data_dir: Path, addr: str, cid: str, denylist: Denylist) -> int:
    settings = HostSettings(
        private_key=generate_private_key(), listen=("/ip4/127.0.0.1/tcp/0",), bitswap=True
    )
    host = HostClient(settings, NodeAnswers(Repo(data_dir, denylist=denylist)))
    await host.start()
    try:
        return await host.bitswap_fetch(Cid.parse(cid), [addr])
    finally:
        await host.aclose()


def test_denylisted_content_is_not_served_or_stored(nodes: NodeFactory, tmp_path: Path) -> None:
    a_dir = tmp_path / "a"
    allowed = run_cli("add", "--data-dir", str(a_dir), "-q", "-", input="fine\n").stdout.strip()
    denied = run_cli("add", "--data-dir", str(a_dir), "-q", "-", input="bad\n").stdout.strip()
    (a_dir / "bad.deny").write_text(f"/ipfs/{denied}\n")
    (a_dir / "config.toml").write_text('[content]\ndenylist = ["bad.deny"]\n')
    a = nodes.start("a")
    addr = a.wait_ready()["addrs"][0]

    # the node serves allowed content, and refuses the denied CID even though it holds it: it
    # answers DONT_HAVE (a live node saying no, not one that stays silent)
    assert asyncio.run(fetch(tmp_path / "b", addr, allowed, Denylist())) == 1
    with pytest.raises(NotFound, match=r"could not be fetched: 1 peer\(s\) answered DONT_HAVE, 0 "):
        asyncio.run(fetch(tmp_path / "c", addr, denied, Denylist()))

    # and a node whose own denylist names a CID never stores it, whoever offers it
    b_deny = Denylist.parse(f"/ipfs/{allowed}\n", "test")
    with pytest.raises(ContentDenied):
        asyncio.run(fetch(tmp_path / "d", addr, allowed, b_deny))
    assert not list((tmp_path / "d" / "blocks").rglob("*.data"))
    status = json.loads(run_cli("status", "--data-dir", str(a_dir)).stdout)
    assert status["peer_id"]
    a.terminate()
