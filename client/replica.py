"""The visitor's replica of its instance, sans-IO: peers, world state and chat, plus what to
send back (acks, resyncs). `Visitor` feeds it decoded frames; tests drive it directly.

- Peers: `ViewerFrame`s are applied with `ViewerState`; each applied frame is acknowledged
  (`Ack(seq)`), a frame whose base we do not hold asks for one `Resync` (not one per frame:
  until the full snapshot arrives every delta is against a base we lack). Addresses come from
  the frames' `info` maps, which name a visitor the first time a viewer sees it (the node
  sends that before the newcomer's first chat line or op), and from verified ops (the node
  bound the signing key to the op's author), so an address is None only when truly unknown.
- Reconnects: `joined` of the same instance keeps peers, state and chat; what follows yields
  events only for what changed (a chat line already shown is not shown again).
- World state: a `WorldState` replica once the world's manifest is known (ops before that are
  kept, bounded, and merged when it comes), so `plan_interaction` computes a toggle from the
  value every other replica holds. The client re-checks relayed ops like any replica: the
  signature by the session key named in the op's clock actor (a visitor id *is* that key) and,
  when the node told us that visitor's address, that the author is it. The home node checked
  them first; checking again costs little and keeps a misbehaving node from making us show a
  state no other replica holds.
- Chat: lines are signed by the author's session key (author = visitor id); a line that does
  not verify is dropped with an `Error` event rather than shown.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fluxnode.chain.entry import session_public_key, sign_session, verify_session_signature
from fluxnode.client.events import Chat, Event, PeerJoined, PeerLeft, PeerMoved, StateChanged
from fluxnode.client.events import Error as ErrorEvent
from fluxnode.core.errors import (
    ChatRejected,
    EntryProofInvalid,
    NoManifest,
    OpRejected,
    SessionLost,
    TransformRejected,
)
from fluxnode.core.session.chat import ChatMessage, text_problem
from fluxnode.core.session.entry import SESSION_KEY_PREFIX, parse_session_key_resource
from fluxnode.core.session.frames import Ack, Frame, Resync, Silence, StateSnapshot
from fluxnode.core.session.presence import Transform, ViewerFrame, ViewerState
from fluxnode.core.session.state import StateOp, WorldState
from fluxnode.core.world import WorldManifest

#: Ops kept while the manifest is unknown (a snapshot holds at most 512).
MAX_PENDING_OPS: Final = 2048
#: Addresses remembered for visitors no longer in range (chat from them still names them).
MAX_ADDRESSES: Final = 1000
#: Chat lines remembered so a snapshot's history (50 lines) is not shown twice.
MAX_SEEN_CHAT: Final = 256

SessionVerify = Callable[[bytes, bytes, bytes], bool]


def transform_of(position: Sequence[float], rotation: Sequence[float], anim: str) -> Transform:
    """Our avatar's transform from what a caller passed; `TransformRejected` if it is none."""
    try:
        pos = tuple(float(c) for c in position)
        rot = tuple(float(c) for c in rotation)
    except (TypeError, ValueError):
        raise TransformRejected("position and rotation must be numbers") from None
    if len(pos) != 3 or len(rot) != 4:
        raise TransformRejected("position is 3 numbers and rotation 4 (a quaternion)")
    return Transform((pos[0], pos[1], pos[2]), (rot[0], rot[1], rot[2], rot[3]), anim)


def visitor_key(visitor: str) -> bytes | None:
    """The raw Ed25519 key a visitor id names, or None when it is not one."""
    try:
        return parse_session_key_resource(SESSION_KEY_PREFIX + visitor)
    except EntryProofInvalid:
        return None


