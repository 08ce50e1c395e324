"""Logs as text or JSON lines, and no secret in either: private keys, session tokens, SIWE
signatures and bearer tokens are redacted wherever they appear in a record."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from fluxnode.node.logs import REDACTED, LogFormat, make_handler, redact

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
TOKEN = "Zk3vQ9sXbT0pLr7mN2cW8yH5aJ1eU6dG4fK0iO3qR9s"  # secrets.token_urlsafe(32)
SIGNATURE = "0x" + "ab12" * 32 + "1b"  # 65 bytes: r, s, v
assert len(SIGNATURE) == 2 + 130

#: One log call per kind of secret, as code might plausibly write them.
LINES = {
    "private key (0x hex)": ("wallet key %s loaded", (KEY,), KEY),
    "private key (bare hex)": ("key file holds %s", (KEY[2:],), KEY[2:]),
    "session token (field)": ("join refused: token=%s", (TOKEN,), TOKEN),
    "session token (dict)": ("answer %s", ({"token": TOKEN, "visitor": "v1"},), TOKEN),
    "session token (query)": ("GET /session?token=%s&x=1 failed", (TOKEN,), TOKEN),
    "SIWE signature": ("bad sign-in %s", (f"message=... sig {SIGNATURE}",), SIGNATURE),
    "signature (field)": ('{"signature": "%s"}', ("c2lnbmF0dXJlLWJ5dGVz",), "c2lnbmF0dXJlLWJ5dGVz"),
    "bearer token": ("headers: Authorization: Bearer %s", (TOKEN,), TOKEN),
}


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("fluxnode.test_logs")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    log.handlers.clear()
    log.propagate = True


def emit(logger: logging.Logger, fmt: LogFormat, *call: object, **kw: object) -> str:
    out = io.StringIO()
    handler = make_handler(fmt, out)
    logger.addHandler(handler)
    try:
        logger.info(*call, **kw)  # type: ignore[arg-type]
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


@pytest.mark.parametrize("fmt", list(LogFormat))
@pytest.mark.parametrize("kind", list(LINES))
def test_each_kind_of_secret_is_redacted(logger: logging.Logger, fmt: LogFormat, kind: str) -> None:
    msg, args, secret = LINES[kind]
    text = emit(logger, fmt, msg, *args)
    assert secret not in text
    assert REDACTED in text
    if fmt is LogFormat.JSON:
        entry = json.loads(text)
        assert entry["level"] == "info" and entry["logger"] == "fluxnode.test_logs"
        assert REDACTED in entry["message"]


@pytest.mark.parametrize("fmt", list(LogFormat))
def test_a_traceback_is_redacted_too(logger: logging.Logger, fmt: LogFormat) -> None:
    try:
        raise ValueError(f"could not parse key {KEY}")
    except ValueError:
        text = emit(logger, fmt, "loading failed", exc_info=True)
    assert KEY not in text and "ValueError" in text and REDACTED in text
    if fmt is LogFormat.JSON:
        assert "Traceback" in json.loads(text)["exc"]


def test_what_is_no_secret_stays_readable() -> None:
    line = (
        "world 0xab5801a7d398351b8be11c439e05c5b3259aec9b/hello -> "
        "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi (seq 3) "
        "from 12D3KooWGzBhUZ6B2TTYNm8Xp3T8vMjvPwbCWUWKUWbpYLJaMBpt tokens=5"
    )
    assert redact(line) == line


def test_json_lines_have_a_timestamp_and_one_object_a_line(logger: logging.Logger) -> None:
    text = emit(logger, LogFormat.JSON, "ready peer_id=%s", "12D3KooWX")
    assert text.count("\n") == 1
    entry = json.loads(text)
    assert set(entry) == {"ts", "level", "logger", "message"}
    assert entry["message"] == "ready peer_id=12D3KooWX" and entry["ts"].endswith("+00:00")


# -- call sites that could log a secret before any filter sees it --------------------------------
async def test_gateway_errors_log_the_path_without_its_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`/session?token=...` carries the visitor's session token: an error answer logged the
    raw path with the query, token included."""
    from aiohttp import web

    from fluxnode.core.errors import BadRequest, ChainUnavailable
    from fluxnode.gateway import json_error_middleware
    from tests.unit.gateway_helpers import get, raw_request, serve

    async def refuse(request: web.Request) -> web.Response:
        raise BadRequest("bad token")

    async def fail(request: web.Request) -> web.Response:
        raise ChainUnavailable("no endpoint")

    app = web.Application(middlewares=[json_error_middleware])
    app.router.add_get("/session", refuse)
    app.router.add_get("/join", fail)
    caplog.set_level(logging.DEBUG, logger="fluxnode")
    async with serve(app) as port:
        for path, code in (("/session", 400), ("/join", 503)):
            answer = await raw_request(port, get(f"{path}?token={TOKEN}"))
            assert answer.status == code
    logged = [r.getMessage() for r in caplog.records]
    assert any("/session" in m for m in logged) and any("/join" in m for m in logged)
    assert not any(TOKEN in m for m in logged), logged


def test_rpc_endpoints_are_logged_without_their_api_key(caplog: pytest.LogCaptureFixture) -> None:
    """Providers put the API key in the URL's path (Infura `/v3/<key>`, Alchemy `/v2/<key>`):
    a failing endpoint was logged with its whole URL, and web3's message repeats it."""
    from fluxnode.chain.rpc import RpcPool, RpcSettings

    api_key = "9aa3d95b3bc440fa88ea12eaa4456161"
    url = f"https://polygon-mainnet.infura.io/v3/{api_key}"
    pool = RpcPool(RpcSettings((url,), chain_id=137), w3_factory=lambda u, t: object())
    ep = pool.endpoints[0]
    assert ep.shown == "https://polygon-mainnet.infura.io/..."
    caplog.set_level(logging.INFO, logger="fluxnode")
    pool._failed(ep, OSError(f"500 Server Error for url: {url}"))
    assert api_key not in ep.last_error and ep.shown in ep.last_error
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "polygon-mainnet.infura.io" in logged and api_key not in logged
    # `flux-node status` shows the endpoints too (its output gets pasted into bug reports).
    assert pool.statistics()[0]["url"] == ep.shown
    assert api_key not in str(pool.statistics())
