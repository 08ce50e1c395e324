"""One WebRTC link (aiortc `RTCPeerConnection`) from this visitor to one peer or to its node.

Signalling is non-trickle: `offer` and `answer` are sent once ICE gathering is complete (aiortc
gathers inside `setLocalDescription`), so their SDP carries every candidate. A peer that trickles
(`ice` signals, e.g. a browser) is still understood. What a link carries is fixed when it is
negotiated: a `flux-transforms` data channel (unordered, no retransmits: a lost transform is
replaced by the next one) when the offerer's plan gave `LINK_DATA`, an audio transceiver when
it gave `LINK_AUDIO` and the offerer takes part in voice; the answerer takes what is offered
(audio only when it takes part in voice). The owner (`fluxnode.client.mesh`) re-offers a link
whose plan needs more than was negotiated.

Each link's signalling steps run one at a time in the order they came (`post`): an answer is
never applied before the offer it answers is out. A link that is not connected within
`connect_timeout` seconds, or whose ICE fails, is reported once to the owner (`link_failed`);
one the peer closed, as `link_ended`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from fluxnode.client.voice import ToneTrack, Voice, count_audio
from fluxnode.core.session.frames import LINK_AUDIO, LINK_DATA

CHANNEL_LABEL: Final = "flux-transforms"
CONNECT_TIMEOUT: Final = 10.0


def sections(sdp: str) -> list[str]:
    """The kinds of an SDP's media sections in order ("audio", "application", ...)."""
    return [line[2:].split(" ", 1)[0] for line in sdp.splitlines() if line.startswith("m=")]


class LinkOwner(Protocol):
    """What a link needs from the mesh that holds it."""

    voice: Voice | None

    async def signal(self, peer: str, kind: str, payload: str) -> None: ...
    def link_changed(self, link: PeerLink) -> None: ...
    def link_failed(self, link: PeerLink, why: str) -> None: ...
    def link_ended(self, link: PeerLink) -> None: ...
    def link_message(self, link: PeerLink, data: bytes) -> None: ...
    def audio_allowed(self, peer: str) -> bool: ...


