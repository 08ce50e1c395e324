"""Rate limits (per IP, per signed-in address), CORS as configured, and `/metrics`."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fluxnode.core.light_limits import ExpiringTable, RateTable
from fluxnode.gateway import GatewayLimits
from tests.unit.light_stack import Wallet, light_stack, sign_in


def test_rate_table_refuses_past_the_burst_and_refills_with_time() -> None:
    table = RateTable(rate=2.0, burst=3.0, max_keys=2)
    assert [table.check("a", 0.0) for _ in range(3)] == [None, None, None]
    assert table.check("a", 0.0) == pytest.approx(0.5)
    assert table.check("a", 0.5) is None  # one token back after 1/rate seconds
    table.check("b", 0.5)
    table.check("c", 0.5)  # a third key: the least recently used ("a") is forgotten
    assert len(table) == 2 and table.check("a", 0.5) is None


def test_expiring_table_never_returns_expired_values_and_stays_bounded() -> None:
    table: ExpiringTable[int] = ExpiringTable(max_items=2)
    table.put("a", 1, expires_at=10.0, now=0.0)
    table.put("b", 2, expires_at=5.0, now=0.0)
    assert table.get("b", 4.9) == 2 and table.get("b", 5.0) is None
    table.put("c", 3, expires_at=10.0, now=6.0)
    table.put("d", 4, expires_at=10.0, now=6.0)  # full: the oldest ("a") goes
    assert table.get("a", 6.0) is None and table.pop("c", 6.0) == 3 and table.pop("c", 6.0) is None


async def test_per_ip_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    limits = GatewayLimits(ip_rate=0.01, ip_burst=3)
    async with light_stack(tmp_path, limits) as stack, aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.get(stack.url + "/api/worlds") as resp:
                assert resp.status == 200
        async with http.get(stack.url + "/api/worlds") as resp:
            assert resp.status == 429
            assert int(resp.headers["Retry-After"]) >= 1
            assert (await resp.json())["error"]["code"] == "rate_limited"
        async with http.get(stack.url + "/healthz") as resp:  # not a light-client route
            assert resp.status == 200


async def test_a_zero_ip_rate_means_no_per_ip_limit_but_addresses_stay_limited(
    tmp_path: Path,
) -> None:
    """Behind a proxy every client has the proxy's IP: `gateway.ip_rate = 0` for that."""
    limits = GatewayLimits(ip_rate=0, ip_burst=1, address_rate=0.01, address_burst=1)
    async with light_stack(tmp_path, limits) as stack, aiohttp.ClientSession() as http:
        for _ in range(20):
            async with http.get(stack.url + "/api/worlds") as resp:
                assert resp.status == 200
        token = await sign_in(http, stack.url, Wallet.new())
        url = f"{stack.url}/api/worlds/{stack.records['public'].world_id}/join"
        statuses = []
        for _ in range(2):
            async with http.post(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                statuses.append(resp.status)
        assert statuses == [200, 429]


async def test_per_address_limit_holds_whatever_the_ip(tmp_path: Path) -> None:
    limits = GatewayLimits(address_rate=0.01, address_burst=2)
    async with light_stack(tmp_path, limits) as stack, aiohttp.ClientSession() as http:
        token = await sign_in(http, stack.url, Wallet.new())
        world = stack.records["public"].world_id
        url = f"{stack.url}/api/worlds/{world}/join"
        auth = {"Authorization": f"Bearer {token}"}
        statuses = []
        for _ in range(3):
            async with http.post(url, headers=auth) as resp:
                statuses.append(resp.status)
        assert statuses == [200, 200, 429]
        other = await sign_in(http, stack.url, Wallet.new())  # another address: its own bucket
        async with http.post(url, headers={"Authorization": f"Bearer {other}"}) as resp:
            assert resp.status == 200


async def test_no_cors_headers_unless_configured(tmp_path: Path) -> None:
    origin = {"Origin": "https://app.example"}
    async with light_stack(tmp_path) as stack, aiohttp.ClientSession() as http:
        async with http.get(stack.url + "/api/worlds", headers=origin) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers
        preflight = {**origin, "Access-Control-Request-Method": "POST"}
        async with http.options(stack.url + "/api/auth/challenge", headers=preflight) as resp:
            assert resp.status == 405
            assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_configured_origins_get_cors_headers_and_preflights(tmp_path: Path) -> None:
    limits = GatewayLimits(cors_origins=("https://app.example",))
    async with light_stack(tmp_path, limits) as stack, aiohttp.ClientSession() as http:
        ok = {"Origin": "https://app.example"}
        async with http.get(stack.url + "/api/worlds", headers=ok) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
        async with http.get(stack.url + "/w/nope", headers=ok) as resp:  # errors too
            assert resp.status == 400
            assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
        async with http.get(
            stack.url + "/api/worlds", headers={"Origin": "https://evil.example"}
        ) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers
        preflight = {**ok, "Access-Control-Request-Method": "POST"}
        async with http.options(stack.url + "/api/auth/verify", headers=preflight) as resp:
            assert resp.status == 204
            assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]


async def test_metrics_count_requests_by_route_and_read_the_node_at_scrape_time(
    tmp_path: Path,
) -> None:
    async with light_stack(tmp_path) as stack, aiohttp.ClientSession() as http:
        world = stack.records["public"].world_id
        for path in ("/api/worlds", f"/api/worlds/{world}", "/w/nope", "/no/such/route"):
            async with http.get(stack.url + path) as resp:
                await resp.read()
        for method in ("PROPFIND", "MKCOL"):  # WebDAV and the like: one series for all
            async with http.request(method, stack.url + "/healthz") as resp:
                assert resp.status == 405
        async with http.get(stack.url + "/metrics") as resp:
            assert resp.status == 200 and resp.content_type == "text/plain"
            text = await resp.text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def requests(route: str, status: str) -> float:
        key = ("flux_http_requests_total",
               (("method", "GET"), ("route", route), ("status", status)))  # fmt: skip
        return samples[key]

    assert requests("/api/worlds", "200") == 1
    assert requests("/api/worlds/{world_id}", "200") == 1  # the template, not the id
    assert requests("/w/{world_id}", "400") == 1
    assert requests("unmatched", "404") == 1
    other = (
        "flux_http_requests_total",
        (("method", "other"), ("route", "unmatched"), ("status", "405")),
    )
    assert samples[other] == 2
    assert samples[("flux_http_response_bytes_total", (("route", "/api/worlds"),))] > 0
    assert samples[("flux_peers", ())] == 3
    assert samples[("flux_node_channels", ())] == 1
    assert samples[("flux_chain_healthy", ())] == 1
    assert samples[("flux_bridge_queue_depth", (("queue", "inbox"),))] == 1
