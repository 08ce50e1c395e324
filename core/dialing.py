"""When to (re)dial bootstrap peers: a sans-IO schedule with exponential backoff.

The driver (p2p/) asks `due(now)` which targets to dial, reports each outcome, and sleeps until
`next_wakeup(now)`. Connected targets are left alone until the driver reports a disconnect, so a
healthy node makes no dials at all. Jitter comes from an injected `rng` so tests are exact.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 60.0
    #: Fraction of the delay added or removed at random, to spread reconnect storms.
    jitter: float = 0.1

    def delay(self, failures: int, rand: float) -> float:
        """Delay after `failures` consecutive failures; `rand` is uniform in [0, 1)."""
        if failures < 1:
            return 0.0
        base = min(self.maximum, self.initial * self.factor ** (failures - 1))
        return max(0.0, base * (1.0 + self.jitter * (2.0 * rand - 1.0)))


class TargetState(enum.Enum):
    WAITING = "waiting"
    DIALING = "dialing"
    CONNECTED = "connected"


@dataclass
class _Target:
    state: TargetState = TargetState.WAITING
    failures: int = 0
    next_attempt: float = 0.0


class DialSchedule:
    """Tracks each bootstrap target (a string key, e.g. a multiaddr) through its dial states."""

    def __init__(
        self,
        targets: Iterable[str],
        policy: BackoffPolicy | None = None,
        rng: Callable[[], float] = lambda: 0.5,
    ) -> None:
        self._policy = policy or BackoffPolicy()
        self._rng = rng
        self._targets: dict[str, _Target] = {t: _Target() for t in targets}

    def due(self, now: float) -> list[str]:
        """Targets to dial now; they move to DIALING until an outcome is reported."""
        ready = [
            key
            for key, t in self._targets.items()
            if t.state is TargetState.WAITING and t.next_attempt <= now
        ]
        for key in ready:
            self._targets[key].state = TargetState.DIALING
        return ready

    def dial_succeeded(self, key: str) -> None:
        t = self._targets[key]
        t.state = TargetState.CONNECTED
        t.failures = 0

    def dial_failed(self, key: str, now: float) -> float:
        """Record a failure; returns the delay before the next attempt."""
        t = self._targets[key]
        t.failures += 1
        delay = self._policy.delay(t.failures, self._rng())
        t.state = TargetState.WAITING
        t.next_attempt = now + delay
        return delay

    def disconnected(self, key: str, now: float) -> None:
        """A connected target dropped: redial at once (a first failure then backs off)."""
        t = self._targets[key]
        if t.state is TargetState.CONNECTED:
            t.state = TargetState.WAITING
            t.next_attempt = now

    def connected(self) -> list[str]:
        return [k for k, t in self._targets.items() if t.state is TargetState.CONNECTED]

    def state(self, key: str) -> TargetState:
        return self._targets[key].state

    def next_wakeup(self, now: float) -> float | None:
        """Earliest time a WAITING target becomes due, or None if none is waiting."""
        times = [t.next_attempt for t in self._targets.values() if t.state is TargetState.WAITING]
        if not times:
            return None
        return max(now, min(times))
