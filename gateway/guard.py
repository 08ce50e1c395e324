"""Rate limits and CORS for the gateway, a part of its one middleware (gateway/edge.py), outside
the error layer, so its own answers and the headers it adds apply to error bodies too.

Rate limits are token buckets (`fluxnode.core.light_limits.RateTable`): one per client IP for
the light-client routes (`/api/`, `/w/`, `/ws`, `/session`; sign-in and join cost more), and
one per signed-in address for requests that carry a session token, so one wallet cannot spread
its load over many IPs nor one IP over many wallets. Past either: 429 with `Retry-After` (whole
seconds) and an error body. The content routes (`/ipfs/`) and `/healthz`/`/metrics` are not
counted here: they are bounded by the connection and write limits instead, and a page of a
world fetches many blocks. The IP is the socket's peer: behind a proxy every client has the
proxy's IP, so set `gateway.ip_rate = 0` there and let the proxy limit per client.

CORS is off unless the operator lists origins (`gateway.cors_origins`; `"*"` allows any): a
listed `Origin` gets `Access-Control-Allow-Origin` on every answer and its preflight
(`OPTIONS` with `Access-Control-Request-Method`) is answered 204 here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from fluxnode.core.errors import FluxError
from fluxnode.core.light_limits import RateTable
from fluxnode.gateway.errors import error_response

_LIMITED_PREFIXES = ("/api/", "/w/")
_LIMITED_PATHS = frozenset(("/ws", "/session"))
#: Tokens one request of these routes takes from its IP's bucket (each verify costs an
#: `ecrecover` or an `eth_call`; a challenge fills the pending table).
_COSTLY = frozenset(("/api/auth/challenge", "/api/auth/verify"))
_COST = 5.0
_CORS_METHODS = "GET, HEAD, POST, OPTIONS"
_CORS_HEADERS = "Authorization, Content-Type"


@dataclass(frozen=True)
class RateSettings:
    ip_rate: float = 20.0
    ip_burst: float = 60.0
    address_rate: float = 5.0
    address_burst: float = 30.0
    max_keys: int = 10_000


TokenOwner = Callable[[str], str | None]


def _token_of(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.query.get("token") if request.path == "/ws" else None


def make_guard(
    rates: RateSettings,
    cors_origins: tuple[str, ...],
    token_owner: TokenOwner | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Guard:
    """`token_owner(token)` -> the address that holds it, or None (unknown, expired)."""
    # A rate of 0: no per-IP limit (a proxy in front that limits its clients itself).
    by_ip = RateTable(rates.ip_rate, rates.ip_burst, rates.max_keys) if rates.ip_rate else None
    by_address = RateTable(rates.address_rate, rates.address_burst, rates.max_keys)
    any_origin = "*" in cors_origins
    origins = frozenset(cors_origins)

    def limited(request: web.Request) -> float | None:
        path = request.path
        if path not in _LIMITED_PATHS and not path.startswith(_LIMITED_PREFIXES):
            return None
        now = clock()
        cost = _COST if path in _COSTLY else 1.0
        wait = None if by_ip is None else by_ip.check(request.remote or "?", now, cost)
        if wait is not None or token_owner is None:
            return wait
        token = _token_of(request)
        if token is None:
            return None
        try:
            address = token_owner(token)
        except FluxError:
            address = None  # the handler answers the bad token itself
        return None if address is None else by_address.check(address, now)

    def cors_headers(request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        if origin is None or not (any_origin or origin in origins):
            return {}
        return {"Access-Control-Allow-Origin": "*" if any_origin else origin, "Vary": "Origin"}

    def early(request: web.Request) -> web.Response | None:
        """The guard's own answer (a CORS preflight, or 429), or None to go on."""
        cors = cors_headers(request) if "Origin" in request.headers else {}
        if (
            cors
            and request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers
        ):
            return web.Response(
                status=204,
                headers={
                    **cors,
                    "Access-Control-Allow-Methods": _CORS_METHODS,
                    "Access-Control-Allow-Headers": _CORS_HEADERS,
                    "Access-Control-Max-Age": "600",
                },
            )
        wait = limited(request)
        if wait is None:
            return None
        retry = str(max(1, math.ceil(wait)))
        return error_response(
            429,
            "rate_limited",
            f"too many requests; try again in {retry} s",
            headers={**cors, "Retry-After": retry},
        )

    async def add_cors(request: web.Request, response: web.StreamResponse) -> None:
        # At prepare time, so streamed bodies and WebSocket handshakes get them too.
        if "Origin" in request.headers:
            response.headers.update(cors_headers(request))

    return Guard(early, add_cors, by_ip, by_address)


@dataclass(frozen=True)
class Guard:
    early: Callable[[web.Request], web.Response | None]
    on_prepare: Callable[[web.Request, web.StreamResponse], Awaitable[None]]
    by_ip: RateTable | None
    by_address: RateTable
