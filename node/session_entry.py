"""Letting a visitor in: the entry proof, the access decision and the world's manifest.

The async half of admission, around the sans-IO `SessionHub`: everything here may wait on the
chain (an EIP-1271 wallet, a cold ticket check) or on the network (a manifest this node does not
hold yet), so it runs before the hub hears of the visitor. Each refusal is one sentence a person
can act on, sent to the client as `Denied(reason)`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from fluxnode.chain.entry import EntryVerifier, verify_session_signature
from fluxnode.core.access import ChainFacts
from fluxnode.core.errors import EntryProofInvalid, FluxError, NotFound, SessionSignatureInvalid
from fluxnode.core.session.bans import UnsignedBanList
from fluxnode.core.session.entry import (
    EntryClaims,
    EntryProof,
    check_possession,
    session_key_resource,
)
from fluxnode.core.session.frames import Challenge, Hello
from fluxnode.core.session.join import Admit, decide_join
from fluxnode.core.world import WorldManifest, parse_manifest
from fluxnode.core.world.limits import MANIFEST_NAME
from fluxnode.core.world_record import WorldRecord
from fluxnode.p2p import HostClient
from fluxnode.storage.repo import Repo

log = logging.getLogger("fluxnode.node.sessions")

DENIED_UNKNOWN_WORLD = "denied: this node does not know that world"
DENIED_MANIFEST = "denied: the world's content could not be fetched; try again"
DENIED_NOT_SIGNED_IN = "denied: sign in first"
#: Manifests kept in memory, by world CID (a few KiB each).
MANIFEST_CACHE = 256
#: Longest wait for a manifest this node does not hold.
MANIFEST_FETCH_S = 15.0


@dataclass(frozen=True)
class SignedInVisitor:
    visitor: str
    address: str
    session_key: bytes
    proof: str
    proof_signature: bytes
    expires_at: float


def visitor_id(session_key: bytes) -> str:
    """The visitor id: the session key as the entry proof's resource spells it."""
    return session_key_resource(session_key).rsplit(":", 1)[1]


class Admission:
    """Entry proofs and join decisions for one node."""

    def __init__(
        self,
        *,
        node: str,
        verifier: EntryVerifier,
        domain: str,
        chain_id: int,
        uri: str,
        repo: Repo,
        host: HostClient,
        record_of: Callable[[str], WorldRecord | None],
        facts: Callable[[WorldRecord, str], Awaitable[ChainFacts | None]] | None,
        bans_of: Callable[[str], UnsignedBanList | None],
        denylist: frozenset[str],
        hosts_of: Callable[[WorldRecord], Iterable[str]],
        owns_item: Callable[[str, int], bool] | None = None,
    ) -> None:
        self.node = node
        self.verifier = verifier
        self.domain, self.chain_id, self.uri = domain, chain_id, uri
        self._repo = repo
        self._host = host
        self._record_of = record_of
        self._facts = facts
        self._bans_of = bans_of
        self._denylist = denylist
        self._hosts_of = hosts_of
        self._owns_item = owns_item
        self._manifests: dict[str, tuple[bytes, WorldManifest]] = {}

    def challenge(self) -> Challenge:
        return Challenge(
            self.node, self.domain, self.chain_id, self.uri, self.verifier.issue_nonce(),
            os.urandom(32),
        )  # fmt: skip

    async def sign_in(self, hello: Hello, challenge: Challenge) -> SignedInVisitor:
        """Check `hello` against the `challenge` this connection got; raises
        `EntryProofInvalid` or `SessionSignatureInvalid` with the failed rule."""
        proof = EntryProof(hello.proof, hello.proof_signature)
        claims: EntryClaims = await self.verifier.admit(proof)
        if claims.nonce != challenge.nonce:
            # Any nonce this node issued would pass the nonce book; this connection's must.
            raise EntryProofInvalid("wrong_nonce", "the entry proof is for another challenge")
        if claims.session_key != hello.session_key:
            raise SessionSignatureInvalid("Hello names another session key than its proof")
        check_possession(
            claims, challenge.challenge, hello.possession_signature, verify_session_signature
        )
        return SignedInVisitor(
            visitor_id(claims.session_key),
            claims.address.lower(),
            claims.session_key,
            hello.proof,
            hello.proof_signature,
            claims.expires_at.timestamp(),
        )

    async def verify_relayed(self, proof: str, signature: bytes, domain: str) -> EntryClaims:
        """The check a member node makes of another node's visitor, who signed for `domain`
        (that node's sign-in domain)."""
        return await self.verifier.verify_relayed(EntryProof(proof, signature), domain=domain)

    async def decide(self, world_id: str, address: str) -> tuple[str | None, WorldRecord | None]:
        """(None, record) when `address` may enter, else (reason, None)."""
        record = self._record_of(world_id)
        if record is None:
            return DENIED_UNKNOWN_WORLD, None
        # No chain configured: facts stay unknown, so only public worlds admit (fail closed).
        facts = None if self._facts is None else await self._facts(record, address)
        decision = decide_join(
            record,
            facts,
            address,
            self._bans_of(world_id),
            self._denylist,
            int(time.time()),
        )
        if isinstance(decision, Admit):
            return None, record
        return decision.reason, None

    def wearables(self, address: str, claimed: Iterable[int]) -> tuple[int, ...]:
        """The claimed FluxItems the chain index says `address` holds (none without a chain):
        others are shown only what the visitor really owns, and asking costs no RPC."""
        if self._owns_item is None:
            return ()
        owns = self._owns_item
        return tuple(sorted({i for i in claimed if owns(address, i)}))

    def hosts(self, record: WorldRecord) -> tuple[str, ...]:
        return tuple(sorted(set(self._hosts_of(record))))

    async def manifest(self, record: WorldRecord) -> WorldManifest:
        """The world's manifest, from the store, else fetched over Bitswap once."""
        return (await self._manifest(record))[1]

    async def manifest_bytes(self, world_id: str) -> bytes:
        record = self._record_of(world_id)
        if record is None:
            raise NotFound(f"this node does not know the world {world_id[:200]}")
        return (await self._manifest(record))[0]

    async def manifest_if_held(self, record: WorldRecord) -> WorldManifest | None:
        """The manifest from the cache or the store, never the network (None if not held)."""
        cached = self._manifests.get(str(record.cid))
        if cached is not None:
            return cached[1]
        if not await asyncio.to_thread(self._repo.is_servable, record.cid):
            return None
        return await self.manifest(record)

    async def _manifest(self, record: WorldRecord) -> tuple[bytes, WorldManifest]:
        key = str(record.cid)
        cached = self._manifests.get(key)
        if cached is not None:
            return cached
        try:
            data = await asyncio.to_thread(self._read_manifest, record)
        except FluxError:
            hints = self.hosts(record)
            await self._host.fetch_world(record.cid, [h for h in hints if h != self.node])
            data = await asyncio.to_thread(self._read_manifest, record)
        entry = (data, parse_manifest(data))
        if len(self._manifests) >= MANIFEST_CACHE:
            self._manifests.pop(next(iter(self._manifests)))
        self._manifests[key] = entry
        return entry

    def _read_manifest(self, record: WorldRecord) -> bytes:
        return b"".join(self._repo.cat(record.cid, [MANIFEST_NAME]))
