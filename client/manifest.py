"""Getting the world's manifest, which a visitor needs to plan interactions.

By default it comes from the visitor's node, which serves its verified copy of any world it
knows at ``GET /api/worlds/{world_id}/manifest`` (`node_manifest`). A caller may say where it
is instead: a `WorldManifest` it already has, a local ``world.json``, or a URL (e.g. a
gateway's trustless route, ``{node}/ipfs/{root_cid}/world.json``). Whatever the source, the
bytes go through `parse_manifest`, the validator every node runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from fluxnode.client.links import manifest_url
from fluxnode.core.errors import BadRequest, NoManifest, SessionLost
from fluxnode.core.world import DEFAULT_LIMITS, WorldManifest, parse_manifest

#: Where a manifest may come from (see the module docstring).
ManifestSource = WorldManifest | Path | str


async def load_manifest(
    source: ManifestSource, *, session: aiohttp.ClientSession | None = None, seconds: float = 10
) -> WorldManifest:
    """The parsed manifest from `source`; `WorldManifestInvalid`, `BadRequest` (not found,
    not readable) or `SessionLost` (the server could not be reached)."""
    if isinstance(source, WorldManifest):
        return source
    limit = DEFAULT_LIMITS.max_manifest_bytes
    if isinstance(source, Path) or "://" not in source:
        data = await asyncio.to_thread(_read, Path(source), limit)
    else:
        data = await _fetch(source, session, seconds, limit)
    return parse_manifest(data)  # refuses over-limit bytes first (we read at most limit + 1)


async def node_manifest(
    node_url: str, world_id: str, *, session: aiohttp.ClientSession | None, seconds: float
) -> WorldManifest:
    """The manifest `node_url` serves for `world_id`: `NoManifest` when it has none (it does
    not know the world, or cannot fetch its content), `SessionLost` when unreachable."""
    try:
        return await load_manifest(
            manifest_url(node_url, world_id), session=session, seconds=seconds
        )
    except BadRequest as exc:
        raise NoManifest(f"no manifest of {world_id} to plan with: {exc}") from None


def _read(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(limit + 1)
    except OSError as exc:
        raise BadRequest(f"cannot read manifest {path}: {exc.strerror or exc}") from None


async def _fetch(
    url: str, session: aiohttp.ClientSession | None, seconds: float, limit: int
) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise BadRequest(f"manifest URL {url!r} is not http(s)")
    own = session is None
    http = session or aiohttp.ClientSession()
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=seconds)) as resp:
            if resp.status != 200:
                raise BadRequest(f"manifest {url} answered HTTP {resp.status}")
            return await resp.content.read(limit + 1)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SessionLost(f"cannot fetch manifest {url}: {type(exc).__name__}") from None
    finally:
        if own:
            await http.close()
