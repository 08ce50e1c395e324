"""The hub's timer on a node that hosts no instance yet: its load still goes out.

Members verify a relayed visitor's entry proof against the relaying node's gateway, which they
learn from its published load; redirects need it too. So an idle hub must wake its edge to
publish, not only a hub with rooms (whose tick timer used to carry the first publication).
"""

from __future__ import annotations

from fluxnode.core.session.directory_wire import decode_directory
from fluxnode.core.session.hub import SessionHub

GATEWAY = "http://127.0.0.1:8080"


def idle_hub() -> SessionHub:
    return SessionHub(
        "n1",
        verify_session=lambda key, message, signature: True,
        is_banned=lambda world, address: False,
        max_visitors=10,
        gateway_url=GATEWAY,
    )


def test_an_idle_hub_is_due_to_publish_its_load_at_once() -> None:
    hub = idle_hub()
    due = hub.get_timer()
    assert due is not None and due <= 100.0
    hub.handle_timer(100.0)
    data = hub.directory_to_publish(100.0)
    assert data is not None
    message = decode_directory(data)
    assert (message.load.node, message.load.gateway, message.summaries) == ("n1", GATEWAY, ())


def test_an_idle_hub_publishes_again_every_two_seconds() -> None:
    hub = idle_hub()
    assert hub.directory_to_publish(100.0) is not None
    assert hub.get_timer() == 102.0
    assert hub.directory_to_publish(101.0) is None
    assert hub.directory_to_publish(102.0) is not None
