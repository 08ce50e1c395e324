"""Background loops that must outlive their own failures, with a count of every failure.

A node runs a few loops forever (hosting rounds, following the chain). One failed round must not
stop the node, but a loop that fails every round must not look healthy either: each loop has a
`LoopHealth` that `flux-node status` shows, so an operator sees "chain: 312 failures, last:
chain unavailable" instead of a quiet node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from fluxnode.core.errors import FluxError

log = logging.getLogger("fluxnode.node.loops")


@dataclass
class LoopHealth:
    rounds: int = 0
    #: Rounds that raised one of our own errors (a peer or the chain failed us, a disk is full).
    failures: int = 0
    #: Rounds that raised anything else: a bug of ours. Logged with its traceback.
    crashes: int = 0
    last_error: str | None = None
    last_failure_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Loops:
    """The node's background loops by name, and how each is doing."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._health: dict[str, LoopHealth] = {}
        self._clock = clock

    def health(self, name: str) -> LoopHealth:
        return self._health.setdefault(name, LoopHealth())

    def statistics(self) -> dict[str, dict[str, Any]]:
        return {name: h.to_json() for name, h in sorted(self._health.items())}

    async def run_forever(
        self, name: str, step: Callable[[], Awaitable[None]], interval_s: float
    ) -> None:
        """Run `step` every `interval_s` seconds until cancelled; count and log its failures.

        Cancellation is never caught (it is not an `Exception`), so stopping the node stops the
        loop at once.
        """
        health = self.health(name)
        while True:
            await self.run_once(name, step, health)
            await asyncio.sleep(interval_s)

    async def run_once(
        self, name: str, step: Callable[[], Awaitable[None]], health: LoopHealth | None = None
    ) -> bool:
        """One round of a loop; True if it succeeded."""
        health = health if health is not None else self.health(name)
        health.rounds += 1
        try:
            await step()
        except FluxError as exc:
            health.failures += 1
            self._failed(health, exc)
            log.warning("%s round failed: %s", name, exc)
            return False
        except Exception as exc:  # a bug must not take the node down; it is counted and logged
            health.crashes += 1
            self._failed(health, exc)
            log.exception("%s round crashed; retrying next round", name)
            return False
        return True

    def _failed(self, health: LoopHealth, exc: BaseException) -> None:
        health.last_error = f"{type(exc).__name__}: {exc}"[:300]
        health.last_failure_at = self._clock()
