"""The peers a visitor's mesh does not try to link to for now: their link failed.

A failed link is reported to the node (`Signal(peer, "failed")`), whose mesh rule then leaves
the pair out of plans for `fluxnode.core.session.mesh.FAIL_FOR` seconds; a plan that leaves
the peer out forgets the mark here. But the report may never take effect (the node refused it
for the signal rate, the peer was leaving, the frame was lost): the plan then keeps naming the
peer, and a mark that never ended would keep the pair relayed for as long as both stay. So a
mark ends after the same `fail_for` the rule uses, by the injected `clock`, and `on_end` is
called (from the event loop) once the first mark is due to end; whoever holds the marks calls
`expire` then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterator

from fluxnode.core.session.mesh import FAIL_FOR


class FailedPeers:
    """Peer -> until when its link is not tried again (seconds of `clock`)."""

    def __init__(self, clock: Callable[[], float], fail_for: float = FAIL_FOR,
                 on_end: Callable[[], None] = lambda: None) -> None:  # fmt: skip
        self._clock = clock
        self.fail_for = fail_for
        self._on_end = on_end
        self._until: dict[str, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, peer: str) -> None:
        self._until[peer] = self._clock() + self.fail_for
        self._arm()

    def __contains__(self, peer: object) -> bool:
        until = self._until.get(peer) if isinstance(peer, str) else None
        return until is not None and until > self._clock()

    def __iter__(self) -> Iterator[str]:
        now = self._clock()
        return iter([p for p, until in self._until.items() if until > now])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def keep(self, peers: Collection[str]) -> None:
        """Forget the marks of peers not in `peers` (a plan that no longer names them)."""
        for peer in [p for p in self._until if p not in peers]:
            del self._until[peer]

    def expire(self) -> bool:
        """Forget the marks that ended; True if there was one."""
        now = self._clock()
        ended = [p for p, until in self._until.items() if until <= now]
        for peer in ended:
            del self._until[peer]
        self._arm()
        return bool(ended)

    def clear(self) -> None:
        self._until.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        if self._timer is not None or not self._until:
            return
        # The clock may be another than the loop's (tests): only its differences are used.
        delay = max(0.0, min(self._until.values()) - self._clock())
        self._timer = asyncio.get_running_loop().call_later(delay, self._due)

    def _due(self) -> None:
        self._timer = None
        self._on_end()
