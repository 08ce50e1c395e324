"""One room's WebRTC side: signalling between its visitors, their mesh plans, silencing.

A `RoomMesh` belongs to a `fluxnode.core.session.room.Room` and speaks through the room's
outbox (docs/session-protocol.md, "WebRTC: meshes, the node's data channel, voice"):

- a local visitor's `Signal` goes to a visitor seated in the same instance: as a `Signal`
  (its ``peer`` now the sender) to a local one, as a `SignalRelay` to the member node that
  seated a remote one. Offers, answers and candidates pass only on links in the sender's
  current plan; ``bye`` and ``failed`` always pass, and ``failed`` marks the pair failed here
  (and on the target's node, which sees it go by). Each visitor may signal 20 times a second
  (a burst of 40). Anything else is refused with `SignalRefused` and nothing is sent;
- a member's `SignalRelay` is taken only for a ``source`` that member seated and a ``target``
  seated here (its budget, ``signal``, is the hub guard's);
- each local visitor is sent its `MeshPlan` when it changes (`fluxnode.core.session.mesh`) and
  the node's `RtcConfig` right after `Joined`; a node without WebRTC sends neither and relays
  no signals;
- `MeshStatus` says which peers a visitor holds open data channels to: the room's viewer
  frames leave those peers' transforms out (`skip`) while the plan carries data to them;
- `Silence` from the world owner's visitor, signed with its session key, is checked here and
  relayed to every member, which checks it again itself; a later `sent_ms` per target wins,
  so a replayed frame changes nothing; a node that becomes a member later gets them from the
  owner visitor's node. An operator's silence (`operator`, shared with the hub)
  is this node's alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fluxnode.core.errors import SignalRefused, SilenceRefused
from fluxnode.core.session.entry import SessionVerify
from fluxnode.core.session.frames import (
    LINK_DATA,
    NODE_PEER,
    MeshStatus,
    RtcConfig,
    Signal,
    SignalRelay,
    Silence,
)
from fluxnode.core.session.mesh import FAIL_FOR, MeshState
from fluxnode.core.session.visitors import Visitor, session_key_of

if TYPE_CHECKING:
    from fluxnode.core.session.room import Room

_ALWAYS = ("bye", "failed")


class RoomMesh:
    """See the module docstring; `rtc` None means WebRTC is off on this node."""

    def __init__(self, room: Room, rtc: RtcConfig | None, verify: SessionVerify,
                 operator: set[str], *, fail_for: float = FAIL_FOR) -> None:  # fmt: skip
        self.room = room
        self.rtc = rtc
        self.verify = verify
        self.operator = operator
        self.state = MeshState(fail_for=fail_for)
        self.connected: dict[str, frozenset[str]] = {}
        self.owner_silence: dict[str, Silence] = {}  # target -> the newest silence of it

    # --- plans ------------------------------------------------------------------------------

    def joined(self, visitor: str) -> None:
        """Right after `Joined`: the ICE servers, and the plan at the next check."""
        if self.rtc is not None:
            self.room.out.to_client(visitor, self.rtc)
            self.state.resend(visitor)

    def silenced(self) -> set[str]:
        return {t for t, s in self.owner_silence.items() if s.on} | self.operator

    def tick(self, now: float) -> None:
        if self.rtc is None:
            return
        room = self.room
        local = [vid for vid, v in room.local.items() if v.seated and v.connected]
        for gone in [v for v in self.connected if v not in room.local]:
            del self.connected[gone]
        self.state.set_silenced(self.silenced())
        positions = {p.visitor: p.transform.position for p in room.presence.entries()}
        for visitor, plan in self.state.plans_to_send(positions, local, now):
            room.out.to_client(visitor, plan)

    def skip(self, viewer: str) -> frozenset[str]:
        """Peers whose transforms `viewer` gets over its own data channels, not from us."""
        open_ = self.connected.get(viewer)
        if not open_:
            return frozenset()
        return frozenset(p for p in open_ if self.state.linked(viewer, p) & LINK_DATA)

    def status(self, v: Visitor, frame: MeshStatus) -> None:
        self.connected[v.id] = frozenset(frame.connected)

    # --- signalling -------------------------------------------------------------------------

    def client_signal(self, v: Visitor, frame: Signal, now: float) -> None:
        """Forward `v`'s signal or raise `SignalRefused` (nothing sent)."""
        room = self.room
        if frame.peer == NODE_PEER:
            raise SignalRefused("no node channel here")
        if self.rtc is None:
            raise SignalRefused("this node does not relay WebRTC signals")
        if not v.signal_rate.allow(now):
            wait = v.signal_rate.retry_after(now)
            raise SignalRefused(f"too many signals; wait {wait:.1f} s")
        local = room.local.get(frame.peer)
        remote = room.remote.get(frame.peer)
        if frame.peer == v.id or (remote is None and (local is None or not local.seated)):
            raise SignalRefused(f"{frame.peer[:60]!r} is not a visitor of your instance")
        if frame.kind not in _ALWAYS and not self.state.linked(v.id, frame.peer):
            raise SignalRefused(f"no link to {frame.peer[:60]!r} in your mesh plan")
        if frame.kind == "failed":
            self.state.fail(v.id, frame.peer, now)
        if remote is not None:
            relay = SignalRelay(room.instance, v.id, frame.peer, frame.kind, frame.payload)
            room.out.to_node(remote.owner, relay)
        elif local is not None and local.connected:
            room.out.to_client(local.id, Signal(v.id, frame.kind, frame.payload))
        else:
            raise SignalRefused(f"{frame.peer[:60]!r} is not connected now")

    def relay_signal(self, peer: str, frame: SignalRelay, now: float) -> None:
        """A member's `SignalRelay` (its budget already spent); refused ones are counted."""
        room = self.room
        refused = room.out.refused
        if self.rtc is None:
            refused["signal_webrtc_off"] += 1
            return
        source = room.remote.get(frame.source)
        target = room.local.get(frame.target)
        if source is None or source.owner != peer:
            refused["forged_signal"] += 1
            return
        if target is None or not target.seated or not target.connected:
            refused["signal_unknown_target"] += 1
            return
        if frame.kind == "failed":
            self.state.fail(frame.source, frame.target, now)
        room.out.to_client(target.id, Signal(frame.source, frame.kind, frame.payload))

    # --- silencing --------------------------------------------------------------------------

    def _check_silence(self, frame: Silence, author_address: str | None, key: bytes | None) -> str:
        """Why `frame` may not be applied, or '' when it may (the author already resolved)."""
        owner = self.room.world.owner
        if frame.instance != self.room.instance:
            return "a silence for another instance"
        if owner is None or author_address is None or author_address.lower() != owner.lower():
            return "only the world's owner may silence visitors"
        if key is None or not self.verify(key, frame.signing_bytes(), frame.signature):
            return "the silence is not signed by its author's session key"
        return ""

    def _apply(self, frame: Silence) -> bool:
        last = self.owner_silence.get(frame.target)
        if last is not None and last.sent_ms >= frame.sent_ms:
            return False  # a replay, or older than what we hold
        self.owner_silence[frame.target] = frame
        self.state.dirty = True
        return True

    def client_silence(self, v: Visitor, frame: Silence, now: float) -> None:
        """The owner's visitor silences `frame.target`; raises `SilenceRefused`."""
        if frame.author != v.id:
            raise SilenceRefused("a silence's author must be your own visitor id")
        problem = self._check_silence(frame, v.address, v.session_key)
        if not problem and frame.target not in self.room.presence:
            problem = f"{frame.target[:60]!r} is not a visitor of this instance"
        if problem:
            raise SilenceRefused(problem)
        if self._apply(frame):
            for member in sorted(self.room.heard):
                self.room.out.to_node(member, frame)

    def new_member(self, peer: str) -> None:
        """A node became a member (it has our visitors now): the silences our owner's visitor
        made, which only we may relay."""
        for frame in self.owner_silence.values():
            if frame.author in self.room.local:
                self.room.out.to_node(peer, frame)

    def node_silence(self, peer: str, frame: Silence, now: float) -> None:
        """A member relays its visitor's silence: checked here again, not relayed further. Its
        target may not have reached us yet (its node's frames come on another stream)."""
        author = self.room.remote.get(frame.author)
        if author is None or author.owner != peer:
            self.room.out.refused["forged_silence"] += 1
            return
        problem = self._check_silence(frame, author.address, session_key_of(frame.author))
        if problem:
            self.room.out.refused["silence_refused"] += 1
            return
        self._apply(frame)
