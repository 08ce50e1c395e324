"""A TEST DOUBLE of a home node's `GET /session` WebSocket, for testing `fluxnode.client`.

It is not the node: it speaks the session protocol faithfully for one visitor at a time, with
scripted answers per world, so the client's handling of every frame can be tested before (and
apart from) the real gateway endpoint. What it does check is checked for real: the `Hello`
goes through `fluxnode.chain.entry.EntryVerifier` (nonce issued here and spent, domain, chain,
URI, expiry against a fixed clock, the wallet's signature) and `check_possession` with the
real Ed25519 verification, so a client that signs wrongly is refused as a node would refuse it.

Worlds (the scripts a test picks by world id):

- ``land:1`` (and any id in `open_worlds`): `Joined` at `spawn`, then `StateSnapshot` (one
  door op and one chat line, both signed by `BOB`'s session key) and a full `ViewerFrame`
  with Bob in it;
- ``land:2``: `Denied("denied: no valid ticket for this world")`;
- ``land:3``: `RedirectTo` another double (`redirect_to`), which seats the visitor in land:3;
- ``land:4``: `RedirectTo` itself again on every join (a redirect loop);
- anything else: `Denied("denied: no such world")`.

Everything the visitor sends after `Hello` lands in `received` (an asyncio queue); the test
pushes frames with `send` and `send_raw`. A visitor may connect again (a reconnect): each
connection signs in anew and `session_keys` lists the key each one named. The manifest route
`GET /api/worlds/{id}/manifest` serves `manifests` (world id -> bytes; 404 otherwise) and
records the ids asked for in `manifest_asks`. With `close_on` set to a frame type, the double
closes the session once the visitor sent one; with `snapshot_after`, it holds back what follows
`Joined` (snapshot, viewer frame) until the visitor sent a frame of that type.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import WSMsgType, web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fluxnode.chain.entry import (
    EntryVerifier,
    new_session_key,
    session_public_key,
    sign_session,
    verify_session_signature,
)
from fluxnode.core.errors import EntryProofInvalid, FrameInvalid, SessionSignatureInvalid
from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire
from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.entry import EntryProof, check_possession
from fluxnode.core.session.hlc import Hlc
from fluxnode.core.session.presence import Transform, ViewerFrame
from fluxnode.core.session.state import OpKind, StateOp
from fluxnode.core.world import parse_manifest

CHAIN = 80002
T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
NOW = T0.timestamp()
INSTANCE = "inst-1"
BOB_ADDRESS = "0x" + "b" * 40
MANIFEST_BYTES = json.dumps(
    {
        "name": "Door world",
        "settings": {
            "maxPlayers": 8,
            "visibility": "public",
            "spawnPoint": {"x": 1, "y": 0, "z": 1},
        },
        "objects": [
            {
                "id": "door",
                "type": "door",
                "properties": {"open": False},
                "interactions": {"onClick": "toggle:open", "onEnter": 'set:color="red"'},
                "permissions": {"canModify": True},
            },
            {"id": "statue", "type": "cube", "interactions": {"onClick": "toggle:lit"}},
            {
                "id": "throne",
                "type": "cube",
                "interactions": {"onClick": "toggle:lit"},
                "permissions": {"canModify": True, "owner": "0x" + "c" * 40},
            },
        ],
    }
).encode()
MANIFEST = parse_manifest(MANIFEST_BYTES)
SPAWN = Transform((1.0, 0.0, 1.0))


def visitor_id(key: Ed25519PrivateKey) -> str:
    return base64.urlsafe_b64encode(session_public_key(key)).rstrip(b"=").decode()


@dataclass
class Peer:
    """Another visitor the double shows (Bob): a real session key, so his ops verify."""

    key: Ed25519PrivateKey = field(default_factory=new_session_key)
    address: str = BOB_ADDRESS

    @property
    def visitor(self) -> str:
        return visitor_id(self.key)

    def door_op(self, value: bool, wall_ms: int) -> StateOp:
        op = StateOp("door", OpKind.SET, "open", value, "onClick",
                     Hlc(wall_ms, 0, self.visitor), self.address)  # fmt: skip
        return StateOp(op.object_id, op.kind, op.prop, op.value, op.trigger, op.hlc, op.author,
                       sign_session(self.key, op.signing_bytes()))  # fmt: skip

    def chat(self, text: str, sent_ms: int, instance: str = INSTANCE) -> ChatMessage:
        m = ChatMessage(instance, self.visitor, text, sent_ms)
        return ChatMessage(m.instance, m.author, m.text, m.sent_ms,
                           sign_session(self.key, m.signing_bytes()))  # fmt: skip


class NodeDouble:
    def __init__(self, node_id: str = "node-a", clock: Callable[[], datetime] = lambda: T0) -> None:
        self.node_id = node_id
        self.clock = clock  # the verifier's: a visitor in another process uses the real one
        self.port = 0
        self.bob = Peer()
        self.redirect_to: str | None = None
        self.verifier: EntryVerifier | None = None
        self.received: asyncio.Queue[fr.Frame] = asyncio.Queue()
        self.signed_in: list[str] = []  # addresses admitted, in order
        self.challenge_override: fr.Challenge | None = None
        self.first_frame: bytes | None = None  # sent instead of the Challenge when set
        self.close_on: type | None = None
        self.snapshot_after: type | None = None
        self._held: list[fr.Frame] = []
        self.open_worlds = {"land:1"}
        self.spawn = SPAWN
        self.manifests: dict[str, bytes] = {"land:1": MANIFEST_BYTES}
        self.manifest_asks: list[str] = []
        self.session_keys: list[bytes] = []
        self._ws: web.WebSocketResponse | None = None
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/session", self._session)
        app.router.add_get("/api/worlds/{world_id:.+}/manifest", self._manifest)
        return app

    async def _manifest(self, request: web.Request) -> web.Response:
        world_id = request.match_info["world_id"]
        self.manifest_asks.append(world_id)
        data = self.manifests.get(world_id)
        if data is None:
            raise web.HTTPNotFound(text="no such world")
        return web.Response(body=data, content_type="application/json")

    async def send(self, frame: fr.Frame) -> None:
        assert self._ws is not None
        await self._ws.send_bytes(wire.encode(frame))

    async def send_raw(self, data: bytes | str) -> None:
        assert self._ws is not None
        if isinstance(data, str):
            await self._ws.send_str(data)
        else:
            await self._ws.send_bytes(data)

    async def next_of(self, kind: type) -> fr.Frame:
        """The next received frame of type `kind` (others before it are skipped)."""
        while True:
            frame = await self.received.get()
            if isinstance(frame, kind):
                return frame

    async def close_visitor(self, code: int = 1000, message: bytes = b"") -> None:
        assert self._ws is not None
        await self._ws.close(code=code, message=message)

    async def _session(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=wire.MAX_FRAME)
        await ws.prepare(request)
        self._ws = ws
        self.connected.set()
        try:
            await self._serve(ws)
        finally:
            self.closed.set()
        return ws

    def entry_verifier(self) -> EntryVerifier:
        """This node's verifier: one per node, so a nonce it issued is spent for good."""
        if self.verifier is None:
            domain = f"127.0.0.1:{self.port}"
            self.verifier = EntryVerifier(
                domain=domain, chain_id=CHAIN, uri_prefix=f"http://{domain}/session",
                clock=self.clock,
            )  # fmt: skip
        return self.verifier

    async def _serve(self, ws: web.WebSocketResponse) -> None:
        domain = f"127.0.0.1:{self.port}"
        verifier = self.entry_verifier()
        if self.first_frame is not None:
            await ws.send_bytes(self.first_frame)
            await ws.close()
            return
        challenge = self.challenge_override or fr.Challenge(
            self.node_id, domain, CHAIN, f"http://{domain}/session", verifier.issue_nonce(),
            b"\x07" * 32,
        )  # fmt: skip
        await ws.send_bytes(wire.encode(challenge))
        hello = wire.decode(await ws.receive_bytes())
        assert isinstance(hello, fr.Hello)
        try:
            claims = await verifier.admit(EntryProof(hello.proof, hello.proof_signature))
            if claims.session_key != hello.session_key:
                raise SessionSignatureInvalid("Hello names another session key than the proof")
            check_possession(claims, challenge.challenge, hello.possession_signature,
                             verify_session_signature)  # fmt: skip
        except (EntryProofInvalid, SessionSignatureInvalid) as exc:
            reason = exc.reason if isinstance(exc, EntryProofInvalid) else exc.code
            await ws.send_bytes(wire.encode(fr.Denied(f"denied: entry proof refused ({reason})")))
            await ws.close()
            return
        self.signed_in.append(claims.address)
        self.session_keys.append(claims.session_key)
        me = base64.urlsafe_b64encode(claims.session_key).rstrip(b"=").decode()
        expires = int(claims.expires_at.timestamp() * 1000)
        await ws.send_bytes(wire.encode(fr.SignedIn(me, claims.address, expires)))
        async for msg in ws:
            if msg.type is not WSMsgType.BINARY:
                break
            try:
                frame = wire.decode(msg.data)
            except FrameInvalid as exc:
                await ws.send_bytes(wire.encode(fr.Error(exc.code, str(exc))))
                continue
            await self.received.put(frame)
            if self.close_on is not None and isinstance(frame, self.close_on):
                await ws.close()
                return
            if self._held and self.snapshot_after and isinstance(frame, self.snapshot_after):
                for held in self._held:
                    await self.send(held)
                self._held.clear()
            if isinstance(frame, fr.Join):
                await self._join(ws, frame.world_id)

    async def _join(self, ws: web.WebSocketResponse, world_id: str) -> None:
        bob = self.bob
        if world_id in self.open_worlds or (world_id == "land:3" and self.redirect_to is None):
            await self.send(fr.Joined(world_id, INSTANCE, self.node_id, 3, self.spawn))
            then = [
                fr.StateSnapshot(
                    INSTANCE,
                    (bob.door_op(True, int(NOW * 1000) - 5000),),
                    (bob.chat("hi there", int(NOW * 1000) - 4000),),
                ),
                ViewerFrame(
                    1,
                    None,
                    {bob.visitor: Transform((1.0, 0.0, 1.0))},  # beside us, at the spawn
                    (),
                    {bob.visitor: {"address": bob.address, "avatar": "a1"}},
                ),
            ]
            if self.snapshot_after is not None:
                self._held = then
                return
            for frame in then:
                await self.send(frame)
        elif world_id == "land:2":
            await self.send(fr.Denied("denied: no valid ticket for this world"))
        elif world_id == "land:3":
            await self.send(fr.RedirectTo("node-b", (self.redirect_to or "",), INSTANCE))
        elif world_id == "land:4":
            await self.send(fr.RedirectTo(self.node_id, (self.url,), None))
        else:
            await self.send(fr.Denied("denied: no such world"))


@asynccontextmanager
async def running(double: NodeDouble) -> AsyncIterator[NodeDouble]:
    """Serve `double` on 127.0.0.1 (port 0) until the block ends."""
    runner = web.AppRunner(double.app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        double.port = int(runner.addresses[0][1])
        yield double
    finally:
        await runner.cleanup()
