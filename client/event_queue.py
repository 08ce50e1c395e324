"""The bounded queue of a `Visitor`'s events: a program that stops reading loses news (counted
in `dropped`) instead of growing memory without end; `Closed` always gets in, and is last."""

from __future__ import annotations

import asyncio

from fluxnode.client.events import Closed, Event
from fluxnode.core.errors import SessionLost


class EventQueue:
    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue(size)
        self.closed: str | None = None  # the reason of the `Closed` event, once put
        self.finished = False  # `Closed` was taken
        self.dropped = 0

    def put(self, event: Event) -> None:
        """Queue `event`; nothing after `Closed`. When full, the new event is dropped, unless
        it is `Closed`, which takes the place of the oldest."""
        if self.closed is not None:
            return
        if isinstance(event, Closed):
            self.closed = event.reason
            if self._queue.full():
                self._queue.get_nowait()
                self.dropped += 1
        elif self._queue.full():
            self.dropped += 1
            return
        self._queue.put_nowait(event)

    async def get(self) -> Event:
        """The next event; after `Closed` has been taken, `SessionLost`."""
        if self.finished:
            raise SessionLost(f"the session is closed ({self.closed})")
        event = await self._queue.get()
        if isinstance(event, Closed):
            self.finished = True
        return event
