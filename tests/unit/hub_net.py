"""An in-memory network of session hubs: a router, clients with real Ed25519 session keys.

Every frame a hub produces goes through `wire.encode`/`wire.decode` on its way (so what the hub
makes is what the wire can carry). Node frames travel on per-link FIFO queues (a libp2p stream
keeps order); a test may hold a link, or deliver the heads of the links in any order it likes.
Directory messages reach every other hub when published. The "edge" of each hub is simulated
here: a VisitorIn is handed to `remote_visitor` with the address and key the test's client
registry holds (what the edge's proof verification would have found).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections import deque
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fluxnode.core.session import wire
from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.frames import Frame, Heartbeat, RtcConfig, VisitorIn
from fluxnode.core.session.hlc import Hlc
from fluxnode.core.session.hub import SessionHub, WorldInfo
from fluxnode.core.session.mesh import FAIL_FOR
from fluxnode.core.session.presence import ViewerFrame, ViewerState
from fluxnode.core.session.state import OpKind, StateOp, move_op
from fluxnode.core.session.visitors import visitor_id
from fluxnode.core.world import parse_manifest

OWNER = "0x" + "c" * 40
WORLD = "land:7"


def manifest(max_players: int = 8) -> object:
    return parse_manifest(
        json.dumps(
            {
                "name": "Test",
                "settings": {"maxPlayers": max_players, "visibility": "public",
                             "spawnPoint": {"x": 0, "y": 0, "z": 0}},
                "objects": [
                    {"id": "door", "type": "door", "properties": {"open": False},
                     "interactions": {"onClick": "toggle:open"},
                     "permissions": {"canModify": True}},
                    {"id": "statue", "type": "cube",
                     "interactions": {"onClick": "toggle:lit"}},
                    {"id": "throne", "type": "cube",
                     "interactions": {"onClick": "toggle:lit"},
                     "permissions": {"canModify": True, "owner": OWNER}},
                    {"id": "crate", "type": "cube", "permissions": {"canMove": True}},
                ],
            }
        ).encode()
    )  # fmt: skip


def world(max_players: int = 8, hosts: tuple[str, ...] = ("h1", "h2", "h3"),
          owner: str | None = None) -> WorldInfo:  # fmt: skip
    return WorldInfo(WORLD, manifest(max_players), hosts, owner)  # type: ignore[arg-type]


def verify_session(key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass
class Client:
    name: str
    key: Ed25519PrivateKey
    address: str
    hub: str
    frames: list[Frame] = field(default_factory=list)
    closes: list[str] = field(default_factory=list)
    view: ViewerState = field(default_factory=ViewerState)
    expires_at: float = 1e12
    _counter: int = 0

    @property
    def public(self) -> bytes:
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def id(self) -> str:
        return visitor_id(self.public)

    def of(self, kind: type) -> list[Frame]:
        return [f for f in self.frames if isinstance(f, kind)]

    def op(self, object_id: str, value: bool, now: float, author: str | None = None,
           prop: str = "open") -> StateOp:  # fmt: skip
        self._counter += 1
        clock = Hlc(int(now * 1000), self._counter, self.id)
        op = StateOp(object_id, OpKind.SET, prop, value, "onClick", clock, author or self.address)
        return dataclasses.replace(op, signature=self.key.sign(op.signing_bytes()))

    def move(self, object_id: str, position: tuple[float, float, float], now: float) -> StateOp:
        self._counter += 1
        op = move_op(object_id, position, self.address.lower(),
                     Hlc(int(now * 1000), self._counter, self.id))  # fmt: skip
        return dataclasses.replace(op, signature=self.key.sign(op.signing_bytes()))

    def chat(self, instance: str, text: str, now: float) -> ChatMessage:
        m = ChatMessage(instance, self.id, text, int(now * 1000))
        return dataclasses.replace(m, signature=self.key.sign(m.signing_bytes()))


class Net:
    def __init__(self, names: tuple[str, ...] = ("h1", "h2"), *, max_visitors: int = 10,
                 member_timeout: float = 10.0, auto: bool = True, rtc: RtcConfig | None = None,
                 mesh_fail_for: float = FAIL_FOR) -> None:  # fmt: skip
        self.now = 1000.0
        self.banned: set[str] = set()
        self.hubs = {
            n: SessionHub(n, verify_session=verify_session,
                          is_banned=lambda w, a: a.lower() in self.banned,
                          max_visitors=max_visitors, gateway_url=f"ws://{n}.test/session",
                          member_timeout=member_timeout, rtc=rtc, mesh_fail_for=mesh_fail_for)
            for n in names
        }  # fmt: skip
        self.links: dict[tuple[str, str], deque[Frame]] = {}
        self.held: set[tuple[str, str]] = set()
        self.clients: dict[str, Client] = {}
        self.auto = auto  # deliver node frames as soon as they are made
        self.rng = random.Random(0)
        self.publish()

    # --- clients ----------------------------------------------------------------------------

    def client(self, name: str, hub: str, address: str | None = None) -> Client:
        seed = name.encode().ljust(32, b"\0")[:32]
        c = Client(name, Ed25519PrivateKey.from_private_bytes(seed),
                   address or "0x" + seed.hex()[:40], hub)  # fmt: skip
        self.clients[c.id] = c
        self.hubs[hub].sign_in(c.id, c.address, c.public, f"proof of {name}", b"sig",
                               c.expires_at, self.now)  # fmt: skip
        self.collect()
        return c

    def join(self, c: Client, w: WorldInfo | None = None) -> None:
        self.hubs[c.hub].join(c.id, w or world(), self.now)
        self.pump()

    def send(self, c: Client, frame: Frame) -> None:
        self.hubs[c.hub].client_frame(c.id, wire.decode(wire.encode(frame)), self.now)
        self.pump()

    # --- the router -------------------------------------------------------------------------

    def collect(self) -> None:
        for name, hub in self.hubs.items():
            for visitor, frame in hub.client_frames():
                c = self.clients[visitor]
                frame = wire.decode(wire.encode(frame))
                c.frames.append(frame)
                if isinstance(frame, ViewerFrame):
                    assert c.view.apply(frame)
            for visitor, reason in hub.client_closes():
                self.clients[visitor].closes.append(reason)
            for peer, frame in hub.node_frames():
                self.links.setdefault((name, peer), deque()).append(wire.decode(wire.encode(frame)))

    def publish(self) -> None:
        for name, hub in self.hubs.items():
            data = hub.directory_to_publish(self.now)
            if data is not None:
                for other in self.hubs.values():
                    if other is not hub:
                        other.directory_message(data, name, self.now)

    def ready(self) -> list[tuple[str, str]]:
        return [k for k, q in self.links.items() if q and k not in self.held and k[1] in self.hubs]

    def deliver(self, link: tuple[str, str], duplicate: bool = False) -> None:
        src, dst = link
        frame = self.links[link][0] if duplicate else self.links[link].popleft()
        hub = self.hubs[dst]
        if isinstance(frame, VisitorIn):
            c = self.clients[frame.visitor]
            hub.remote_visitor(src, frame, c.address, c.public, c.expires_at, self.now)
        else:
            hub.node_frame(src, frame, self.now)
        self.collect()

    def pump(self) -> None:
        self.collect()
        while self.auto and (ready := self.ready()):
            self.deliver(ready[0])
        self.publish()

    def pump_random(self, rng: random.Random, duplicate: float = 0.0) -> None:
        self.collect()
        while ready := self.ready():
            link = rng.choice(ready)
            self.deliver(link, duplicate=rng.random() < duplicate)

    def advance(self, seconds: float, step: float = 0.05) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now = min(end, self.now + step)
            for hub in list(self.hubs.values()):
                timer = hub.get_timer()
                if timer is not None and timer <= self.now:
                    hub.handle_timer(self.now)
            self.pump()

    def tick(self) -> None:
        """One tick period passes for every hub; nothing is delivered (the frames wait)."""
        self.now += max(h.tick_period for h in self.hubs.values())
        for hub in self.hubs.values():
            hub.handle_timer(self.now)
        self.collect()

    def keepalive(self, clients: list[Client], seconds: float) -> None:
        """Let time pass while `clients` send a heartbeat every second."""
        for _ in range(int(seconds)):
            for c in clients:
                self.send(c, Heartbeat())
            self.advance(1.0)
