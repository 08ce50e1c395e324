"""Headless Chromium (Debian `chromium`, driven by Playwright) for the viewer's tests.

The browser is the system one (`scripts/setup-chromium.sh` installs it; `playwright install`
is never run, it downloads). `world_page_url` is the ONE place that says which URL opens a
world's page, so the share-link route can replace the static one in a single edit.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from eth_account import Account
from eth_account.messages import encode_defunct

from fluxnode.client import Event, Visitor
from fluxnode.gateway.viewer_routes import add_viewer_routes
from tests.unit.gateway_helpers import serve

CHROMIUM = Path("/usr/bin/chromium")
#: How long a page may take to reach a state (launch, verification, sign-in, join).
PAGE_TIMEOUT_MS = 30_000
#: How long a Python visitor waits for an event the page caused.
EVENT_TIMEOUT_S = 20.0


#: True once the gateway's share link `/w/<world id>` serves the viewer page; until then the
#: static page takes the world id in its fragment. The page reads either form.
SHARE_LINKS = True


def world_page_url(gateway_url: str, world_id: str, cid: str | None = None) -> str:
    """The viewer page for `world_id` on a gateway; `cid` pins the version (no record needed)."""
    query = f"?cid={cid}" if cid is not None else ""
    if SHARE_LINKS:
        return f"{gateway_url.rstrip('/')}/w/{world_id}{query}"
    return f"{gateway_url.rstrip('/')}/viewer/index.html{query}#{world_id}"


#: Where the browser tests keep their screenshots when set (CI keeps that folder); else each
#: test's tmp dir.
ARTIFACTS_ENV = "FLUX_TEST_ARTIFACTS"


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """The folder for this test's artifacts: `$FLUX_TEST_ARTIFACTS` if set, else tmp_path."""
    where = os.environ.get(ARTIFACTS_ENV)
    if not where:
        return tmp_path
    folder = Path(where)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def keep_screenshot(page: Any, folder: Path, name: str) -> Path:
    """Screenshot `page` to `folder/name.png`, print where it is, and return the path."""
    shot = folder / f"{name}.png"
    await page.screenshot(path=str(shot))
    print(f"viewer screenshot: {shot}")
    return shot


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup-chromium.sh (scripts/test.sh does)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(chromium))
        try:
            yield b
        finally:
            await b.close()


class PageLog:
    """What a page printed: console errors and uncaught exceptions, for failure messages."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __str__(self) -> str:
        return "\n".join(self.lines[-40:]) or "(nothing)"


async def new_page(browser: Any) -> tuple[Any, PageLog]:
    page = await browser.new_page(viewport={"width": 1100, "height": 700})
    log = PageLog()
    page.on("console", lambda m: log.lines.append(f"console.{m.type}: {m.text}"))
    page.on("pageerror", lambda e: log.lines.append(f"pageerror: {e}"))
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    return page, log


async def inject_wallet(page: Any, account: Any) -> None:
    """An EIP-1193 `window.ethereum` whose `personal_sign` is eth-account's, in this process."""

    def personal_sign(message_hex: str, address: str) -> str:
        assert address.lower() == account.address.lower(), address
        sig = account.sign_message(encode_defunct(hexstr=message_hex)).signature
        return "0x" + bytes(sig).hex()

    await page.expose_function("fluxTestSign", personal_sign)
    await page.add_init_script(
        """window.ethereum = { request: async ({ method, params }) => {
          if (method === "eth_requestAccounts") return [ADDRESS];
          if (method === "personal_sign") return await window.fluxTestSign(params[0], params[1]);
          throw new Error("unsupported method " + method);
        } };""".replace("ADDRESS", json.dumps(account.address))
    )


def new_account() -> Any:
    return Account.create()


async def wait_state(page: Any, *states: str, log: PageLog | None = None) -> str:
    """Wait until the page's body[data-state] is one of `states`; returns it."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    wanted = list(states)
    try:
        await page.wait_for_function(
            "(s) => s.includes(document.body.dataset.state)", arg=wanted, timeout=PAGE_TIMEOUT_MS
        )
    except PlaywrightTimeout as exc:
        state = await page.evaluate("document.body.dataset.state")
        shown = await page.inner_text("body")
        raise AssertionError(
            f"page state {state!r}, not {wanted}; page text:\n{shown}\nlog:\n{log}"
        ) from exc
    return str(await page.evaluate("document.body.dataset.state"))


async def open_world(page: Any, log: PageLog, url: str, button: str) -> None:
    """Open the world page at `url`, sign in with `button`, and wait until it has joined."""
    await page.goto(url)
    assert await wait_state(page, "signin", log=log) == "signin"
    await page.click(button)
    state = await wait_state(page, "joined", "denied", "error", log=log)
    if state != "joined":
        shown = await page.inner_text("body")
        raise AssertionError(f"page state {state!r}, not joined; page text:\n{shown}\nlog:\n{log}")


async def until(visitor: Visitor, matches: Callable[[Event], bool], what: str) -> Event:
    """The first event of `visitor` that `matches`; fails naming `what` and what came instead."""
    seen: list[Event] = []
    try:
        async with asyncio.timeout(EVENT_TIMEOUT_S):
            while True:
                event = await visitor.next_event()
                if matches(event):
                    return event
                seen.append(event)
    except TimeoutError:
        raise AssertionError(f"no {what}; the visitor got {seen[-10:]}") from None


@pytest.fixture
async def viewer_only() -> AsyncIterator[str]:
    """A gateway serving only the viewer's files: for tests of the page's modules alone."""
    app = web.Application()
    add_viewer_routes(app)
    async with serve(app) as port:
        yield f"http://127.0.0.1:{port}"


#: Chromium flags for WebRTC on loopback with a fake microphone: loopback ICE candidates, no
#: mDNS-hidden host addresses (aiortc would spend ~1 s resolving `.local` names), a fake audio
#: device that needs no permission prompt, and audio that plays without a gesture. ONE
#: --disable-features flag in all: it replaces Playwright's own list.
MESH_ARGS = [
    "--allow-loopback-in-peer-connection",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


@pytest.fixture
async def mesh_browser(chromium: Path) -> AsyncIterator[Any]:
    """Chromium launched with `MESH_ARGS`, for the viewer's WebRTC tests."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(chromium), args=MESH_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice in this process gathers only 127.0.0.1 (the browser reaches it as a
    peer-reflexive candidate); test-only, undone after the test."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
async def page_wire(
    mesh_browser: Any, viewer_only: str, loopback_ice: None
) -> AsyncIterator[tuple[Any, PageLog]]:
    page, log = await new_page(mesh_browser)
    await page.goto(viewer_only + "/")
    from tests.browser.mesh_page import Wire

    w = Wire(page)
    await w.install()
    yield w, log
    await page.evaluate("window.t.mesh.close()")
