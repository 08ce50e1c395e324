"""TEST-ONLY: WebRTC over loopback, for node processes started by tests.

aioice gathers host candidates on every interface except 127.0.0.1, so two peers on one machine
with no other network (the test machines) never connect. With `FLUX_TEST_LOOPBACK_ICE=1` in the
environment, `apply_test_loopback_ice` makes aioice offer 127.0.0.1 and nothing else; the node
calls it before its first `RTCPeerConnection` (`fluxnode.node.session_rtc`). A production node
must never set the variable: its visitors would be told to reach it at 127.0.0.1. Tests that
drive aiortc in their own process call `force_loopback_ice` directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: The variable tests set on node processes (accepted by the config loader, read only here).
LOOPBACK_ICE_ENV = "FLUX_TEST_LOOPBACK_ICE"


def _loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"]


def force_loopback_ice() -> None:
    """Make aioice gather 127.0.0.1 as its only host address (idempotent)."""
    import aioice.ice

    aioice.ice.get_host_addresses = _loopback_only


def apply_test_loopback_ice(env: Mapping[str, str] | None = None) -> bool:
    """`force_loopback_ice` when the environment asks for it (tests only); True if applied."""
    if (os.environ if env is None else env).get(LOOPBACK_ICE_ENV) != "1":
        return False
    force_loopback_ice()
    return True
