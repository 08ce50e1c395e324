"""Retrieval challenges: only the challenged peer's own failings count against it.

`HostService._challenge` is driven with a fake libp2p host and a fake Bitswap (under trio, as on
the bridge's thread); `Hosting._challenge_one` with a fake `HostClient`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
from libp2p.peer.id import ID

from fluxnode.core.cid import DAG_PB, RAW, Cid
from fluxnode.core.dagpb import encode_link, encode_node
from fluxnode.core.errors import NotFound, PeerError
from fluxnode.core.replication import HostingPolicy, HostingRecord
from fluxnode.node.hosting import Hosting
from fluxnode.node.worlds import WorldDirectory
from fluxnode.p2p import (
    ChallengeOutcome,
    ChallengeResult,
    HostService,
    HostSettings,
    generate_private_key,
    peer_id_from_private_key,
)
from fluxnode.storage.repo import Repo

PEER = peer_id_from_private_key(generate_private_key())


class FakeStore:
    def __init__(self, addrs: list[object]) -> None:
        self._addrs = addrs

    def addrs(self, peer: ID) -> list[object]:
        if not self._addrs:
            raise KeyError("no addresses")  # py-libp2p raises PeerStoreError here
        return self._addrs


class FakeHost:
    def __init__(self, *, connected: bool, dial_error: Exception | None = None) -> None:
        self.connected = connected
        self.dial_error = dial_error

    def get_connected_peers(self) -> list[ID]:
        return [ID.from_base58(PEER)] if self.connected else []

    def get_peerstore(self) -> FakeStore:
        return FakeStore(["/ip4/127.0.0.1/tcp/1"])

    async def connect(self, info: Any) -> None:
        if self.dial_error is not None:
            raise self.dial_error
        self.connected = True


class FakeBitswap:
    """Serves `blocks`; raises `error` for a CID in `fail_on`, dropping the connection first if
    `hang_up`."""

    def __init__(
        self,
        blocks: dict[Cid, bytes],
        host: FakeHost,
        *,
        error: Exception | None = None,
        hang_up: bool = False,
    ) -> None:
        self.blocks, self.host, self.error, self.hang_up = blocks, host, error, hang_up

    async def fetch_block(
        self, cid: Cid, peers: Sequence[str], *, timeout_s: float, remote_only: bool
    ) -> bytes:
        assert list(peers) == [PEER] and remote_only
        if cid in self.blocks:
            return self.blocks[cid]
        if self.hang_up:
            self.host.connected = False
        assert self.error is not None
        raise self.error


def _dag() -> tuple[Cid, dict[Cid, bytes]]:
    """A dag-pb root with one raw leaf."""
    leaf_data = b"leaf block"
    leaf = Cid.v1(RAW, hashlib.sha256(leaf_data).digest())
    root_data = encode_node([encode_link(leaf.to_bytes(), "a", len(leaf_data))], b"")
    root = Cid.v1(DAG_PB, hashlib.sha256(root_data).digest())
    return root, {root: root_data, leaf: leaf_data}


def _challenge(host: FakeHost, bitswap: FakeBitswap | None, root: Cid) -> ChallengeResult:
    service = HostService(HostSettings(private_key=generate_private_key(), listen=()))
    service._host = host  # type: ignore[assignment]
    service.bitswap = bitswap  # type: ignore[assignment]
    return trio.run(service._challenge, root, PEER, 7)


def test_a_peer_that_serves_the_walk_passes() -> None:
    root, blocks = _dag()
    host = FakeHost(connected=True)
    assert _challenge(host, FakeBitswap(blocks, host), root).outcome is ChallengeOutcome.PASSED


def test_a_peer_that_lacks_a_block_or_falls_silent_fails() -> None:
    root, blocks = _dag()
    del blocks[next(c for c in blocks if c != root)]  # it has the root, not the leaf
    for error in (NotFound("no peer has it (DONT_HAVE or timeout)"), PeerError("timed out")):
        host = FakeHost(connected=True)
        result = _challenge(host, FakeBitswap(blocks, host, error=error), root)
        assert result.outcome is ChallengeOutcome.FAILED
        assert str(error) in result.reason


def test_a_failed_dial_is_inconclusive() -> None:
    root, blocks = _dag()
    host = FakeHost(connected=False, dial_error=OSError("connection refused"))
    result = _challenge(host, FakeBitswap(blocks, host), root)
    assert result.outcome is ChallengeOutcome.INCONCLUSIVE
    assert "could not connect" in result.reason


def test_a_connection_lost_mid_walk_is_inconclusive() -> None:
    root, blocks = _dag()
    del blocks[next(c for c in blocks if c != root)]
    host = FakeHost(connected=True)
    bitswap = FakeBitswap(blocks, host, error=NotFound("no peer has it"), hang_up=True)
    assert _challenge(host, bitswap, root).outcome is ChallengeOutcome.INCONCLUSIVE


def test_our_own_bug_is_raised_not_blamed_on_the_peer() -> None:
    root, blocks = _dag()
    del blocks[next(c for c in blocks if c != root)]
    host = FakeHost(connected=True)
    bitswap = FakeBitswap(blocks, host, error=RuntimeError("bug in our code"))
    with pytest.raises(RuntimeError, match="bug in our code"):
        _challenge(host, bitswap, root)


class FakeClient:
    def __init__(self, result: ChallengeResult) -> None:
        self.result = result

    async def challenge(self, cid: Cid, peer: str, seed: int) -> ChallengeResult:
        return self.result


@pytest.mark.parametrize(
    ("outcome", "doubts"),
    [
        (ChallengeOutcome.FAILED, {(PEER, "CID")}),
        (ChallengeOutcome.INCONCLUSIVE, set()),
        (ChallengeOutcome.PASSED, set()),
    ],
)
async def test_only_a_failed_challenge_becomes_a_doubt(
    tmp_path: Path, outcome: ChallengeOutcome, doubts: set[tuple[str, str]]
) -> None:
    root, _ = _dag()
    hosting = Hosting(
        me="me",
        host=FakeClient(ChallengeResult(outcome, "why")),  # type: ignore[arg-type]
        repo=Repo(tmp_path / "repo"),
        worlds=WorldDirectory(oracle=None, own_peer_id="me"),
        policy=HostingPolicy(),
        interval_s=10.0,
        rng=random.Random(1),
    )
    hosting.table.offer(HostingRecord(PEER, frozenset({str(root)}), 0, 100.0, False, frozenset()))
    await hosting._challenge_one(100.0)
    assert hosting.table.my_doubts() == {(p, str(root)) for p, _c in doubts}
    stats = hosting.stats
    assert (stats.challenges_passed, stats.challenges_failed, stats.challenges_inconclusive) == (
        int(outcome is ChallengeOutcome.PASSED),
        int(outcome is ChallengeOutcome.FAILED),
        int(outcome is ChallengeOutcome.INCONCLUSIVE),
    )
