"""The optional HTTP gateway for light clients (aiohttp). Depends on core only."""

from fluxnode.gateway.app import make_gateway_app
from fluxnode.gateway.errors import json_error_middleware
from fluxnode.gateway.server import GatewayLimits, GatewayRunner

__all__ = ["GatewayLimits", "GatewayRunner", "json_error_middleware", "make_gateway_app"]
