"""The seat rule: how member nodes of one instance admit visitors at once without overselling it.

There is no central server, so each member node keeps a `SeatTable` for the instance and the
tables talk to each other with the messages below (delivered by the edge over the member nodes'
direct streams; delay, reordering and duplication are all fine, see the proof).

The rule
--------
An instance of capacity ``C`` has numbered seats (slots) ``0 .. C-1``. Every claim carries a
`ClaimKey` ``(time_ms, node, seq)``: a total order, used only to break ties.

1. To seat a visitor a node picks the lowest slot on which it knows no *live* claim and sends a
   `SeatClaim` to every member node it knows (its *required* set).
2. A node receiving a claim ``c`` on slot ``s`` looks at the live claims on ``s`` it knows,
   other than ``c``, and
   - NACKs if one of them is its own *confirmed* seat, or if one has a key lower than ``c``'s;
   - otherwise ACKs, and any pending claim of its own on ``s`` (all have higher keys) is lost.
   An ACK carries the acker's member list; members the claimer did not know join its required
   set (and get the claim), so two claimers that share one member end up asking each other.
3. A claim is *confirmed* when every node of its required set has ACKed it; only then is the
   visitor told "joined". A NACK, a handed-over seat on the slot, or no full set of ACKs within
   ``claim_timeout`` makes the claim *lost*: the claimer broadcasts `SeatRelease` and retries on
   another slot (a bounded number of times) before reporting `SeatLost`. A timeout never
   confirms: liveness is given up, never safety.
4. A confirmed seat stays live until its holder releases it (the visitor left or was not
   resumed), hands it over (`Handover`, the holder leaves the instance), or the holder is
   declared crashed (`member_lost`, called by the edge's failure detector).

Why no slot is ever confirmed twice (hence never more than ``C`` confirmed seats): suppose
claims ``c1`` by node A and ``c2`` by node D (A != D; a node never claims a slot it knows is
live) on slot ``s`` are both confirmed and live at once, and A is in c2's required set (the
member lists in ACKs make that so whenever the two share a member). A ACKed c2 at some moment t.
If A created c1 after t, A knew c2 live at creation and would not have picked ``s``. So c1 existed
at t: if confirmed, A NACKs c2 (rule 2); if pending with a lower key, A NACKs c2; if pending with
a higher key, A's ACK makes c1 lost. Each case contradicts "both confirmed". Messages may be
late or repeated: releases leave tombstones so a late claim is not resurrected, and
ACKs/NACKs for a claim that is no longer pending are ignored.

Assumptions, stated plainly: a member node is declared crashed (`member_lost`) only when it
really stopped (crash-stop). If a partition makes both sides declare each other crashed, each
side may seat up to ``C``; a majority-quorum rule would avoid that at the price of stalling
small instances, which we do not want for two or three community nodes.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from fluxnode.core.errors import SeatUnavailable
from fluxnode.core.session.seat_messages import (
    ClaimKey,
    HandedSeat,
    Handover,
    SeatAck,
    SeatClaim,
    SeatConfirmed,
    SeatEvent,
    SeatExpired,
    SeatLost,
    SeatMessage,
    SeatNack,
    SeatRelease,
)

DEFAULT_CLAIM_TIMEOUT: Final = 2.0  # seconds: a join answer must come quickly or go elsewhere
RECONNECT_WINDOW: Final = 30.0  # seconds a handed-over seat waits for its visitor
MAX_ATTEMPTS: Final = 3
_TOMBSTONES: Final = 4096


class _State(enum.Enum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    RESERVED = "reserved"  # handed to us; waits for its visitor to reconnect
    REMOTE = "remote"  # another node's claim that we ACKed (or a seat handed to another node)


@dataclass
class _Seat:
    slot: int
    key: ClaimKey
    visitor: str
    owner: str
    state: _State
    deadline: float | None = None
    required: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    attempt: int = 1


class SeatTable:
    """One node's view of the seats of one instance (sans-IO; see the module docstring)."""

    def __init__(
        self,
        node: str,
        instance: str,
        capacity: int,
        members: Iterable[str] = (),
        *,
        claim_timeout: float = DEFAULT_CLAIM_TIMEOUT,
        reconnect_window: float = RECONNECT_WINDOW,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        if not 1 <= capacity <= 100:
            raise ValueError(f"capacity must be 1..100, not {capacity}")
        self.node = node
        self.instance = instance
        self.capacity = capacity
        self.members: set[str] = set(members) | {node}
        self.claim_timeout = claim_timeout
        self.reconnect_window = reconnect_window
        self.max_attempts = max_attempts
        self.closed = False
        self._gone: set[str] = set()  # left or crashed: not re-added from stale member lists
        self._handed_slots: set[int] = set()  # after leaving: slots we handed to a successor
        self._seats: dict[ClaimKey, _Seat] = {}
        self._seq = 0
        self._tombstones: collections.OrderedDict[ClaimKey, None] = collections.OrderedDict()
        self._outbox: list[tuple[str, SeatMessage]] = []
        self._events: list[SeatEvent] = []

    # --- queries --------------------------------------------------------------------------

    def confirmed(self) -> dict[int, str]:
        """Slot -> visitor for the seats this node holds and has confirmed."""
        return {s.slot: s.visitor for s in self._seats.values() if s.state is _State.CONFIRMED}

    def held(self) -> dict[int, str]:
        """Slot -> visitor for every seat this node holds: confirmed, or handed to it and
        waiting for its visitor to come back."""
        return {
            s.slot: s.visitor
            for s in self._seats.values()
            if s.state in (_State.CONFIRMED, _State.RESERVED)
        }

    def occupied(self) -> int:
        """Slots with a live claim known here: this node's estimate of the instance's count."""
        return len({s.slot for s in self._seats.values()})

    def held_claims(self) -> list[SeatClaim]:
        """A claim for each seat this node holds, to replay to a node that just became a member:
        it knows no seat yet, and handling these like any claim (ACK, or NACK when it holds an
        earlier one) teaches it which slots are taken. Answers to a held seat are ignored."""
        return [
            SeatClaim(self.instance, s.slot, s.key, s.visitor)
            for s in sorted(self._seats.values(), key=lambda s: s.slot)
            if s.state in (_State.CONFIRMED, _State.RESERVED)
        ]

    def has_room(self) -> bool:
        return not self.closed and self._free_slot() is not None

    def is_empty(self) -> bool:
        """No live seat anywhere as far as we know: the instance may close."""
        return not self._seats

    def local_visitors(self) -> int:
        return sum(1 for s in self._seats.values() if s.owner == self.node)

    # --- the sans-IO interface --------------------------------------------------------------

    def claim(self, visitor: str, now: float) -> None:
        """Start seating `visitor`; the answer comes later as `SeatConfirmed` or `SeatLost`."""
        if self.closed:
            raise SeatUnavailable(f"instance {self.instance} is closed on this node")
        if any(s.visitor == visitor and s.owner == self.node for s in self._seats.values()):
            raise SeatUnavailable(f"visitor {visitor} already has or awaits a seat here")
        if not self._start_claim(visitor, now, attempt=1):
            raise SeatUnavailable(f"instance {self.instance} is full")

    def release(self, visitor: str) -> None:
        """The visitor left: free its seat (or abandon its pending claim)."""
        for seat in list(self._seats.values()):
            if seat.visitor == visitor and seat.owner == self.node:
                self._drop(seat, broadcast=True)

    def resume(self, visitor: str) -> int | None:
        """A visitor whose seat was handed to us came back: its seat is confirmed here again."""
        for seat in self._seats.values():
            if seat.visitor == visitor and seat.state is _State.RESERVED:
                seat.state, seat.deadline = _State.CONFIRMED, None
                return seat.slot
        return None

    def leave(self, successor: str | None) -> None:
        """This node leaves the instance, handing its seats to `successor` (None: free them)."""
        held = tuple(
            HandedSeat(s.slot, s.key, s.visitor)
            for s in self._seats.values()
            if s.owner == self.node and s.state in (_State.CONFIRMED, _State.RESERVED)
        )
        for seat in [s for s in self._seats.values() if s.state is _State.PENDING]:
            self._drop(seat, broadcast=True)
        self._broadcast(Handover(self.instance, self.node, successor, held))
        self.closed = True
        self._handed_slots = {h.slot for h in held} if successor is not None else set()
        self._seats.clear()

    def member_lost(self, node: str, now: float) -> None:
        """The edge's failure detector says `node` crashed: its seats are gone with it."""
        if node == self.node:
            return
        self.members.discard(node)
        self._gone.add(node)
        for seat in list(self._seats.values()):
            if seat.owner == node:
                self._drop(seat, broadcast=False)
            elif seat.state is _State.PENDING:
                seat.required.discard(node)
                self._maybe_confirm(seat)

    def receive(self, message: SeatMessage, now: float) -> None:
        if isinstance(message, SeatClaim):
            self._on_claim(message, now)
        elif isinstance(message, SeatAck):
            self._on_ack(message, now)
        elif isinstance(message, SeatNack):
            seat = self._seats.get(message.key)
            if seat is not None and seat.state is _State.PENDING:
                self._lose(seat, now, f"slot {seat.slot} refused by {message.sender}")
        elif isinstance(message, SeatRelease):
            seat = self._seats.get(message.key)
            if seat is not None and seat.owner != self.node:
                self._drop(seat, broadcast=False)
            self._tombstone(message.key)
        else:
            self._on_handover(message, now)

    def get_timer(self) -> float | None:
        deadlines = [s.deadline for s in self._seats.values() if s.deadline is not None]
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        for seat in list(self._seats.values()):
            if seat.deadline is None or seat.deadline > now or seat.key not in self._seats:
                continue
            if seat.state is _State.PENDING:
                self._lose(seat, now, f"no answer from {sorted(seat.required - seat.acked)}")
            elif seat.state is _State.RESERVED:
                self._drop(seat, broadcast=True)
                self._events.append(SeatExpired(seat.visitor, seat.slot))

    def messages_to_send(self) -> list[tuple[str, SeatMessage]]:
        out, self._outbox = self._outbox, []
        return out

    def events(self) -> list[SeatEvent]:
        out, self._events = self._events, []
        return out

    # --- internals ---------------------------------------------------------------------------

    def _free_slot(self) -> int | None:
        taken = {s.slot for s in self._seats.values()}
        return next((i for i in range(self.capacity) if i not in taken), None)

    def _start_claim(self, visitor: str, now: float, attempt: int) -> bool:
        slot = self._free_slot()
        if slot is None:
            return False
        self._seq += 1
        key = ClaimKey(int(now * 1000), self.node, self._seq)
        others = self.members - {self.node}
        seat = _Seat(slot, key, visitor, self.node, _State.PENDING, now + self.claim_timeout)
        seat.required, seat.attempt = set(others), attempt
        self._seats[key] = seat
        for member in sorted(others):
            self._outbox.append((member, SeatClaim(self.instance, slot, key, visitor)))
        self._maybe_confirm(seat)
        return True

    def _on_claim(self, claim: SeatClaim, now: float) -> None:
        sender = claim.key.node
        if sender == self.node or not 0 <= claim.slot < self.capacity:
            return
        nack = SeatNack(self.instance, claim.slot, claim.key, self.node)
        if self.closed:
            # We hold nothing any more, so only the seats we handed on can conflict; a leaver
            # that refused everything would make every stale member list cost a retry.
            if claim.slot in self._handed_slots:
                self._send(sender, nack)
            else:
                members = tuple(sorted(self.members - {self.node}))
                self._send(
                    sender, SeatAck(self.instance, claim.slot, claim.key, self.node, members)
                )
            return
        if claim.key in self._tombstones:
            self._send(sender, nack)
            return
        self.members.add(sender)
        self._gone.discard(sender)
        rivals = [s for s in self._seats.values() if s.slot == claim.slot and s.key != claim.key]
        if any(s.state in (_State.CONFIRMED, _State.RESERVED) for s in rivals) or any(
            s.key < claim.key for s in rivals
        ):
            self._send(sender, nack)
            return
        if claim.key not in self._seats:
            self._seats[claim.key] = _Seat(
                claim.slot, claim.key, claim.visitor, sender, _State.REMOTE
            )
        # The winner is recorded first so that a retry of ours cannot pick this slot again.
        for rival in rivals:
            if rival.state is _State.PENDING:
                self._lose(rival, now, f"slot {rival.slot} went to an earlier claim")
        ack = SeatAck(self.instance, claim.slot, claim.key, self.node, tuple(sorted(self.members)))
        self._send(sender, ack)

    def _on_ack(self, ack: SeatAck, now: float) -> None:
        seat = self._seats.get(ack.key)
        if seat is None or seat.state is not _State.PENDING:
            return
        seat.acked.add(ack.sender)
        self.members |= set(ack.members) - self._gone
        # Members we just heard of must see (and answer) every pending claim of ours.
        for pending in self._seats.values():
            if pending.state is _State.PENDING:
                for member in sorted(self.members - {self.node} - pending.required):
                    pending.required.add(member)
                    claim = SeatClaim(self.instance, pending.slot, pending.key, pending.visitor)
                    self._send(member, claim)
        self._maybe_confirm(seat)

    def _on_handover(self, handover: Handover, now: float) -> None:
        leaver, heir = handover.sender, handover.successor
        if leaver == self.node:
            return
        self.members.discard(leaver)
        self._gone.add(leaver)
        for handed in handover.seats:
            known = self._seats.get(handed.key)
            if not 0 <= handed.slot < self.capacity or (known and known.owner != leaver):
                continue  # only seats the leaver holds are its to hand on
            self._seats.pop(handed.key, None)
            if heir is None:
                self._tombstone(handed.key)
                continue
            mine = heir == self.node
            self._seats[handed.key] = _Seat(
                handed.slot,
                handed.key,
                handed.visitor,
                heir,
                _State.RESERVED if mine else _State.REMOTE,
                now + self.reconnect_window if mine else None,
            )
            self.members.add(heir)
            self._gone.discard(heir)
            # Recorded first (above), so a retry of a claim lost here cannot pick this slot.
            for rival in [s for s in self._seats.values() if s.slot == handed.slot]:
                if rival.key != handed.key and rival.state is _State.PENDING:
                    self._lose(rival, now, f"slot {handed.slot} is held by a handed-over seat")
        for seat in list(self._seats.values()):
            if seat.owner == leaver:  # claims of the leaver it did not hand over
                self._drop(seat, broadcast=False)
            elif seat.state is _State.PENDING:
                seat.required.discard(leaver)
                self._maybe_confirm(seat)

    def _maybe_confirm(self, seat: _Seat) -> None:
        if seat.state is _State.PENDING and seat.required <= seat.acked:
            seat.state, seat.deadline = _State.CONFIRMED, None
            self._events.append(SeatConfirmed(seat.visitor, seat.slot))

    def _lose(self, seat: _Seat, now: float, reason: str) -> None:
        self._drop(seat, broadcast=True)
        if seat.attempt < self.max_attempts and self._start_claim(
            seat.visitor, now, seat.attempt + 1
        ):
            return
        self._events.append(SeatLost(seat.visitor, reason))

    def _drop(self, seat: _Seat, *, broadcast: bool) -> None:
        if self._seats.pop(seat.key, None) is None:
            return
        self._tombstone(seat.key)
        if broadcast:
            self._broadcast(SeatRelease(self.instance, seat.slot, seat.key))

    def _tombstone(self, key: ClaimKey) -> None:
        self._tombstones[key] = None
        while len(self._tombstones) > _TOMBSTONES:
            self._tombstones.popitem(last=False)

    def _send(self, node: str, message: SeatMessage) -> None:
        self._outbox.append((node, message))

    def _broadcast(self, message: SeatMessage) -> None:
        for member in sorted(self.members - {self.node}):
            self._outbox.append((member, message))
