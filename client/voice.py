"""Voice for a Python visitor: a generated tone to send, counters for what arrives, mute.

A Python visitor has no microphone, so what it sends is a tone (`ToneTrack`: 20 ms frames of
a 480 Hz sine at 48 kHz, mono, which aiortc encodes as Opus). One track per link: aiortc's
senders each pull frames from their own track, and a shared one would be split between them.

`Voice` is the visitor's switch board. While muted, or while the link may not carry our audio
(no `LINK_AUDIO` in the plan, e.g. we are silenced), a track's `recv` waits instead of making
frames, so the sender sends nothing at all (muting is the client's own: it stops sending).
Audio that arrives on a link without `LINK_AUDIO` (the peer is silenced) is counted as dropped,
never as heard.
"""

from __future__ import annotations

import array
import asyncio
import collections
import fractions
import math
import time
from collections.abc import Callable
from typing import Final

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

SAMPLE_RATE: Final = 48_000
FRAME_SECONDS: Final = 0.020
FRAME_SAMPLES: Final = int(SAMPLE_RATE * FRAME_SECONDS)
TONE_PERIOD: Final = 100  # samples: 480 Hz, and a whole number of samples per period
TONE_AMPLITUDE: Final = 8000
#: One frame and a period more of the tone, so any frame is a slice (native order, as s16 is).
_WAVE: Final = array.array(
    "h",
    [round(TONE_AMPLITUDE * math.sin(2 * math.pi * i / TONE_PERIOD))
     for i in range(TONE_PERIOD + FRAME_SAMPLES)],
).tobytes()  # fmt: skip


class Voice:
    """Mute state and the audio counters of one visitor (asyncio; one event loop)."""

    def __init__(self) -> None:
        self.muted = False
        #: Audio frames heard, and dropped (peer silenced or link without audio), per peer.
        self.frames: collections.Counter[str] = collections.Counter()
        self.dropped: collections.Counter[str] = collections.Counter()
        self._changed: asyncio.Future[None] | None = None

    def mute(self) -> None:
        self.muted = True
        self.notify()

    def unmute(self) -> None:
        self.muted = False
        self.notify()

    def notify(self) -> None:
        """Something a waiting track depends on changed (mute, the plan): wake them all."""
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)

    async def changed(self) -> None:
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._changed)

    def heard(self, peer: str, allowed: bool) -> None:
        if allowed:
            self.frames[peer] += 1
        else:
            self.dropped[peer] += 1


class ToneTrack(MediaStreamTrack):
    """A sine tone, paced in real time, that waits while `voice` is muted or `allowed()` is
    False (nothing is sent meanwhile, and the pacing starts afresh after)."""

    kind = "audio"

    def __init__(self, voice: Voice, allowed: Callable[[], bool]) -> None:
        super().__init__()
        self._voice = voice
        self._allowed = allowed
        self._start: float | None = None
        self._sent = 0  # samples since _start
        self._pts = 0  # samples ever sent: timestamps only grow

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        while self._voice.muted or not self._allowed():
            self._start = None
            await self._voice.changed()
            if self.readyState != "live":
                raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start, self._sent = now, 0
        else:
            self._sent += FRAME_SAMPLES
            wait = self._start + self._sent / SAMPLE_RATE - now
            if wait > 0:
                await asyncio.sleep(wait)
        offset = 2 * (self._pts % TONE_PERIOD)
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(_WAVE[offset : offset + 2 * FRAME_SAMPLES])
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._pts += FRAME_SAMPLES
        return frame


async def count_audio(
    track: MediaStreamTrack, peer: str, voice: Voice, allowed: Callable[[], bool]
) -> None:
    """Read a peer's audio track until it ends, counting each frame as heard or dropped."""
    try:
        while True:
            await track.recv()
            voice.heard(peer, allowed())
    except MediaStreamError:
        return
