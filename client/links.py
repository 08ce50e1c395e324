"""Node URLs and share links: where the session WebSocket is, and which world a link names.

A node is named by its gateway URL (``http://host:port``, as share links and `RedirectTo`
carry it); the session endpoint is ``GET /session`` on that listener, so ``http`` becomes
``ws`` and ``https`` becomes ``wss``. A ``ws(s)://`` URL is taken as it is. A share link is
``http(s)://host[:port]/w/<world_id>``; world ids may hold a ``/`` (``<0xaddress>/<slug>``),
so everything after ``/w/`` is the id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from fluxnode.core.access import WorldRef
from fluxnode.core.errors import BadRequest

SESSION_PATH: Final = "/session"
_WS_SCHEMES: Final = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def _split(url: str, what: str) -> tuple[str, str, str]:
    if not isinstance(url, str) or len(url) > 2048:
        raise BadRequest(f"{what} must be a URL of at most 2048 characters")
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in _WS_SCHEMES or not parts.hostname:
        raise BadRequest(f"{what} {url!r} is not an http(s):// or ws(s):// URL with a host")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        raise BadRequest(f"{what} {url!r} has a bad port") from None
    if parts.query or parts.fragment or parts.username or parts.password:
        raise BadRequest(f"{what} {url!r} must not carry a query, fragment or credentials")
    return parts.scheme.lower(), parts.netloc, parts.path


def session_url(node_url: str) -> str:
    """The session WebSocket URL of a node given by its gateway (or WebSocket) URL."""
    scheme, netloc, path = _split(node_url, "node URL")
    if scheme in ("ws", "wss") and path not in ("", "/"):
        return urlunsplit((scheme, netloc, path, "", ""))
    base = path.rstrip("/")
    if base.endswith(SESSION_PATH):
        base = base[: -len(SESSION_PATH)]
    return urlunsplit((_WS_SCHEMES[scheme], netloc, base + SESSION_PATH, "", ""))


def http_base(node_url: str) -> str:
    """The ``http(s)://host:port`` of a node URL (for its other routes, e.g. ``/ipfs/``)."""
    scheme, netloc, _path = _split(node_url, "node URL")
    return urlunsplit(({"ws": "http", "wss": "https"}.get(scheme, scheme), netloc, "", "", ""))


def manifest_url(node_url: str, world_id: str) -> str:
    """Where a node serves the ``world.json`` of a world it knows (its own verified copy):
    ``GET /api/worlds/{world_id}/manifest``; the ``/`` of a ``0x…/slug`` id stays a ``/``."""
    return f"{http_base(node_url)}/api/worlds/{quote(world_id, safe='/:')}/manifest"


@dataclass(frozen=True)
class WorldTarget:
    """What `flux-node visit` was pointed at: a world, and the node a share link named."""

    world_id: str
    node_url: str | None


def parse_target(text: str) -> WorldTarget:
    """A bare world id (``land:7``, ``0xabc…/plaza``) or a share link ``…/w/<world_id>``.

    Raises `BadRequest` naming what is wrong; the world id is checked like the node checks it.
    """
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("give a world id or a share link")
    text = text.strip()
    if "://" not in text:
        return WorldTarget(WorldRef.parse(text).world_id, None)
    scheme, netloc, path = _split(text, "share link")
    if scheme not in ("http", "https") or not path.startswith("/w/"):
        raise BadRequest(f"share link {text!r} is not http(s)://host/w/<world_id>")
    world_id = unquote(path[len("/w/") :]).rstrip("/")
    return WorldTarget(WorldRef.parse(world_id).world_id, urlunsplit((scheme, netloc, "", "", "")))
