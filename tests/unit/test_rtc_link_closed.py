"""A link closed while its offer is still being made sends no offer: the peer's answer to it
would otherwise reach the next link to that peer and break it."""

from __future__ import annotations

import asyncio

from fluxnode.client.rtc_link import PeerLink
from fluxnode.core.session.frames import LINK_DATA


class Owner:
    voice = None

    def __init__(self) -> None:
        self.signals: list[tuple[str, str]] = []

    async def signal(self, peer: str, kind: str, payload: str) -> None:
        self.signals.append((peer, kind))

    def link_changed(self, link: PeerLink) -> None: ...
    def link_failed(self, link: PeerLink, why: str) -> None: ...
    def link_ended(self, link: PeerLink) -> None: ...
    def link_message(self, link: PeerLink, data: bytes) -> None: ...

    def audio_allowed(self, peer: str) -> bool:
        return False


async def test_a_link_closed_while_its_offer_is_made_sends_no_offer() -> None:
    owner = Owner()
    link = PeerLink(owner, "peer", LINK_DATA, offerer=True, ice_servers=[])
    offering = asyncio.create_task(link.offer())
    await asyncio.sleep(0)  # the offer has started (gathering candidates)
    link.closed = True  # what `close` marks first
    await offering
    await link.close()
    assert owner.signals == []


async def test_an_open_link_sends_its_offer() -> None:
    owner = Owner()
    link = PeerLink(owner, "peer", LINK_DATA, offerer=True, ice_servers=[])
    await link.offer()
    await link.close()
    assert owner.signals == [("peer", "offer")]
