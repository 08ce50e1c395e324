"""Sign-in and join over HTTP, and reports: the light client's routes that need a wallet.

1. `POST /api/auth/challenge` `{session_key, address}` → `{message, nonce, challenge,
   expires_at}`: `message` is the Sign-In with Ethereum text the wallet signs (built by
   `fluxnode.core.session.entry.build_entry_message` with this node's domain, URI, chain id and
   a fresh nonce; it names the session key as its resource), `challenge` 32 random bytes
   (base64url) the session key signs (`possession_message`). `address` is needed because a
   SIWE message names its signer.
2. `POST /api/auth/verify` `{message, signature, session_key, possession_signature}` → `{token,
   visitor, address, expires_at}`. The node checks the proof as it checks a WebSocket `Hello`
   (`Admission.sign_in`: domain, chain, expiry, the nonce spent once, the wallet signature,
   possession); the token is 32 random bytes, kept in memory until the proof expires.
3. `POST /api/worlds/{world_id}/join` (`Authorization: Bearer <token>`) → the access decision
   and reason (200 either way: a refusal is an answer, not a failed request); when allowed,
   which node and instance and the `/ws` URLs to connect to.
4. `POST /api/reports` (Bearer) `{world_id, reason, subject?, instance_id?}` → `{id}`.

Every failure is an error body (`gateway/errors.py`); a refused proof is 401 with its rule in
`reason` (``nonce_reused``, ``wrong_signer``, ``expired``...).
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from fluxnode.core.access import canonical_world_id
from fluxnode.core.errors import BadRequest, FluxError
from fluxnode.core.session.entry import MAX_ENTRY_SIGNATURE_BYTES, SESSION_KEY_BYTES
from fluxnode.core.siwe import MAX_MESSAGE_CHARS
from fluxnode.gateway.api_input import (
    b64url,
    b64url_bytes,
    bearer_token,
    hex_bytes,
    json_body,
    optional_text,
    text_field,
    world_id_of,
)
from fluxnode.gateway.light import LIGHT_API_KEY

MAX_REASON_CHARS: Final = 1000
_CHALLENGE = frozenset(("session_key", "address"))
_VERIFY = frozenset(("message", "signature", "session_key", "possession_signature"))
_REPORT = frozenset(("world_id", "reason"))
_REPORT_OPTIONAL = frozenset(("subject", "instance_id"))


async def auth_challenge(request: web.Request) -> web.Response:
    body = await json_body(request, _CHALLENGE)
    key = b64url_bytes(body, "session_key", SESSION_KEY_BYTES)
    address = text_field(body, "address", 42)
    answer = await request.app[LIGHT_API_KEY].auth_challenge(key, address)
    return web.json_response(
        {
            "message": answer.message,
            "nonce": answer.nonce,
            "challenge": b64url(answer.challenge),
            "expires_at": answer.expires_at,
        },
        headers={"Cache-Control": "no-store"},
    )


async def auth_verify(request: web.Request) -> web.Response:
    body = await json_body(request, _VERIFY)
    message = text_field(body, "message", MAX_MESSAGE_CHARS)
    signature = hex_bytes(body, "signature", MAX_ENTRY_SIGNATURE_BYTES)
    key = b64url_bytes(body, "session_key", SESSION_KEY_BYTES)
    possession = b64url_bytes(body, "possession_signature", 64)
    token = await request.app[LIGHT_API_KEY].auth_verify(message, signature, key, possession)
    return web.json_response(
        {
            "token": token.token,
            "visitor": token.visitor,
            "address": token.address,
            "expires_at": token.expires_at,
        },
        headers={"Cache-Control": "no-store"},
    )


def _ws_url(base: str) -> str:
    scheme, sep, rest = base.partition("://")
    ws = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    return f"{ws}{sep}{rest.rstrip('/')}/ws" if sep else base


async def join_world(request: web.Request) -> web.Response:
    token = bearer_token(request)
    world_id = world_id_of(request)
    answer = await request.app[LIGHT_API_KEY].join(token, world_id)
    if not answer.urls and answer.allowed and not answer.redirect:
        urls: tuple[str, ...] = (f"{request.scheme}://{request.host}",)  # this very gateway
    else:
        urls = answer.urls
    return web.json_response(
        {
            "allowed": answer.allowed,
            "reason": answer.reason,
            "world_id": answer.world_id,
            "node": answer.node,
            "instance_id": answer.instance_id,
            "redirect": answer.redirect,
            "gateways": list(urls),
            "ws_urls": [_ws_url(u) for u in urls],
        },
        headers={"Cache-Control": "no-store"},
    )


async def file_report(request: web.Request) -> web.Response:
    token = bearer_token(request)
    body = await json_body(request, _REPORT, _REPORT_OPTIONAL)
    try:
        world_id = canonical_world_id(body.get("world_id"))
    except FluxError as exc:
        raise BadRequest(f"world_id: {str(exc)[:200]}") from None
    reason = text_field(body, "reason", MAX_REASON_CHARS)
    subject = optional_text(body, "subject", 42)
    instance = optional_text(body, "instance_id", 128)
    report_id = await request.app[LIGHT_API_KEY].report(token, world_id, reason, subject, instance)
    return web.json_response({"id": report_id}, status=201)


def add_auth_routes(app: web.Application) -> None:
    """Needs `add_light_routes` (the `LightApi`); register before it (see there)."""
    app.router.add_post("/api/auth/challenge", auth_challenge)
    app.router.add_post("/api/auth/verify", auth_verify)
    app.router.add_post("/api/worlds/{world_id:.+}/join", join_world)
    app.router.add_post("/api/reports", file_report)
