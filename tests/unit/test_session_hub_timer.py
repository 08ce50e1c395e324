"""The hub's timer covers its directory publications from the start: a node with no instance
yet still publishes its load (and gateway, which members need to check its relayed visitors'
entry proofs), driven only by `get_timer` as the node's loop drives it."""

from __future__ import annotations

from fluxnode.core.session.directory_wire import decode_directory
from fluxnode.core.session.hub import SessionHub

from .hub_net import verify_session


def test_an_idle_hub_is_due_to_publish_its_load_at_once_then_every_2_s() -> None:
    hub = SessionHub("h1", verify_session=verify_session, is_banned=lambda w, a: False,
                     max_visitors=10, gateway_url="ws://h1.test/session")  # fmt: skip
    now = 1000.0
    due = hub.get_timer()
    assert due is not None and due <= now
    hub.handle_timer(now)
    data = hub.directory_to_publish(now)
    assert data is not None
    assert decode_directory(data).load.gateway == "ws://h1.test/session"
    assert hub.get_timer() == now + 2.0
