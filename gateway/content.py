"""`/ipfs/...` routes: the IPFS Trustless Gateway (raw blocks, CARs) plus deserialized responses
for browsers (files with Range and ETag, directory listings).

Only pinned content is served (the node never fetches on demand here). A file request whose
blocks are all in the content API's memory (small, hot files) is answered on the event loop
(`cached_file`); anything else takes one worker thread for the lookup (`open_file`, which also
reads a small file whole), and a large file's body is streamed as it is read.

Paths are parsed from the raw request path, so percent-encoded traversal (`%2e%2e`, `%2F`) is
seen and refused with a 400 JSON error rather than normalised away.
"""

from __future__ import annotations

import functools
import html
import mimetypes
from collections.abc import Hashable
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from fluxnode.core.cid import Cid
from fluxnode.core.content import ContentApi, ContentEntry, Kind
from fluxnode.core.errors import BadRequest, NotFound, RangeNotSatisfiable
from fluxnode.core.paths import split_segments
from fluxnode.gateway.hot_answers import HotAnswers
from fluxnode.gateway.ranges import parse_range
from fluxnode.gateway.server import LIMITS_KEY, GatewayLimits
from fluxnode.gateway.streaming import in_thread as _in_thread
from fluxnode.gateway.streaming import stream

CONTENT_KEY = web.AppKey("content_api", ContentApi)
HOT_KEY = web.AppKey("hot_answers", HotAnswers)

RAW_TYPE = "application/vnd.ipld.raw"
CAR_TYPE = "application/vnd.ipld.car"
IMMUTABLE = "public, max-age=29030400, immutable"
DAG_SCOPES = ("all", "entity", "block")
EXTRA_TYPES = {
    ".glb": "model/gltf-binary",
    ".gltf": "model/gltf+json",
    ".wasm": "application/wasm",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".ktx2": "image/ktx2",
    ".webp": "image/webp",
}


@functools.lru_cache(maxsize=1024)
def content_type_for(name: str) -> str:
    dot = name.rfind(".")
    ext = name[dot:].lower() if dot > 0 else ""
    if ext in EXTRA_TYPES:
        return EXTRA_TYPES[ext]
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


@functools.lru_cache(maxsize=4096)
def _parse_cid(text: str) -> Cid:
    """Cids are immutable values: the same text parses to the same Cid (errors are not kept)."""
    return Cid.parse(text)


@functools.lru_cache(maxsize=4096)
def _text(cid: Cid) -> str:
    """A Cid's canonical text (base32 of its bytes: worth keeping for hot CIDs)."""
    return str(cid)


def _parse_request_path(request: web.Request) -> tuple[Cid, list[str], bool]:
    raw = request.raw_path.split("?", 1)[0]
    if not raw.startswith("/ipfs/"):
        raise NotFound("not an /ipfs/ path")
    parts = raw[len("/ipfs/") :].split("/")
    try:
        decoded = [unquote(p, errors="strict") for p in parts]
    except UnicodeDecodeError:
        raise BadRequest("path is not valid UTF-8 after percent-decoding") from None
    if any("/" in p for p in decoded):
        raise BadRequest("encoded '/' inside a path segment is not allowed")
    cid = _parse_cid(decoded[0])
    segments = split_segments("/".join(decoded[1:]))
    return cid, segments, raw.endswith("/")


def _wanted_format(request: web.Request) -> str | None:
    fmt = request.query.get("format")
    if fmt is not None:
        if fmt not in ("raw", "car"):
            raise BadRequest(f"unsupported format {fmt!r} (raw or car)")
        return fmt
    accept = request.headers.get("Accept", "")
    for item in accept.split(","):
        mime = item.split(";")[0].strip().lower()
        if mime == RAW_TYPE:
            return "raw"
        if mime == CAR_TYPE:
            return "car"
    return None


