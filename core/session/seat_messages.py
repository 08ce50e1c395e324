"""Messages and events of the seat rule (see `fluxnode.core.session.seats` for the rule)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, order=True)
class ClaimKey:
    """Orders claims on one slot: earlier wall time first, then node id, then sequence."""

    time_ms: int
    node: str
    seq: int


@dataclass(frozen=True)
class SeatClaim:
    instance: str
    slot: int
    key: ClaimKey
    visitor: str


@dataclass(frozen=True)
class SeatAck:
    instance: str
    slot: int
    key: ClaimKey
    sender: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class SeatNack:
    instance: str
    slot: int
    key: ClaimKey
    sender: str


@dataclass(frozen=True)
class SeatRelease:
    instance: str
    slot: int
    key: ClaimKey


@dataclass(frozen=True)
class HandedSeat:
    slot: int
    key: ClaimKey
    visitor: str


@dataclass(frozen=True)
class Handover:
    """`sender` leaves the instance; its confirmed seats now belong to `successor` (None: freed)."""

    instance: str
    sender: str
    successor: str | None
    seats: tuple[HandedSeat, ...]


SeatMessage: TypeAlias = SeatClaim | SeatAck | SeatNack | SeatRelease | Handover


@dataclass(frozen=True)
class SeatConfirmed:
    visitor: str
    slot: int


@dataclass(frozen=True)
class SeatLost:
    visitor: str
    reason: str


@dataclass(frozen=True)
class SeatExpired:
    """A handed-over seat whose visitor did not come back within the reconnect window."""

    visitor: str
    slot: int


SeatEvent: TypeAlias = SeatConfirmed | SeatLost | SeatExpired
