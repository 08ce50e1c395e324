"""TEST-ONLY: WebRTC over loopback, for node processes started by tests; and a shorter
failed-pair spell for them.

aioice gathers host candidates on every interface except 127.0.0.1, so two peers on one machine
with no other network (the test machines) never connect. With `FLUX_TEST_LOOPBACK_ICE=1` in the
environment, `apply_test_loopback_ice` makes aioice offer 127.0.0.1 and nothing else; the node
calls it before its first `RTCPeerConnection` (`fluxnode.node.session_rtc`). A production node
must never set the variable: its visitors would be told to reach it at 127.0.0.1. Tests that
drive aiortc in their own process call `force_loopback_ice` directly.

`FLUX_TEST_MESH_FAIL_FOR=<seconds>` replaces the mesh rule's `FAIL_FOR` (60 s: how long a pair
whose ICE failed relays) on that node, so a test can see a failed pair mesh again within its
time limit. Not a config key: production nodes keep the rule's spell, which every client also
assumes (`fluxnode.client.failed_peers`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from fluxnode.core.errors import ConfigError
from fluxnode.core.session.mesh import FAIL_FOR

#: The variable tests set on node processes (accepted by the config loader, read only here).
LOOPBACK_ICE_ENV = "FLUX_TEST_LOOPBACK_ICE"
MESH_FAIL_FOR_ENV = "FLUX_TEST_MESH_FAIL_FOR"


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


def mesh_fail_for(env: Mapping[str, str] | None = None) -> float:
    """The failed-pair spell: `FAIL_FOR`, or what `FLUX_TEST_MESH_FAIL_FOR` says (tests only)."""
    given = (os.environ if env is None else env).get(MESH_FAIL_FOR_ENV)
    if given is None:
        return FAIL_FOR
    try:
        seconds = float(given)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= FAIL_FOR:
        raise ConfigError(MESH_FAIL_FOR_ENV, f"must be seconds in (0, {FAIL_FOR:g}]", "environment")
    return seconds
