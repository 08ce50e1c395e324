"""The OpenAPI document describes exactly the registered routes, and a schemathesis run from it
against the real in-process gateway finds no 5xx and no error that is not `{"error": {...}}`."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxnode.gateway import GatewayLimits
from fluxnode.gateway.openapi import DOCUMENT
from tests.unit.light_stack import light_stack

#: Methods aiohttp adds by itself (HEAD beside every GET) are not routes of ours.
_AUTO = "HEAD"


def _registered(app: Any) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "*":
            continue
        out.add((route.method, resource.canonical))
    return out


def _documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method != "parameters"
    }


async def test_every_registered_route_is_documented_and_every_documented_one_exists(
    tmp_path: Path,
) -> None:
    async with light_stack(tmp_path) as stack:
        async with aiohttp.ClientSession() as http, http.get(stack.url + "/api/openapi.json") as r:
            served = await r.json()
        assert served == json.loads(json.dumps(DOCUMENT))
        assert stack.app is not None
        registered = _registered(stack.app)
    documented = _documented()
    explicit_heads = {(m, p) for m, p in documented if m == _AUTO}
    gets = {p for m, p in registered if m == "GET"}
    auto_heads = {(_AUTO, p) for p in gets} - explicit_heads
    assert registered - auto_heads == documented


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The stack on its own loop in a thread, so schemathesis' blocking calls can reach it."""
    ready: list[str] = []
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        unlimited = GatewayLimits(ip_rate=1e6, ip_burst=1e6, address_rate=1e6, address_burst=1e6)
        async with light_stack(tmp_path_factory.mktemp("fuzz"), unlimited) as stack:
            ready.append(stack.url)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(30)
    try:
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


def _operations() -> list[Any]:
    import schemathesis

    schema = schemathesis.openapi.from_dict(DOCUMENT)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzzing_from_the_document_finds_no_5xx_and_only_json_errors(
    live_url: str, mode: str
) -> None:
    from schemathesis import GenerationMode

    strategies = [op.as_strategy(GenerationMode(mode)) for op in _operations()]

    @settings(
        max_examples=200,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(st.one_of(strategies))
    def check(case: Any) -> None:
        response = case.call(base_url=live_url, timeout=10)
        where = f"{case.method} {case.formatted_path} -> {response.status_code}"
        assert response.status_code < 500, where + response.text[:300]
        assert "Traceback" not in response.text, where
        if response.status_code >= 400 and case.method != "HEAD":  # HEAD: no body to look at
            ctype = response.headers.get("content-type", [""])[0]  # schemathesis: lists
            assert ctype.startswith("application/json"), (where, dict(response.headers))
            body = response.json()
            assert set(body) == {"error"}, where
            assert isinstance(body["error"]["code"], str), where
            assert isinstance(body["error"]["message"], str), where

    check()
