"""The WebRTC side of `Visitor`: making its mesh, the frames for it, voice controls.

A mixin, so `fluxnode.client.visitor` only holds the hooks; the work is in
`fluxnode.client.mesh` (links, plan, transforms) and `fluxnode.client.voice` (tone, counters).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable

from fluxnode.client.events import Event
from fluxnode.client.mesh import RTC_FRAMES, Mesh
from fluxnode.client.replica import Replica
from fluxnode.core.errors import SessionLost
from fluxnode.core.session import frames as fr


class RtcControls:
    """Voice and mesh accessors over the visitor's `mesh`."""

    mesh: Mesh
    replica: Replica | None
    _clock: Callable[[], float]

    # What the visitor provides (its WebSocket, its events, its frame handling).
    async def _send(self, frame: fr.Frame) -> None:
        raise NotImplementedError

    def _emit(self, event: Event) -> None:
        raise NotImplementedError

    async def _dispatch(self, frame: fr.Frame) -> str | None:
        raise NotImplementedError

    def _new_mesh(self, *, voice: bool, node_channel: bool) -> Mesh:
        return Mesh(self._send, self._emit, self._present, self._address_of, voice=voice,
                    node_channel=node_channel, dispatch=self._dispatch)  # fmt: skip

    def _present(self) -> Iterable[str]:
        return self.replica.peers() if self.replica is not None else ()

    def _address_of(self, visitor: str) -> str | None:
        return self.replica.address_of(visitor) if self.replica is not None else None

    async def _rtc_frame(self, frame: fr.Frame) -> bool:
        """Hand a WebRTC frame to the mesh; False when `frame` is none."""
        if not isinstance(frame, RTC_FRAMES):
            return False
        await self.mesh.receive(frame)
        return True

    async def silence(self, target: str, on: bool = True) -> fr.Silence:
        """As the world's owner, silence (or with `on=False` let speak again) `target` in our
        instance for everyone: the nodes drop its audio from every plan. A visitor who is not
        the owner gets an `Error("silence_refused", ...)` event and nothing changes."""
        if self.replica is None:
            raise SessionLost("the visitor is not signed in")
        frame = self.replica.silence_frame(target, on, self._clock())
        await self._send(frame)
        return frame

    def mute(self) -> None:
        """Stop sending our voice (the links stay); `unmute` starts it again."""
        if self.mesh.voice is not None:
            self.mesh.voice.mute()

    def unmute(self) -> None:
        if self.mesh.voice is not None:
            self.mesh.voice.unmute()

    @property
    def audio_frames(self) -> collections.Counter[str]:
        """Audio frames heard per peer (20 ms each); empty without `voice=True`."""
        voice = self.mesh.voice
        return voice.frames if voice is not None else collections.Counter()

    @property
    def mesh_peers(self) -> set[str]:
        """Peers whose direct data channel is open now (the ones `MeshStatus` named)."""
        return self.mesh.connected()
