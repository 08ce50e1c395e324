"""Flood publish: messages this node originates go to every peer subscribed to the topic (not
only its mesh), graylisted peers excepted; messages it relays still go to the mesh only."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11

from fluxnode.p2p.gossip import FloodPublishGossipSub

TOPIC = "/flux/1/worlds"


def peer() -> ID:
    return ID.from_pubkey(create_new_key_pair().public_key)


def router(me: ID, subscribed: list[ID], mesh: list[ID]) -> FloodPublishGossipSub:
    r = FloodPublishGossipSub(protocols=[PROTOCOL_ID_V11], degree=2, degree_low=1, degree_high=3)
    fake_pubsub: Any = SimpleNamespace(my_id=me, peer_topics={TOPIC: set(subscribed)})
    r.pubsub = fake_pubsub
    r.peer_protocol = {p: PROTOCOL_ID_V11 for p in subscribed}
    r.mesh = {TOPIC: set(mesh)}
    return r


def test_own_messages_go_to_every_subscribed_peer() -> None:
    me, a, b, c, d = (peer() for _ in range(5))
    r = router(me, [a, b, c, d], mesh=[a, b])
    assert set(r._get_peers_to_send([TOPIC], me, me)) == {a, b, c, d}


def test_relayed_messages_go_to_the_mesh_only() -> None:
    me, a, b, c, d = (peer() for _ in range(5))
    r = router(me, [a, b, c, d], mesh=[a, b, c])
    # From c (the forwarder), written by d: back to neither of them, and not beyond the mesh.
    assert set(r._get_peers_to_send([TOPIC], c, d)) == {a, b}


def test_graylisted_peers_get_no_flood() -> None:
    me, a, b, c = (peer() for _ in range(4))
    r = router(me, [a, b, c], mesh=[a])

    class Scorer:
        def is_graylisted(self, p: ID, topics: list[str]) -> bool:
            return p == c

        def allow_gossip(self, p: ID, topics: list[str]) -> bool:
            return True

    r.scorer = Scorer()  # type: ignore[assignment]
    assert set(r._get_peers_to_send([TOPIC], me, me)) == {a, b}


def test_peers_of_other_topics_and_unknown_protocols_are_left_out() -> None:
    me, a, b = (peer() for _ in range(3))
    r = router(me, [a], mesh=[])
    r.pubsub.peer_topics["/flux/1/other"] = {b}  # type: ignore[union-attr]
    stranger = peer()  # subscribed, but no gossipsub stream with it yet
    r.pubsub.peer_topics[TOPIC].add(stranger)  # type: ignore[union-attr]
    assert set(r._get_peers_to_send([TOPIC], me, me)) == {a}
