"""`LightApi` for the gateway: the directory, HTTP sign-in, join decisions, reports, `/ws`.

Sign-in over HTTP is the WebSocket handshake cut in two requests. `auth_challenge` takes the
client's session key and address and gives it what the `Challenge` frame would (the nonce, 32
random bytes) plus the exact SIWE text to sign, built with `build_entry_message` from this
node's domain, URI and chain id; the pending challenge waits `CHALLENGE_S` under the session
key, one per key, at most `MAX_PENDING`. `auth_verify` takes it out (one try: a second verify
of the same challenge is refused) and checks the proof with `Admission.sign_in`, exactly as a
`Hello` is checked (so the nonce is spent once). The token it returns is 32 random bytes,
kept in memory until the proof expires (`MAX_TOKENS` at most: the oldest go first); a
restart forgets every token, and clients sign in again.

`join` answers the question a WebSocket `Join` would, without seating anyone: the access
decision (`Admission.decide`, fail closed), the manifest (a world whose content cannot be
had is refused as on `/ws`), then where the hub's placement rule would put the visitor now —
an instance here, or another node's gateway when this one is full. The seat itself is taken
on `/ws`, where the seat rule runs; the answer can be stale by then.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from fluxnode.core.errors import EntryProofInvalid, FluxError, NotEnabled, TokenInvalid
from fluxnode.core.light_api import (
    AuthChallenge,
    AuthToken,
    JoinAnswer,
    TokenHolder,
    WorldCard,
    WorldDetail,
)
from fluxnode.core.light_limits import ExpiringTable
from fluxnode.core.session.entry import build_entry_message
from fluxnode.core.session.frames import Challenge, Hello
from fluxnode.core.session.gate import SessionPeer, SessionSink
from fluxnode.core.session.instances import JoinInstance, NoRoom, place
from fluxnode.core.siwe.address import to_checksum_address
from fluxnode.node.light_catalog import WorldCatalog
from fluxnode.node.session_entry import (
    DENIED_MANIFEST,
    Admission,
    SignedInVisitor,
    visitor_id,
)
from fluxnode.node.sessions import SessionService

__all__ = ["CHALLENGE_S", "LightNode"]

CHALLENGE_S: Final = 300.0
MAX_PENDING: Final = 10_000
MAX_TOKENS: Final = 20_000
#: Longest a join decision waits for the world's manifest.
JOIN_MANIFEST_S: Final = 10.0
ALLOWED: Final = "allowed"


class ReportSink(Protocol):
    async def add(
        self,
        *,
        reporter: str,
        world_id: str,
        reason: str,
        subject: str | None = None,
        instance_id: str | None = None,
    ) -> Any: ...


class LightNode:
    """Implements `fluxnode.core.light_api.LightApi` (see the module docstring)."""

    def __init__(
        self,
        service: SessionService,
        catalog: WorldCatalog,
        reports: ReportSink | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.admission: Admission = service.admission
        self.catalog = catalog
        self._reports = reports
        self.clock = clock
        self._pending: ExpiringTable[tuple[Challenge, bytes]] = ExpiringTable(MAX_PENDING)
        self._tokens: ExpiringTable[SignedInVisitor] = ExpiringTable(MAX_TOKENS)
        self.signed_in = 0

    # --- the directory --------------------------------------------------------------------------

    async def world_cards(self) -> Sequence[WorldCard]:
        return await self.catalog.cards()

    async def world_detail(self, world_id: str) -> WorldDetail:
        return await self.catalog.detail(world_id)

    async def world_manifest_json(self, world_id: str) -> Any:
        return await self.catalog.manifest_json(world_id)

    # --- sign-in --------------------------------------------------------------------------------

    async def auth_challenge(self, session_key: bytes, address: str) -> AuthChallenge:
        checksummed = to_checksum_address(address)  # SiweError (400) for a non-address
        now = self.clock()
        challenge = self.admission.challenge()
        message = build_entry_message(
            domain=challenge.domain,
            address=checksummed,
            uri=challenge.uri,
            chain_id=challenge.chain_id,
            nonce=challenge.nonce,
            session_key=session_key,
            issued_at=datetime.fromtimestamp(int(now), UTC),
        )
        expires = now + CHALLENGE_S
        self._pending.put(visitor_id(session_key), (challenge, session_key), expires, now)
        return AuthChallenge(message.to_text(), challenge.nonce, challenge.challenge, expires)

    async def auth_verify(
        self, message: str, signature: bytes, session_key: bytes, possession_signature: bytes
    ) -> AuthToken:
        now = self.clock()
        pending = self._pending.pop(visitor_id(session_key), now)
        if pending is None:
            raise EntryProofInvalid(
                "no_challenge",
                "no pending challenge for this session key: POST /api/auth/challenge first "
                "(challenges last 5 minutes and take one try)",
                http_status=401,
            )
        challenge, _ = pending
        hello = Hello(message, signature, session_key, possession_signature)
        who = await self.admission.sign_in(hello, challenge)
        token = secrets.token_urlsafe(32)
        self._tokens.put(token, who, who.expires_at, now)
        self.signed_in += 1
        return AuthToken(token, who.visitor, who.address, who.expires_at)

    def _holder(self, token: str) -> SignedInVisitor:
        who = self._tokens.get(token, self.clock())
        if who is None:
            raise TokenInvalid("unknown or expired token: sign in again")
        return who

    def token_holder(self, token: str) -> TokenHolder:
        who = self._holder(token)
        return TokenHolder(who.visitor, who.address, who.expires_at)

    # --- join, reports, the socket --------------------------------------------------------------

    async def join(self, token: str, world_id: str) -> JoinAnswer:
        who = self._holder(token)
        reason, record = await self.admission.decide(world_id, who.address)
        if reason is not None or record is None:
            return JoinAnswer(False, reason or DENIED_MANIFEST, world_id)
        try:
            async with asyncio.timeout(JOIN_MANIFEST_S):
                await self.admission.manifest(record)
        except (FluxError, TimeoutError):
            return JoinAnswer(False, DENIED_MANIFEST, world_id)
        hub = self.service.hub
        now = self.clock()
        placement = place(
            world_id,
            hub.directory,
            node=hub.node,
            now=now,
            rtt=hub.rtt,
            local_visitors=hub.local_visitors(),
            max_visitors=hub.max_visitors,
            next_instance=hub.next_instance,
            hosts=self.admission.hosts(record),
        )
        if isinstance(placement, NoRoom):
            return JoinAnswer(False, f"denied: {placement.reason}", world_id)
        if isinstance(placement, JoinInstance):
            instance = None if placement.new else placement.instance_id
            urls = () if hub.gateway_url is None else (hub.gateway_url,)
            return JoinAnswer(True, ALLOWED, world_id, hub.node, instance, urls)
        load = hub.directory.load(placement.node, now)
        urls = () if load is None or load.gateway is None else (load.gateway,)
        return JoinAnswer(
            True, ALLOWED, world_id, placement.node, placement.instance_id, urls, redirect=True
        )

    async def report(
        self,
        token: str,
        world_id: str,
        reason: str,
        subject: str | None,
        instance_id: str | None,
    ) -> int:
        who = self._holder(token)
        if self._reports is None:
            raise NotEnabled("this node does not take reports")
        stored = await self._reports.add(
            reporter=who.address, world_id=world_id, reason=reason, subject=subject,
            instance_id=instance_id,
        )  # fmt: skip
        return int(stored.id)

    async def open_token_session(self, sink: SessionSink, remote: str, token: str) -> SessionPeer:
        return await self.service.open_signed_in(sink, remote, self._holder(token))

    def statistics(self) -> dict[str, Any]:
        return {
            "signed_in": self.signed_in,
            "pending_challenges": len(self._pending),
            "tokens": len(self._tokens),
            "directory_fetches": self.catalog.fetched,
            "directory_fetch_failures": self.catalog.fetch_failures,
        }

    async def aclose(self) -> None:
        await self.catalog.aclose()
