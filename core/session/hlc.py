"""Hybrid logical clocks: wall milliseconds, a counter and the actor id, totally ordered.

An `Hlc` from `HlcClock.tick` is later than every `Hlc` the clock has seen or issued, and stays
close to wall time, so "last writer wins" means what a person expects while remaining a total
order (ties on wall time and counter go to the actor id, which differs between writers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fluxnode.core.errors import OpRejected

MAX_COUNTER: Final = (1 << 32) - 1
MAX_ACTOR_CHARS: Final = 128
MAX_WALL_MS: Final = (1 << 53) - 1  # exact in a float, and far beyond any real date


@dataclass(frozen=True, order=True)
class Hlc:
    wall_ms: int
    counter: int
    actor: str

    def check(self) -> None:
        """Raise `OpRejected` unless every field is in bounds."""
        if type(self.wall_ms) is not int or not 0 <= self.wall_ms <= MAX_WALL_MS:
            raise OpRejected(f"clock wall time out of range: {self.wall_ms!r}")
        if type(self.counter) is not int or not 0 <= self.counter <= MAX_COUNTER:
            raise OpRejected(f"clock counter out of range: {self.counter!r}")
        if not isinstance(self.actor, str) or not 1 <= len(self.actor) <= MAX_ACTOR_CHARS:
            raise OpRejected(f"clock actor must be 1..{MAX_ACTOR_CHARS} characters")


class HlcClock:
    """One actor's clock. `now` is wall time in seconds, injected."""

    def __init__(self, actor: str) -> None:
        self.actor = actor
        self._last = Hlc(0, 0, actor)

    @property
    def last(self) -> Hlc:
        return self._last

    def tick(self, now: float) -> Hlc:
        """A timestamp for a local event, later than anything seen so far."""
        wall = max(int(now * 1000), self._last.wall_ms)
        counter = self._last.counter + 1 if wall == self._last.wall_ms else 0
        if counter > MAX_COUNTER:  # a thousand million events in one millisecond: move on
            wall, counter = wall + 1, 0
        self._last = Hlc(wall, counter, self.actor)
        return self._last

    def observe(self, remote: Hlc) -> None:
        """Merge a timestamp received from elsewhere (the caller bounds its drift first): the
        next `tick` is then later than `remote` as well."""
        if (remote.wall_ms, remote.counter) > (self._last.wall_ms, self._last.counter):
            self._last = Hlc(remote.wall_ms, remote.counter, self.actor)
