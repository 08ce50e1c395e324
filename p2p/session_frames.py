"""The bytes and the bookkeeping of `/flux/session/1`, without any I/O (so tests need no sockets).

Framing is libp2p's usual length-prefixed framing: an unsigned LEB128 varint length, then that
many bytes. A frame is at most `MAX_LINK_FRAME` bytes; the decoder refuses a longer length
prefix as soon as it has read it, so a peer can never make us buffer more than one frame.

`InboundLimiter` holds two token buckets per peer (frames per second and bytes per second) and
counts what it refuses per peer, so one flooding node is cut down while the others keep flowing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fluxnode.core.cid import decode_varint, encode_varint
from fluxnode.core.errors import FrameInvalid, InvalidCid
from fluxnode.core.session.ratelimit import TokenBucket

PROTOCOL = "/flux/session/1"
#: Largest frame either side sends or accepts (a tick's batch is a few KiB).
MAX_LINK_FRAME = 64 * 1024


@dataclass(frozen=True)
class SessionLinkLimits:
    #: Inbound frames per second per peer, and how many may come at once after a quiet spell.
    frames_per_s: float = 200.0
    frame_burst: float = 400.0
    #: Inbound bytes per second per peer (payload bytes), and the burst of those.
    bytes_per_s: float = 2 * 1024 * 1024
    byte_burst: float = 4 * 1024 * 1024
    #: Batches waiting for one peer's writer; one more fails at once with PeerError.
    send_queue: int = 16
    #: Longest a dial, a stream negotiation or one write may take before the stream is dropped.
    write_timeout_s: float = 10.0
    #: Session streams one peer may hold open towards us at a time (it needs one).
    max_streams_per_peer: int = 4

    def __post_init__(self) -> None:
        if self.byte_burst < MAX_LINK_FRAME:
            raise ValueError("byte_burst must hold at least one largest frame")
        if self.send_queue < 1 or self.max_streams_per_peer < 1:
            raise ValueError("send_queue and max_streams_per_peer must be >= 1")


def encode_frames(frames: Iterable[bytes]) -> bytes:
    """The wire bytes of `frames`, each length-prefixed. FrameInvalid (nothing encoded) if one
    is larger than MAX_LINK_FRAME."""
    out = bytearray()
    for data in frames:
        if len(data) > MAX_LINK_FRAME:
            raise FrameInvalid(f"session frame of {len(data)} bytes exceeds {MAX_LINK_FRAME}")
        out += encode_varint(len(data))
        out += data
    return bytes(out)


class LinkFrameDecoder:
    """Splits a session stream into frames, never buffering more than one frame.

    A length prefix that is malformed or larger than `max_frame` sets `error` (a FrameInvalid):
    the frames complete before it are still returned, nothing after it ever is, and the stream
    must be dropped (it cannot resync)."""

    def __init__(self, max_frame: int = MAX_LINK_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame
        self._prefix_max = len(encode_varint(max_frame))
        self._need: int | None = None
        self.error: FrameInvalid | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[bytes]:
        if self.error is not None:
            return []
        self._buf += chunk
        out: list[bytes] = []
        while True:
            if self._need is None:
                try:
                    need = self._read_prefix()
                except FrameInvalid as exc:
                    self.error = exc
                    self._buf.clear()
                    break
                if need is None:
                    break
                self._need = need
            if len(self._buf) < self._need:
                break
            out.append(bytes(self._buf[: self._need]))
            del self._buf[: self._need]
            self._need = None
        return out

    def _read_prefix(self) -> int | None:
        """The next frame's length (the prefix is consumed), or None while it is incomplete."""
        end = next((i for i, b in enumerate(self._buf[: self._prefix_max]) if b < 0x80), None)
        if end is None:
            if len(self._buf) >= self._prefix_max:  # still continuing: longer than any max
                raise FrameInvalid(f"session frame length prefix exceeds {self._max} bytes")
            return None
        try:
            n, pos = decode_varint(bytes(self._buf[: end + 1]))
        except InvalidCid as exc:
            raise FrameInvalid(f"bad session frame length prefix: {exc}") from None
        if n > self._max:
            raise FrameInvalid(f"session frame of {n} bytes exceeds {self._max}")
        del self._buf[:pos]
        return n

    def at_boundary(self) -> bool:
        """True when no partial frame is buffered (a clean place for the stream to end)."""
        return self.error is None and self._need is None and not self._buf


@dataclass
class _PeerBudget:
    frames: TokenBucket
    bytes: TokenBucket
    dropped: int = 0


class InboundLimiter:
    """Per-peer frame and byte budgets for inbound frames, with the drops counted per peer."""

    def __init__(self, limits: SessionLinkLimits) -> None:
        self._limits = limits
        self._peers: dict[str, _PeerBudget] = {}
        self.dropped = 0

    def admit(self, peer: str, size: int, now: float) -> bool:
        """Take one frame of `size` bytes from `peer`'s budgets; False (and the drop counted,
        nothing taken) when either is short."""
        budget = self._peers.get(peer)
        if budget is None:
            lim = self._limits
            budget = self._peers[peer] = _PeerBudget(
                TokenBucket(lim.frames_per_s, lim.frame_burst, now),
                TokenBucket(lim.bytes_per_s, lim.byte_burst, now),
            )
        # Both checked before either is taken, so a refused frame costs nothing.
        if budget.frames.retry_after(now) > 0 or budget.bytes.retry_after(now, size) > 0:
            budget.dropped += 1
            self.dropped += 1
            return False
        budget.frames.allow(now)
        budget.bytes.allow(now, size)
        return True

    def dropped_by(self, peer: str) -> int:
        budget = self._peers.get(peer)
        return 0 if budget is None else budget.dropped

    def forget(self, peer: str) -> None:
        """Drop `peer`'s budgets (it disconnected); a later frame starts with a full bucket."""
        self._peers.pop(peer, None)

    def peers(self) -> tuple[str, ...]:
        return tuple(self._peers)


__all__ = [
    "MAX_LINK_FRAME",
    "PROTOCOL",
    "InboundLimiter",
    "LinkFrameDecoder",
    "SessionLinkLimits",
    "encode_frames",
]
