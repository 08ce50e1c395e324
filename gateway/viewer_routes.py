"""The browser viewer's static files: `GET /` (the world directory page) and `GET /viewer/*`.

The viewer (gateway/viewer/) is plain ES modules plus two vendored bundles, served as they are:
no build step at run time. The files are read once when the app is made (about 1 MB), each
with a strong ETag and, for the larger ones, a gzip copy, so serving them never touches the disk
or a thread. Only names in that fixed set are served; anything else under /viewer/ is a JSON
404, so no request path can reach another file. `viewer_page` is the HTML page itself, for other
routes that answer browsers with the viewer (a share link `/w/<world id>`): the page reads the
world id from its own URL.

Every response carries a Content-Security-Policy that allows only this origin's scripts and
connections (plus its WebSocket), so content a world ships cannot load code from elsewhere.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web

VIEWER_DIR: Final = Path(__file__).resolve().parent / "viewer"
TYPES: Final = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".md": "text/markdown",
}
GZIP_OVER: Final = 1024
CSP: Final = (
    "default-src 'self'; script-src 'self'; connect-src 'self' ws: wss: blob:; "
    "img-src 'self' data: blob:; style-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str


def load_viewer(root: Path = VIEWER_DIR) -> dict[str, StaticFile]:
    """Every servable file under `root`, by its path relative to it ("vendor/three.js")."""
    files = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in TYPES or path.name.startswith("."):
            continue
        body = path.read_bytes()
        packed = gzip.compress(body, 6, mtime=0) if len(body) > GZIP_OVER else None
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        kind = TYPES[path.suffix]
        files[path.relative_to(root).as_posix()] = StaticFile(body, packed, kind, etag)
    return files


VIEWER_FILES_KEY = web.AppKey("viewer_files", dict)


def _respond(request: web.Request, f: StaticFile) -> web.Response:
    headers = {
        "ETag": f.etag,
        # The files change when the node is upgraded, under the same names: revalidate.
        "Cache-Control": "no-cache",
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Vary": "Accept-Encoding",
    }
    if f.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    body = f.body
    if f.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
        body = f.gzipped
        headers["Content-Encoding"] = "gzip"
    charset = "utf-8" if f.content_type.startswith("text/") else None
    return web.Response(body=body, content_type=f.content_type, charset=charset, headers=headers)


async def viewer_page(request: web.Request) -> web.Response:
    """The viewer's index.html (directory, or the world its URL names)."""
    return _respond(request, request.app[VIEWER_FILES_KEY]["index.html"])


async def _viewer_file(request: web.Request) -> web.Response:
    name = request.match_info["name"] or "index.html"
    f = request.app[VIEWER_FILES_KEY].get(name)
    if f is None:
        raise web.HTTPNotFound(reason="Not Found")
    return _respond(request, f)


def add_viewer_routes(app: web.Application, *, root_page: bool = True) -> None:
    """`/viewer/*`, and `/` as the directory page unless `root_page` is False."""
    app[VIEWER_FILES_KEY] = load_viewer()
    if root_page:
        app.router.add_get("/", viewer_page)
    app.router.add_get("/viewer/{name:.*}", _viewer_file)
