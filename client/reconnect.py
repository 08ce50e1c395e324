"""When and where a `Visitor` reconnects after its connection drops.

A dropped connection (the node went away, the network failed) is followed by rounds of tries:
the node we were on first, then each fallback, then a pause that doubles each round
(`first_delay`, capped at `max_delay`), for at most `rounds` rounds. Each try signs in again
with the *same* session key and rejoins the same world, so within the node's reconnect window
(30 s) the seat and position are kept. A close the node meant (a ban, an expired proof, our
key signed in elsewhere: see `connection.ending_of_close`) is not retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from fluxnode.client.events import Reconnected
from fluxnode.client.links import session_url
from fluxnode.core.errors import BadRequest, SessionError
from fluxnode.core.session.frames import Joined


@dataclass(frozen=True)
class Reconnect:
    fallbacks: tuple[str, ...] = ()
    rounds: int = 5
    first_delay: float = 0.25
    max_delay: float = 4.0

    def __post_init__(self) -> None:
        for url in self.fallbacks:
            session_url(url)  # a bad URL fails here, before any I/O
        if not 1 <= self.rounds <= 100:
            raise BadRequest("reconnect rounds must be 1 to 100")
        if not 0 <= self.first_delay <= self.max_delay <= 300:
            raise BadRequest("reconnect delays must satisfy 0 <= first <= max <= 300 s")

    def delays(self) -> Iterator[float]:
        """The pause before each round: none before the first (the drop may be a blip)."""
        delay = self.first_delay
        for n in range(self.rounds):
            if n == 0:
                yield 0.0
                continue
            yield delay
            delay = min(self.max_delay, delay * 2)

    def urls(self, home: str) -> list[str]:
        """`home` first, then the fallbacks, each node once."""
        out: list[str] = []
        seen: set[str] = set()
        for url in (home, *self.fallbacks):
            key = session_url(url)
            if key not in seen:
                seen.add(key)
                out.append(url)
        return out


class Rejoiner(Protocol):
    """What `reconnect` needs of a `Visitor`."""

    node_url: str

    async def open_link(self, url: str) -> None: ...
    async def join(self, world_id: str) -> Joined: ...
    async def retire_link(self) -> None: ...


async def reconnect(
    v: Rejoiner, policy: Reconnect, home: str, world: str | None, lost: str
) -> Reconnected | str:
    """Try `policy`'s nodes until one signs us in (and seats us in `world`): the event to
    report, or why the session ends after the last round."""
    tries, last = 0, lost
    for delay in policy.delays():
        await asyncio.sleep(delay)
        for url in policy.urls(home):
            tries += 1
            try:
                await v.open_link(url)
                joined = await v.join(world) if world is not None else None
            except SessionError as exc:  # refused or unreachable: the next node
                last = f"{url}: {exc}"
                await v.retire_link()
                continue
            return Reconnected(
                v.node_url, lost, tries, world,
                joined.instance_id if joined else None, joined.node if joined else None,
                joined.seat if joined else None,
            )  # fmt: skip
    return f"{lost}; no reconnect in {tries} tries (last: {last})"
