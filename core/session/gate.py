"""What the gateway's session WebSocket needs from the node: one typed seam, no framework types.

The gateway moves bytes (binary WebSocket messages, each one session frame) and knows nothing of
the protocol; the node decodes, decides and answers. `SessionSink` is the gateway's half of one
connection: `send` never blocks (it queues, bounded) and returns False when the client is too
slow to keep up, in which case the gateway has already started closing the connection.
"""

from __future__ import annotations

from typing import Protocol


class SessionSink(Protocol):
    def send(self, data: bytes) -> bool: ...

    def send_latest(self, data: bytes) -> bool:
        """`send` for a frame that supersedes the previous one sent this way: if that one is
        still queued, unsent, it is replaced in place (a viewer's frames are deltas against
        what it acknowledged, so only the newest matters). A client that falls behind then
        holds one frame of views, not a backlog of stale ones."""
        ...

    def close(self, code: int, reason: str) -> None: ...


class SessionPeer(Protocol):
    """The node's half of one connection."""

    async def receive(self, data: bytes) -> None: ...

    async def closed(self) -> None: ...


class SessionGate(Protocol):
    async def open_session(self, sink: SessionSink, remote: str) -> SessionPeer: ...

    async def world_manifest(self, world_id: str) -> bytes:
        """The `world.json` bytes of the current record of `world_id` (read by CID, so they
        are the verified ones); `NotFound` when the node does not know the world."""
        ...
