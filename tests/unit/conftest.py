"""Fixtures the unit tests of the WebRTC mesh share: `loopback_ice` (a module takes it with
`pytestmark = pytest.mark.usefixtures("loopback_ice")`, so it is never forced on every unit
test) and `hub`, the `SignalHub` that plays the nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aioice.ice
import pytest

from tests.unit.mesh_double import SignalHub


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    # aioice leaves 127.0.0.1 out of its host candidates; tests have nothing else.
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
async def hub() -> AsyncIterator[SignalHub]:
    h = SignalHub()
    yield h
    await h.close()