class PeerLink:
    """A peer connection to `peer`; `offerer` says which side makes the offer."""

    def __init__(
        self,
        owner: LinkOwner,
        peer: str,
        flags: int,
        *,
        offerer: bool,
        ice_servers: Sequence[RTCIceServer],
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.owner = owner
        self.peer = peer
        self.offerer = offerer
        self.data = bool(flags & LINK_DATA)
        self.audio = bool(flags & LINK_AUDIO) and owner.voice is not None
        # An explicit list, even when empty: aiortc's default is a public STUN server.
        self.config = RTCConfiguration(iceServers=list(ice_servers))
        self.pc = RTCPeerConnection(self.config)
        self.channel: RTCDataChannel | None = None
        self.connected = False
        self.closed = False
        self.problem: str | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(connect_timeout, self._timed_out)
        self.pc.on("connectionstatechange", self._state_changed)
        self.pc.on("datachannel", self._channel_offered)
        self.pc.on("track", self._track)

    @property
    def channel_open(self) -> bool:
        return self.channel is not None and self.channel.readyState == "open"

    def send(self, data: bytes) -> bool:
        """Send one message on the data channel; False when it is not open."""
        channel = self.channel
        if self.closed or channel is None or channel.readyState != "open":
            return False
        channel.send(data)
        return True

    # --- signalling, one step at a time ----------------------------------------------------

    def post(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` after the steps posted before it; a failing step fails the link."""
        self._spawn(self._run(step))

    async def _run(self, step: Callable[[], Awaitable[None]]) -> None:
        async with self._lock:
            if self.closed:
                return
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The SDP is the peer's, parsed by aiortc, whose errors on bad input are no
                # documented set (ValueError, KeyError, its own InvalidStateError...): any of
                # them means this link cannot be set up, which is what `failed` is for.
                self._fail(f"negotiation failed: {type(exc).__name__}: {exc}")

    async def offer(self) -> None:
        if self.data:
            self._use_channel(
                self.pc.createDataChannel(CHANNEL_LABEL, ordered=False, maxRetransmits=0)
            )
        voice = self.owner.voice
        if self.audio and voice is not None:
            self.pc.addTransceiver(self._tone(voice), direction="sendrecv")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        if not self.closed:  # closed while gathering: the peer's answer would meet the next link
            await self.owner.signal(self.peer, "offer", self.pc.localDescription.sdp)

    async def answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        voice = self.owner.voice
        # What the offer holds is taken whenever we can (voice on, for audio), whatever our
        # own plan says now: the peer's node may have sent its plan first, and what flows is
        # gated by the current plan anyway (`connected`, `audio_allowed`).
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio" and voice is not None:
                if transceiver.sender.track is None:
                    transceiver.sender.replaceTrack(self._tone(voice))
                transceiver.direction = "sendrecv"
                self.audio = True
            else:
                transceiver.direction = "inactive"  # no voice here: none either way
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        if not self.closed:
            await self.owner.signal(self.peer, "answer", self.pc.localDescription.sdp)

    async def accept(self, sdp: str) -> bool:
        """Apply the peer's answer; False (and nothing changes) when it answers another offer.

        Signals carry no offer id, so an answer to the offer of the link this one replaced (a
        re-offer made because the plan asked for more, before the old answer came) reaches
        this link. Its media sections are not ours (a re-offer always adds one), and applying
        it would fail the link; ours is still on its way."""
        local = self.pc.localDescription
        if local is not None and sections(sdp) != sections(local.sdp):
            return False
        if self.pc.signalingState != "have-local-offer":
            raise ValueError(f"an answer in signalling state {self.pc.signalingState}")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        return True

    async def candidate(self, line: str) -> None:
        """A trickled candidate (one `candidate:` line); empty: the peer has no more."""
        if self.pc.remoteDescription is None or not line.strip():
            return  # before the offer/answer there is nothing to add it to
        text = line.strip().removeprefix("a=").removeprefix("candidate:")
        found = candidate_from_sdp(text)
        found.sdpMLineIndex = 0  # everything is bundled on the first m-line
        await self.pc.addIceCandidate(found)

    # --- aiortc's events ---------------------------------------------------------------------

    def _tone(self, voice: Voice) -> ToneTrack:
        return ToneTrack(voice, lambda: not self.closed and self.owner.audio_allowed(self.peer))

    def _use_channel(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        channel.on("open", lambda: self.owner.link_changed(self))
        channel.on("close", lambda: self.owner.link_changed(self))
        channel.on("message", self._message)

    def _channel_offered(self, channel: RTCDataChannel) -> None:
        if channel.label != CHANNEL_LABEL or self.channel is not None:
            channel.close()  # nothing but our one channel rides a link
            return
        self.data = True
        self._use_channel(channel)
        self.owner.link_changed(self)

    def _message(self, message: bytes | str) -> None:
        if isinstance(message, bytes) and not self.closed:
            self.owner.link_message(self, message)

    def _track(self, track: MediaStreamTrack) -> None:
        voice = self.owner.voice
        if track.kind == "audio" and voice is not None:
            self._spawn(count_audio(track, self.peer, voice, self._hears))

    def _hears(self) -> bool:
        return not self.closed and self.owner.audio_allowed(self.peer)

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and not self.connected:
            self.connected = True
            self._deadline.cancel()
            self.owner.link_changed(self)
        elif state == "failed":
            self._fail("ICE failed")
        elif state == "closed" and not self.closed and self.problem is None:
            # The peer closed it (DTLS close): it left, or it is starting the link over. Not
            # an ICE failure, so no `failed` signal: the pair keeps its place in the plan.
            self.problem = "closed by the peer"
            self.owner.link_ended(self)

    def _timed_out(self) -> None:
        if not self.connected:
            self._fail("not connected in time")

    def _fail(self, why: str) -> None:
        if self.closed or self.problem is not None:
            return
        self.problem = why
        self.owner.link_failed(self, why)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Close the connection and stop its tasks; safe to call more than once."""
        if self.closed:
            return
        self.closed = True
        self._deadline.cancel()
        voice = self.owner.voice
        if voice is not None:
            voice.notify()  # a tone waiting for the gate sees the link is gone
        await self.pc.close()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