def _not_modified(request: web.Request, etag: str) -> bool:
    inm = request.headers.get("If-None-Match", "")
    return any(tag.strip() in (etag, "*") for tag in inm.split(",")) if inm else False


def _common_headers(etag: str, ipfs_path: str) -> dict[str, str]:
    return {
        "ETag": etag,
        "Cache-Control": IMMUTABLE,
        "X-Ipfs-Path": ipfs_path,
        "X-Content-Type-Options": "nosniff",
        "Access-Control-Allow-Origin": "*",
    }


def _wants_block_or_car(request: web.Request) -> bool:
    """Might `_wanted_format` see a raw block or CAR asked for in `Accept`? (Conservative.)"""
    accept = request.headers.get("Accept")
    return accept is not None and "vnd.ipld" in accept.lower()


async def handle_ipfs(request: web.Request) -> web.StreamResponse:
    api = request.app[CONTENT_KEY]
    hot = request.app[HOT_KEY]
    raw = request.raw_path
    plain = "?" not in raw and not _wants_block_or_car(request)
    version = api.version() if plain else None
    if plain:
        # A changed block file drops the answer: the full way re-reads and re-hashes it.
        answer = hot.get(raw, version, api.unchanged)
        if answer is not None:
            if "If-None-Match" not in request.headers and "Range" not in request.headers:
                return web.Response(body=answer.body, headers=answer.headers)
            return await _file_response(
                request, api, answer.entry, answer.body, answer.name, answer.ipfs_path
            )
    root, segments, trailing = _parse_request_path(request)
    fmt = _wanted_format(request)
    ipfs_path = "/ipfs/" + "/".join([_text(root), *(quote(s) for s in segments)])
    if fmt is None:
        hit = api.cached_file(root, segments)
        if hit is not None:
            name = segments[-1] if segments else _text(hit[0].cid)
            if plain:
                _keep(hot, raw, version, hit[0], hit[1], name, ipfs_path)
            return await _file_response(request, api, hit[0], hit[1], name, ipfs_path)
    lookup = functools.partial(api.open_file, root, segments, small_body=fmt is None)
    entry, traversed, body = await _in_thread(lookup)

    if fmt == "raw":
        data: bytes = await _in_thread(api.block, entry.cid)
        etag = f'"{entry.cid}.raw"'
        headers = _common_headers(etag, ipfs_path)
        if _not_modified(request, etag):
            return web.Response(status=304, headers=headers)
        headers["Content-Disposition"] = f'attachment; filename="{entry.cid}.bin"'
        headers["Vary"] = "Accept"
        # aiohttp sends headers only (with the real Content-Length) when the request is HEAD.
        return web.Response(body=data, content_type=RAW_TYPE, headers=headers)

    if fmt == "car":
        scope = request.query.get("dag-scope", "all")
        if scope not in DAG_SCOPES:
            raise BadRequest(f"dag-scope must be one of {', '.join(DAG_SCOPES)}")
        etag = f'"{entry.cid}.car.{scope}"'
        headers = _common_headers(etag, ipfs_path)
        if _not_modified(request, etag):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = f"{CAR_TYPE}; version=1; order=dfs; dups=n"
        headers["Content-Disposition"] = f'attachment; filename="{entry.cid}.car"'
        headers["Vary"] = "Accept"
        resp = web.StreamResponse(headers=headers)
        chunks = await _in_thread(api.car, root, traversed, entry.cid, scope)
        return await stream(request, resp, chunks, _limits(request).write_stall_s)

    if entry.kind is Kind.DIRECTORY:
        if not trailing:
            # The raw path: the decoded one may hold characters a header cannot carry.
            raise web.HTTPMovedPermanently(location=request.raw_path.split("?", 1)[0] + "/")
        listing = await _in_thread(api.list_dir, entry.cid)
        index = next((link for link in listing if link.name == "index.html"), None)
        if index is not None:
            index_entry, _ = await _in_thread(api.resolve, index.cid, [])
            return await _file_response(request, api, index_entry, None, "index.html", ipfs_path)
        return _listing(request, ipfs_path, entry.cid, listing)
    if entry.kind is Kind.SYMLINK:
        raise BadRequest(f"{ipfs_path} is a symlink; fetch it with ?format=raw")
    name = segments[-1] if segments else _text(entry.cid)
    if plain and body is not None:
        _keep(hot, raw, version, entry, body, name, ipfs_path)
    return await _file_response(request, api, entry, body, name, ipfs_path)


