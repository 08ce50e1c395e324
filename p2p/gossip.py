"""Gossipsub for Flux topics, configured deliberately (py-libp2p's defaults surprise).

- meshsub/1.1.0 only: offering 1.2 (IDONTWANT) stalled throughput here (50 vs 100 msg/s).
- Strict signing: every message carries its author's signature and peer ID; unsigned ones drop.
- Validation BEFORE relay: each subscribed topic has an async validator that asks the asyncio
  side (`ServiceIO.ask(ValidateGossip(...))`) — e.g. a world record is checked for signature,
  schema, freshness, seq and on-chain ownership — and only messages it accepts are delivered or
  forwarded. A rejected message costs the forwarding peer score (py-libp2p's router scoring).
- Spam protection: py-libp2p's default silently drops everything above 10 msg/s per peer and
  topic, our own publications included. We keep the protection on but set the rate
  deliberately (`max_rate_per_topic`), since Flux batches avatar updates per node and tick.
- Bounded delivery: accepted messages go to asyncio with `emit_nowait`; when the consumer is
  behind they are dropped and counted (`dropped`), never queued without bound.
- Flood publish for our own messages (go-libp2p's `floodPublish`, which py-libp2p 0.8.1 lacks):
  what this node originates goes to every peer subscribed to the topic, not only to its mesh,
  so a new record reaches direct neighbours in one hop even while the mesh is still forming
  or smaller than the topic. Graylisted peers are skipped. Relayed messages use the mesh.
- Heartbeat every second (py-libp2p's default is 120 s): mesh repair, GRAFTs after a start
  and IHAVE gossip to peers outside the mesh happen within a second, not minutes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from libp2p.abc import IHost
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from fluxnode.core.errors import BadRequest
from fluxnode.p2p.bridge import ServiceIO
from fluxnode.p2p.messages import GossipMessage, ValidateGossip

log = logging.getLogger("fluxnode.p2p.gossip")

#: Largest gossip payload we accept or publish (world records are < 16 KiB).
MAX_MESSAGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class GossipSettings:
    topics: tuple[str, ...] = ()
    #: Topics whose messages the asyncio side must accept before they are delivered or relayed.
    validated_topics: tuple[str, ...] = ()
    max_rate_per_topic: float = 200.0
    heartbeat_interval_s: int = 1
    degree: int = 6
    degree_low: int = 4
    degree_high: int = 12
    validate_timeout_s: float = 5.0


@dataclass
class GossipStats:
    delivered: int = 0
    dropped: int = 0
    rejected: int = 0
    published: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)


class FloodPublishGossipSub(GossipSub):
    """GossipSub that sends the messages this node originates to every subscribed peer."""

    def _get_peers_to_send(
        self,
        topic_ids: Iterable[str],
        msg_forwarder: ID,
        origin: ID,
        msg_id: bytes | None = None,
    ) -> Iterable[ID]:
        topic_ids = list(topic_ids)
        peers = set(super()._get_peers_to_send(topic_ids, msg_forwarder, origin, msg_id))
        pubsub = self.pubsub
        if pubsub is None or origin != pubsub.my_id:
            return peers
        scorer = self.scorer
        for topic in topic_ids:
            peers.update(
                peer
                for peer in pubsub.peer_topics.get(topic, ())
                if peer in self.peer_protocol
                and (scorer is None or not scorer.is_graylisted(peer, [topic]))
            )
        peers.discard(origin)
        return peers


class Gossip:
    """Owns one Pubsub+GossipSub pair on a host for the life of the host service."""

    def __init__(self, host: IHost, io: ServiceIO, settings: GossipSettings) -> None:
        self.host = host
        self.io = io
        self.settings = settings
        self.stats = GossipStats()
        self.router = FloodPublishGossipSub(
            protocols=[PROTOCOL_ID_V11],
            degree=settings.degree,
            degree_low=settings.degree_low,
            degree_high=settings.degree_high,
            heartbeat_initial_delay=0.1,
            heartbeat_interval=settings.heartbeat_interval_s,
            spam_protection_enabled=True,
            max_messages_per_topic_per_second=settings.max_rate_per_topic,
        )
        self.pubsub = Pubsub(
            host, self.router, strict_signing=True, max_inbound_rpc_size=MAX_MESSAGE_BYTES * 4
        )

    async def run(self) -> None:
        """Run until cancelled: start the services, subscribe, pump messages to asyncio."""
        async with background_trio_service(self.pubsub), background_trio_service(self.router):
            await self.pubsub.wait_until_ready()
            for topic in self.settings.validated_topics:
                self.pubsub.set_topic_validator(topic, self._validator(topic), True)
            for topic in self.settings.topics:
                sub = await self.pubsub.subscribe(topic)
                self.io.start_soon(self._pump, topic, sub)
            await self.io.sleep_forever()

    def _validator(self, topic: str) -> Any:
        async def validate(forwarder: Any, msg: Any) -> bool:
            data = bytes(msg.data)
            if len(data) > MAX_MESSAGE_BYTES:
                self.stats.rejected += 1
                return False
            try:
                author = ID(bytes(msg.from_id)).to_base58()
                ok = await self.io.ask(
                    ValidateGossip(topic, data, str(forwarder), author),
                    self.settings.validate_timeout_s,
                )
            except Exception as exc:  # fail closed: an unanswerable check rejects
                log.debug("validator for %s failed: %s", topic, exc)
                ok = False
            if not ok:
                self.stats.rejected += 1
            return ok

        return validate

    async def _pump(self, topic: str, sub: Any) -> None:
        own = self.host.get_id()
        while True:
            msg = await sub.get()
            author = msg.from_id
            if author == own.to_bytes():
                continue  # py-libp2p hands our own publications back to us
            try:
                author_id = ID(author).to_base58()
            except Exception:
                continue
            event = GossipMessage(topic, bytes(msg.data), author_id)
            if self.io.emit_nowait(event):
                self.stats.delivered += 1
                self.stats.by_topic[topic] = self.stats.by_topic.get(topic, 0) + 1
            else:
                self.stats.dropped += 1

    async def publish(self, topic: str, data: bytes) -> None:
        if len(data) > MAX_MESSAGE_BYTES:
            raise BadRequest(f"gossip message larger than {MAX_MESSAGE_BYTES} bytes")
        await self.pubsub.publish(topic, data)
        self.stats.published += 1

    def peers(self, topic: str) -> tuple[str, ...]:
        return tuple(str(p) for p in self.pubsub.peer_topics.get(topic, ()))
