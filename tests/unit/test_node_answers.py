"""What the node answers when its p2p host asks: gossip refused until the node is up (a local
state, not the peer's fault), and Bitswap's view of the node's one store (pinned only, minus the
denylist)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from fluxnode.core.denylist import ContentDenied, Denylist
from fluxnode.core.errors import LocalError, NodeStarting
from fluxnode.node.answers import NodeAnswers, dht_record_is_valid
from fluxnode.node.worlds import WORLDS_TOPIC, dht_key
from fluxnode.p2p.messages import GetBlock, PutBlock, ServeBlock, ValidateGossip
from fluxnode.storage.repo import Repo


async def test_gossip_before_the_node_is_up_is_refused_as_a_local_state(tmp_path: Path) -> None:
    answers = NodeAnswers(Repo(tmp_path / "repo"))
    with pytest.raises(NodeStarting, match="node is starting") as info:
        await answers.validate_gossip(ValidateGossip(WORLDS_TOPIC, b"{}", "peer", "author"))
    assert isinstance(info.value, LocalError)


async def test_blocks_are_served_only_if_pinned_and_not_denied(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    pinned = repo.add(io.BytesIO(b"shared\n")).cid
    loose = repo.add(io.BytesIO(b"loose\n"), pin=False).cid
    answers = NodeAnswers(repo)
    assert await answers.serve_block(ServeBlock(pinned)) == repo.blocks.get(pinned)
    assert await answers.serve_block(ServeBlock(loose)) is None
    # our own fetches see every stored block, pinned or not
    assert await answers.get_block(GetBlock(loose)) == repo.blocks.get(loose)

    denied = NodeAnswers(Repo(tmp_path / "repo", denylist=Denylist.parse(f"/ipfs/{pinned}\n", "t")))
    assert await denied.serve_block(ServeBlock(pinned)) is None
    assert await denied.get_block(GetBlock(pinned)) is None


async def test_fetched_blocks_go_to_the_one_store_unless_denied(tmp_path: Path) -> None:
    source = Repo(tmp_path / "source")
    cid = source.add(io.BytesIO(b"fetched\n")).cid
    data = source.blocks.get(cid)
    repo = Repo(tmp_path / "repo")
    await NodeAnswers(repo).put_block(PutBlock(cid, data))
    assert repo.blocks.get(cid) == data

    other = Repo(tmp_path / "other", denylist=Denylist.parse(f"/ipfs/{cid}\n", "t"))
    with pytest.raises(ContentDenied):
        await NodeAnswers(other).put_block(PutBlock(cid, data))
    assert not other.blocks.has(cid)


def test_dht_records_outside_our_namespace_or_malformed_are_invalid() -> None:
    assert not dht_record_is_valid("/other/key", b"{}")
    assert not dht_record_is_valid(dht_key("0xabc/plaza"), b"not a record")
