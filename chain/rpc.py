"""The one module that owns web3: a pool of JSON-RPC endpoints with chain-id checks, timeouts,
failover and optional quorum.

Each endpoint is an `AsyncWeb3` over HTTP with `ExtraDataToPOAMiddleware` (Polygon's blocks carry
more extraData than Ethereum allows) and web3's own retries turned off, so a dead endpoint costs
one timeout and then the next one answers. An endpoint whose `eth_chainId` differs from the
configured chain is excluded until a later health check sees the right id. Every web3/aiohttp
exception is translated into `ChainUnavailable` (no endpoint could answer) or `ChainCallFailed`
(the chain answered with a revert) so callers deal only with our error tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from fluxnode.core.errors import ChainCallFailed as ChainCallFailed  # re-exported
from fluxnode.core.errors import ChainUnavailable as ChainUnavailable
from fluxnode.core.errors import FluxError
from fluxnode.core.errors import QuorumFailed as QuorumFailed

log = logging.getLogger("fluxnode.chain")

T = TypeVar("T")


class EndpointState(enum.Enum):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    DOWN = "down"
    WRONG_CHAIN = "wrong_chain"


@dataclass
class Endpoint:
    url: str
    w3: Any
    state: EndpointState = EndpointState.UNKNOWN
    failures: int = 0
    retry_at: float = 0.0
    last_error: str = ""
    calls: int = 0

    @property
    def healthy(self) -> bool:
        return self.state is EndpointState.HEALTHY

    @property
    def shown(self) -> str:
        """The URL as logs show it: scheme and host only. Providers put the API key in the
        path or query (`/v3/<key>`, `?apikey=`), or in user info."""
        parts = urlsplit(self.url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
        hidden = "/..." if parts.path.strip("/") or parts.query else ""
        return f"{parts.scheme}://{host}{port}{hidden}"

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.shown,  # status output is pasted into bug reports: no API key
            "state": self.state.value,
            "failures": self.failures,
            "last_error": self.last_error,
            "calls": self.calls,
        }


@dataclass(frozen=True)
class RpcSettings:
    urls: tuple[str, ...]
    chain_id: int
    timeout_s: float = 5.0
    #: Seconds a failed endpoint rests before it is tried again (doubles per failure, capped).
    retry_after_s: float = 2.0
    max_retry_after_s: float = 60.0
    extra_headers: dict[str, str] = field(default_factory=dict)


def _make_w3(url: str, timeout_s: float) -> Any:
    from web3 import AsyncHTTPProvider, AsyncWeb3
    from web3.middleware import ExtraDataToPOAMiddleware

    provider = AsyncHTTPProvider(
        url,
        request_kwargs={"timeout": timeout_s},
        exception_retry_configuration=None,  # we fail over instead of retrying one endpoint
        cache_allowed_requests=True,  # web3 8 otherwise asks eth_chainId before every call
    )
    w3 = AsyncWeb3(provider)
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3


def translate(exc: BaseException) -> FluxError:
    """Map a web3/aiohttp/asyncio exception to our tree."""
    from web3.exceptions import ContractLogicError, Web3RPCError

    if isinstance(exc, FluxError):
        return exc
    if isinstance(exc, ContractLogicError):
        return ChainCallFailed(f"call reverted: {exc}")
    if isinstance(exc, Web3RPCError):
        return ChainCallFailed(f"RPC error: {exc}")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return ChainUnavailable("RPC request timed out")
    return ChainUnavailable(f"RPC endpoint failed: {type(exc).__name__}: {exc}")


class RpcPool:
    """Endpoints tried in configured order, skipping the ones resting after a failure."""

    def __init__(
        self,
        settings: RpcSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        w3_factory: Callable[[str, float], Any] = _make_w3,
    ) -> None:
        if not settings.urls:
            raise ValueError("at least one RPC URL is required")
        self.settings = settings
        self._clock = clock
        self.endpoints = [
            Endpoint(url, w3_factory(url, settings.timeout_s)) for url in settings.urls
        ]

    async def check_all(self) -> list[Endpoint]:
        """Ask every endpoint for its chain id; returns the healthy ones."""
        await asyncio.gather(*(self._check(ep) for ep in self.endpoints))
        return [ep for ep in self.endpoints if ep.state is EndpointState.HEALTHY]

    async def _check(self, ep: Endpoint) -> None:
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                chain_id = int(await ep.w3.eth.chain_id)
        except Exception as exc:
            self._failed(ep, exc)
            return
        if chain_id != self.settings.chain_id:
            if ep.state is not EndpointState.WRONG_CHAIN:
                log.warning(
                    "RPC %s is on chain %d, expected %d: excluded",
                    ep.shown,
                    chain_id,
                    self.settings.chain_id,
                )
            ep.state = EndpointState.WRONG_CHAIN
            ep.last_error = f"chain id {chain_id} != {self.settings.chain_id}"
            ep.retry_at = self._clock() + self.settings.max_retry_after_s
            return
        ep.state = EndpointState.HEALTHY
        ep.failures = 0

    def _failed(self, ep: Endpoint, exc: BaseException) -> None:
        ep.failures += 1
        ep.state = EndpointState.DOWN
        # web3 and aiohttp quote the whole URL in their messages (HTTPError "... for url: ").
        ep.last_error = f"{type(exc).__name__}: {exc}".replace(ep.url, ep.shown)[:300]
        rest = min(
            self.settings.max_retry_after_s, self.settings.retry_after_s * 2 ** (ep.failures - 1)
        )
        ep.retry_at = self._clock() + rest
        log.info("RPC %s failed (%s); resting %.1f s", ep.shown, ep.last_error, rest)

    def _candidates(self) -> list[Endpoint]:
        now = self._clock()
        ready = [ep for ep in self.endpoints if ep.state is EndpointState.HEALTHY]
        resting = [
            ep
            for ep in self.endpoints
            if ep.state is not EndpointState.HEALTHY and ep.retry_at <= now
        ]
        return ready + resting

    async def _on(self, ep: Endpoint, fn: Callable[[Any], Awaitable[T]]) -> T:
        if ep.state is not EndpointState.HEALTHY:
            await self._check(ep)  # a rested or never-checked endpoint proves its chain first
            if not ep.healthy:
                raise ChainUnavailable(f"{ep.shown}: {ep.last_error}")
        ep.calls += 1
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                return await fn(ep.w3)
        except Exception as exc:
            err = translate(exc)
            if isinstance(err, ChainUnavailable):
                self._failed(ep, exc)
            raise err from exc

    async def call(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Run `fn(w3)` on the first endpoint that answers. A revert is final (every honest
        endpoint would revert too); an unreachable endpoint moves on to the next."""
        errors: list[str] = []
        for ep in self._candidates():
            try:
                return await self._on(ep, fn)
            except ChainUnavailable as exc:
                errors.append(str(exc))
        raise ChainUnavailable(
            "chain unavailable: no healthy RPC endpoint answered"
            + (f" ({'; '.join(errors)})" if errors else "")
        )

    async def call_quorum(self, fn: Callable[[Any], Awaitable[T]], k: int) -> T:
        """Ask endpoints concurrently until `k` of them return the same answer."""
        if k <= 1:
            return await self.call(fn)
        candidates = self._candidates()
        if len(candidates) < k:
            raise QuorumFailed(f"quorum of {k} needs {k} healthy endpoints, have {len(candidates)}")
        results = await asyncio.gather(
            *(self._on(ep, fn) for ep in candidates), return_exceptions=True
        )
        answers: list[Any] = [r for r in results if not isinstance(r, BaseException)]
        for answer in answers:
            if sum(1 for other in answers if other == answer) >= k:
                return answer  # type: ignore[no-any-return]
        reverted = [r for r in results if isinstance(r, ChainCallFailed)]
        if len(reverted) >= k:
            raise reverted[0]
        raise QuorumFailed(f"no {k} of {len(candidates)} endpoints agreed")

    async def aclose(self) -> None:
        """Close every endpoint's HTTP session."""
        for ep in self.endpoints:
            disconnect = getattr(ep.w3.provider, "disconnect", None)
            if disconnect is not None:
                with contextlib.suppress(Exception):
                    await disconnect()

    def statistics(self) -> list[dict[str, Any]]:
        return [ep.describe() for ep in self.endpoints]