class Replica:
    """One visitor's view of its instance (sans-IO; `now` in Unix seconds)."""

    def __init__(
        self,
        visitor: str,
        address: str,
        session_key: Ed25519PrivateKey,
        *,
        verify: SessionVerify = verify_session_signature,
    ) -> None:
        self.visitor = visitor
        self.address = address
        self.author = address.lower()
        self._key = session_key
        self._verify_sig = verify
        self.instance: str | None = None
        self.manifest: WorldManifest | None = None
        self.state: WorldState | None = None
        self._pending: collections.deque[StateOp] = collections.deque(maxlen=MAX_PENDING_OPS)
        self._addresses: collections.OrderedDict[str, str | None] = collections.OrderedDict()
        self.viewer = ViewerState()
        self._shown: dict[str, Transform | None] = {}  # the peers our events have shown
        self._seen_chat: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self._resync_asked = False
        # A snapshot's chat history waits for the viewer frame behind it, which names who is
        # here: shown earlier, its authors' addresses would be unknown.
        self._held_chat: list[ChatMessage] = []
        self._outbox: list[Frame] = []
        self.counts: collections.Counter[str] = collections.Counter()
        if session_public_key(session_key) != visitor_key(visitor):
            raise ValueError("the visitor id is not this session key")

    # --- joining -------------------------------------------------------------------------------

    def joined(self, instance: str, manifest: WorldManifest | None = None) -> list[Event]:
        """We are seated in `instance` (a snapshot and a full viewer frame follow).

        Another instance: the old one's peers leave (`PeerLeft` each, returned), its state and
        chat are forgotten and `manifest` (None: unknown yet) is this world's. The same
        instance again (a reconnect): peers, state and chat are kept, so the snapshot that
        follows yields events only for what changed meanwhile."""
        self.viewer = ViewerState()  # a new connection numbers its viewer frames afresh
        self._resync_asked = False
        self._held_chat.clear()
        if instance == self.instance:
            if manifest is not None and self.state is None:
                self.set_manifest(manifest, 0.0)
            return []
        events: list[Event] = [
            PeerLeft(v, self.address_of(v)) for v in self._shown if v != self.visitor
        ]
        self.instance = instance
        self._shown = {}
        self._pending.clear()
        self._addresses.clear()
        self._seen_chat.clear()
        self.state = None
        self.manifest = manifest
        if manifest is not None:
            self.set_manifest(manifest, 0.0)
        return events

    def set_manifest(self, manifest: WorldManifest, now: float) -> None:
        """Start the state replica; ops received so far are merged (bad ones dropped)."""
        self.manifest = manifest
        state = WorldState(manifest, self._verify_op, actor=self.visitor)
        self.state = state
        for op in self._pending:
            self._merge(op, now)
        self._pending.clear()

    # --- what the node sent ----------------------------------------------------------------

    def address_of(self, visitor: str) -> str | None:
        if visitor == self.visitor:
            return self.address
        return self._addresses.get(visitor)

    def peers(self) -> dict[str, str | None]:
        """Visitors present now (in range or not), with their addresses when known."""
        return {v: self.address_of(v) for v in self._shown if v != self.visitor}

    def receive(self, frame: Frame, now: float) -> list[Event]:
        """The events `frame` means; what to answer is in `frames_to_send()` afterwards."""
        if isinstance(frame, ViewerFrame):
            return self._viewer_frame(frame)
        if isinstance(frame, StateSnapshot):
            if self.instance is not None and frame.instance != self.instance:
                return [ErrorEvent("frame_invalid", "a state snapshot of another instance")]
            events: list[Event] = [e for op in frame.ops for e in self._op(op, now)]
            self._held_chat.extend(frame.chat[: 4 * MAX_SEEN_CHAT])
            return events
        if isinstance(frame, StateOp):
            return self._release_chat() + self._op(frame, now)
        if isinstance(frame, ChatMessage):
            return self._release_chat() + self._chat(frame)
        raise TypeError(f"a replica does not take {type(frame).__name__} frames")

    def frames_to_send(self) -> list[Frame]:
        out, self._outbox = self._outbox, []
        return out

    def _release_chat(self) -> list[Event]:
        held, self._held_chat = self._held_chat, []
        return [e for m in held for e in self._chat(m)]

    def _remember(self, visitor: str, address: str | None) -> None:
        self._addresses[visitor] = address
        self._addresses.move_to_end(visitor)
        while len(self._addresses) > MAX_ADDRESSES:
            self._addresses.popitem(last=False)

    def _viewer_frame(self, frame: ViewerFrame) -> list[Event]:
        before = self._shown
        latest = self.viewer.latest
        if not self.viewer.apply(frame):
            self.counts["frames_without_base"] += 1
            if not self._resync_asked:
                self._resync_asked = True
                self._outbox.append(Resync())
            return []
        if frame.base is None:
            self._resync_asked = False
        self._outbox.append(Ack(frame.seq))
        for visitor, info in frame.info.items():
            address = info.get("address")
            if isinstance(address, str) or visitor not in self._addresses:
                self._remember(visitor, address if isinstance(address, str) else None)
        history = self._release_chat()
        if latest is not None and frame.seq <= latest:
            return history  # a late frame: applied (it may become a base) but not shown
        after = self._shown = self.viewer.current()
        events: list[Event] = history
        for visitor, t in after.items():
            if visitor == self.visitor:
                continue
            address = self.address_of(visitor)
            if visitor not in before:
                events.append(PeerJoined(visitor, address))
                if t is not None:
                    events.append(PeerMoved(visitor, address, t))
            elif before[visitor] != t:
                events.append(PeerMoved(visitor, address, t))
        for visitor in before.keys() - after.keys():
            if visitor != self.visitor:
                events.append(PeerLeft(visitor, self.address_of(visitor)))
        return events

    def _verify_op(self, op: StateOp) -> bool:
        key = visitor_key(op.hlc.actor)
        if key is None or not self._verify_sig(key, op.signing_bytes(), op.signature):
            return False
        known = self.address_of(op.hlc.actor)
        return known is None or known.lower() == op.author

    def _merge(self, op: StateOp, now: float) -> bool:
        assert self.state is not None
        try:
            return self.state.receive_op(op, now)
        except OpRejected:
            self.counts["ops_rejected"] += 1
            return False

    def _op(self, op: StateOp, now: float) -> list[Event]:
        if self.state is None:
            if not self._verify_op(op):
                self.counts["ops_rejected"] += 1
                return [ErrorEvent("op_rejected", f"dropped a badly signed op on {op.object_id}")]
            self._pending.append(op)
        elif not self._merge(op, now):
            return []
        if self._addresses.get(op.hlc.actor) is None:
            # Signed by that visitor's key, and the node bound the key to this author: so a
            # chat line of a visitor we never saw in a viewer frame still names its address.
            self._remember(op.hlc.actor, op.author)
        return [StateChanged(op.object_id, op.prop, op.value, op.author)]

    def _chat(self, m: ChatMessage) -> list[Event]:
        if self.instance is not None and m.instance != self.instance:
            return []
        key = visitor_key(m.author)
        if key is None or not self._verify_sig(key, m.signing_bytes(), m.signature):
            self.counts["chat_rejected"] += 1
            return [ErrorEvent("chat_rejected", "dropped a chat line its author did not sign")]
        if m.signature in self._seen_chat:
            return []  # the history of a snapshot after a reconnect: shown already
        self._seen_chat[m.signature] = None
        while len(self._seen_chat) > MAX_SEEN_CHAT:
            self._seen_chat.popitem(last=False)
        return [Chat(m.author, self.address_of(m.author), m.text, m.sent_ms)]

    # --- what we send ------------------------------------------------------------------------

    def interaction(self, object_id: str, trigger: str, now: float) -> tuple[StateOp, list[Event]]:
        """Our signed op for `trigger` on `object_id`, already merged into the replica.

        Raises `NoManifest` before the manifest is known and `OpRejected` when the object has
        no declarative action for that trigger or our own replica refuses the op (e.g. the
        object belongs to someone else): then nothing is sent and nothing changes.
        """
        if self.state is None:
            raise NoManifest("interacting needs the world's manifest (pass manifest= to join)")
        hlc = self.state.clock.tick(now)
        op = self.state.plan_interaction(object_id, trigger, self.author, hlc)
        if op is None:
            raise OpRejected(f"{trigger} of {object_id!r} is no declarative action of this world")
        signed = StateOp(op.object_id, op.kind, op.prop, op.value, op.trigger, op.hlc, op.author,
                         sign_session(self._key, op.signing_bytes()))  # fmt: skip
        self.state.receive_op(signed, now)
        return signed, [StateChanged(signed.object_id, signed.prop, signed.value, signed.author)]

    def chat_message(self, text: str, now: float) -> ChatMessage:
        """Our signed chat line; `ChatRejected` (nothing sent) when the text breaks the rules."""
        if self.instance is None:
            raise ChatRejected("join a world before chatting")
        if problem := text_problem(text):
            raise ChatRejected(problem)
        m = ChatMessage(self.instance, self.visitor, text, int(now * 1000))
        return ChatMessage(m.instance, m.author, m.text, m.sent_ms,
                           sign_session(self._key, m.signing_bytes()))  # fmt: skip

    def silence_frame(self, target: str, on: bool, now: float) -> Silence:
        """Our signed `Silence` of `target` in our instance: only the world owner's is taken
        (every member node checks the author's address against the world's owner)."""
        if self.instance is None:
            raise SessionLost("join a world before silencing anyone in it")
        s = Silence(self.instance, target, on, int(now * 1000), self.visitor)
        return Silence(s.instance, s.target, s.on, s.sent_ms, s.author,
                       sign_session(self._key, s.signing_bytes()))  # fmt: skip