def _file_headers(cid: Cid, name: str, ipfs_path: str) -> dict[str, str]:
    headers = _common_headers(f'"{_text(cid)}"', ipfs_path)
    headers["Accept-Ranges"] = "bytes"
    headers["Content-Type"] = content_type_for(name)
    return headers


def _keep(
    hot: HotAnswers,
    raw: str,
    version: Hashable,
    entry: ContentEntry,
    body: bytes,
    name: str,
    ipfs_path: str,
) -> None:
    if entry.kind is Kind.FILE and len(body) == entry.size:
        headers = _file_headers(entry.cid, name, ipfs_path)
        hot.put(raw, version, entry, body, name, ipfs_path, headers)


async def _file_response(
    request: web.Request,
    api: ContentApi,
    entry: ContentEntry,
    body: bytes | None,
    name: str,
    ipfs_path: str,
) -> web.StreamResponse:
    """The file `entry`: from `body` (all of its bytes) when given, else streamed."""
    cid, size = entry.cid, entry.size
    headers = _file_headers(cid, name, ipfs_path)
    etag = headers["ETag"]
    if _not_modified(request, etag):
        del headers["Content-Type"]
        return web.Response(status=304, headers=headers)
    start, end, status = 0, size, 200
    rng = request.headers.get("Range")
    if (
        rng is not None
        and request.method == "GET"
        and request.headers.get("If-Range", etag) == etag
    ):
        try:
            wanted = parse_range(rng, size)
        except RangeNotSatisfiable:
            del headers["Content-Type"]
            return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        if wanted is not None:
            start, end, status = wanted.start, wanted.end, 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    if body is not None and len(body) == size:
        part = body if (start, end) == (0, size) else body[start:end]
        return web.Response(body=part, status=status, headers=headers)
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = end - start
    chunks = await _in_thread(api.read, cid, start, end - start)
    return await stream(request, resp, chunks, _limits(request).write_stall_s)


def _limits(request: web.Request) -> GatewayLimits:
    return request.app[LIMITS_KEY] if LIMITS_KEY in request.app else GatewayLimits()


def _listing(request: web.Request, ipfs_path: str, cid: Cid, links: list[Any]) -> web.Response:
    rows = "\n".join(
        f'<tr><td><a href="{quote(link.name)}">{html.escape(link.name)}</a></td>'
        f"<td>{link.size}</td><td><code>{link.cid}</code></td></tr>"
        for link in sorted(links, key=lambda item: item.name)
    )
    page = (
        "<!doctype html><meta charset=utf-8>"
        f"<title>{html.escape(ipfs_path)}</title><h1>{html.escape(ipfs_path)}</h1>"
        f"<table><tr><th>name</th><th>size</th><th>cid</th></tr>\n{rows}</table>"
    )
    headers = _common_headers(f'"{cid}.dir"', ipfs_path)
    return web.Response(text=page, content_type="text/html", headers=headers)


def add_content_routes(app: web.Application, api: ContentApi) -> None:
    app[CONTENT_KEY] = api
    app[HOT_KEY] = HotAnswers()
    # `[\s\S]`, not `.`: a name may hold a newline (`%0A`), and `.` would not match it.
    app.router.add_route("GET", r"/ipfs/{path:[\s\S]*}", handle_ipfs)
    app.router.add_route("HEAD", r"/ipfs/{path:[\s\S]*}", handle_ipfs)
