"""Reading light-client requests strictly: JSON bodies, bearer tokens, world ids, key bytes.

Every check raises `BadRequest` (400) or `TokenInvalid` (401) naming what is wrong, before
the node is asked anything. Bodies are JSON objects with exactly the documented fields (an
unknown field is refused, so a typo is not silently ignored), at most `MAX_JSON_BODY` bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Final

from aiohttp import web

from fluxnode.core.access import canonical_world_id
from fluxnode.core.errors import BadRequest, FluxError, PayloadTooLarge, TokenInvalid

#: A sign-in verify carries the SIWE text (<= 8 KiB) and a signature (EIP-1271 wallets: up
#: to 16 KiB, so 32 KiB of hex): the largest body of the API.
MAX_JSON_BODY: Final = 48 * 1024
#: Tokens are 32 random bytes in unpadded base64url.
TOKEN_CHARS: Final = 43
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})+")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


async def json_body(
    request: web.Request, required: frozenset[str], optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise PayloadTooLarge(f"a request body is at most {MAX_JSON_BODY} bytes")
    raw = await request.content.read(MAX_JSON_BODY + 1)
    if len(raw) > MAX_JSON_BODY:
        raise PayloadTooLarge(f"a request body is at most {MAX_JSON_BODY} bytes")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("the body must be a JSON object (UTF-8)") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    missing = sorted(required - body.keys())
    if missing:
        raise BadRequest(f"missing field {missing[0]!r}")
    unknown = sorted(body.keys() - required - optional)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0][:40]!r}")
    return body


def text_field(body: dict[str, Any], name: str, limit: int, *, empty: bool = False) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if len(value) > limit or (not empty and not value):
        raise BadRequest(f"{name} must be 1 to {limit} characters")
    return value


def optional_text(body: dict[str, Any], name: str, limit: int) -> str | None:
    return None if body.get(name) is None else text_field(body, name, limit)


def b64url_bytes(body: dict[str, Any], name: str, size: int) -> bytes:
    """Exactly `size` bytes as unpadded base64url (the spelling of session keys)."""
    value = body.get(name)
    chars = (size * 4 + 2) // 3
    if not isinstance(value, str) or len(value) != chars or not _B64URL.fullmatch(value):
        raise BadRequest(f"{name} must be {size} bytes in unpadded base64url ({chars} chars)")
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise BadRequest(f"{name} is not base64url") from None
    if len(data) != size or b64url(data) != value:
        raise BadRequest(f"{name} is not canonical base64url")
    return data


def hex_bytes(body: dict[str, Any], name: str, max_bytes: int) -> bytes:
    value = body.get(name)
    if not isinstance(value, str) or len(value) > 2 + 2 * max_bytes or not _HEX.fullmatch(value):
        raise BadRequest(f"{name} must be 0x-prefixed hex of at most {max_bytes} bytes")
    return bytes.fromhex(value[2:])


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if header is None:
        raise TokenInvalid("sign in first: send Authorization: Bearer <token>")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN.fullmatch(token):
        raise TokenInvalid(f"Authorization must be Bearer and a {TOKEN_CHARS}-character token")
    return token


def check_token_text(token: str) -> str:
    if not _TOKEN.fullmatch(token):
        raise TokenInvalid(f"a token is {TOKEN_CHARS} base64url characters")
    return token


def world_id_of(request: web.Request) -> str:
    """The route's world id, in its canonical spelling (`0x<lower-case address>/<slug>` or
    `land:<token id>`), else BadRequest; `..`, encoded slashes and the like never match."""
    raw = request.match_info.get("world_id", "")
    try:
        return canonical_world_id(raw)
    except FluxError as exc:
        raise BadRequest(f"not a world id: {str(exc)[:200]}") from None
