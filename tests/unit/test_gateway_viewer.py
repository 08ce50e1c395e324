"""The viewer's static routes: `/` and `/viewer/*` serve the files of gateway/viewer/ only,
with a strict CSP, ETags and gzip; any other name (traversal included) is a JSON 404."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator

import pytest

from fluxnode.gateway import make_gateway_app
from fluxnode.gateway.viewer_routes import CSP, VIEWER_DIR, load_viewer
from tests.unit.gateway_helpers import FakeNode, get, raw_request, serve


@pytest.fixture
async def port() -> AsyncIterator[int]:
    async with serve(make_gateway_app(FakeNode())) as p:
        yield p


async def test_root_and_viewer_index_are_the_page(port: int) -> None:
    page = (VIEWER_DIR / "index.html").read_bytes()
    for target in ("/", "/viewer/", "/viewer/index.html"):
        r = await raw_request(port, get(target))
        assert r.status == 200, target
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.body == page


async def test_modules_are_javascript_gzipped_on_request_and_revalidated(port: int) -> None:
    three = (VIEWER_DIR / "vendor" / "three.js").read_bytes()
    r = await raw_request(port, get("/viewer/vendor/three.js", "Accept-Encoding: gzip"))
    assert r.status == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["content-encoding"] == "gzip"
    assert gzip.decompress(r.body) == three
    etag = r.headers["etag"]
    again = await raw_request(port, get("/viewer/vendor/three.js", f"If-None-Match: {etag}"))
    assert again.status == 304 and again.body == b""


@pytest.mark.parametrize(
    "target",
    [
        "/viewer/nope.js",
        "/viewer/../app.py",
        "/viewer/%2e%2e/viewer_routes.py",
        "/viewer/vendor/../../viewer_routes.py",
        "/viewer/vendor",
        "/viewer/.hidden",
        "/viewer/vendor/README.md/x",
    ],
)
async def test_other_names_are_json_404s(port: int, target: str) -> None:
    r = await raw_request(port, get(target))
    assert r.status == 404, target
    body = json.loads(r.body)
    # {"code", "message"}, or the same inside {"error": ...}
    assert body.get("error", body)["code"] == "not_found"


def test_only_viewer_file_types_are_loaded() -> None:
    names = set(load_viewer())
    assert {"index.html", "app.js", "style.css", "vendor/three.js", "vendor/vendor.js"} <= names
    assert all(n.rsplit(".", 1)[-1] in {"html", "js", "css", "md"} for n in names)
