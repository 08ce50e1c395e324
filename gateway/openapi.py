"""The OpenAPI 3.1 description of every gateway route, served at `GET /api/openapi.json`.

Written by hand as data (a test checks that every registered route is described here and every
path here is registered, and a schemathesis run fuzzes the API from it). World ids hold a "/"
(`0x<address>/<slug>`): clients send it as is; `land:<token id>` ids have none.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from fluxnode import __version__

_ERROR: Final = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "reason": {"type": "string"},
            },
        }
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "malformed request",
        401: "missing, unknown or expired token, or a refused sign-in",
        404: "unknown world or content",
        405: "method not allowed",
        413: "body too large",
        429: "rate limited (see Retry-After)",
        503: "node busy or a dependency (chain) unavailable",
    }
    return {str(s): _json(_ref("Error"), text.get(s, "error")) for s in (*statuses, 429)}


_WORLD_ID: Final = {
    "name": "world_id",
    "in": "path",
    "required": True,
    "description": "`0x<lower-case address>/<slug>` or `land:<token id>`",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}
_OBJ: Final = {"type": "object"}
_STR: Final = {"type": "string"}
_BEARER: Final[list[dict[str, list[str]]]] = [{"bearer": []}]


def _body(
    required: list[str], props: dict[str, Any], optional: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": required,
                    "additionalProperties": False,
                    "properties": {**props, **(optional or {})},
                }
            }
        },
    }


_B64_32: Final = {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"}
_B64_64: Final = {"type": "string", "pattern": "^[A-Za-z0-9_-]{86}$"}
_ADDRESS: Final = {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}

PATHS: Final[dict[str, Any]] = {
    "/": {"get": {"summary": "the browser viewer's directory page",
                  "responses": {"200": {"description": "HTML",
                                        "content": {"text/html": {"schema": _STR}}}}}},
    "/viewer/{name}": {
        "parameters": [{"name": "name", "in": "path", "required": True, "schema": _STR}],
        "get": {"summary": "the browser viewer's static files",
                "responses": {"200": {"description": "a file"}, **_errors(404)}}},
    "/healthz": {"get": {"summary": "liveness (answers from the app alone)",
                         "responses": {"200": _json(_OBJ, "ok")}}},
    "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
        "200": {"description": "text exposition",
                "content": {"text/plain": {"schema": _STR}}}}}},
    "/api/openapi.json": {"get": {"summary": "this document",
                                  "responses": {"200": _json(_OBJ, "OpenAPI 3.1")}}},
    "/api/v0/node": {"get": {"summary": "the node's peer id, addresses and version",
                             "responses": {"200": _json(_OBJ, "identity")}}},
    "/ipfs/{path}": {
        "parameters": [{"name": "path", "in": "path", "required": True, "schema": _STR}],
        "get": {"summary": "pinned content: trustless (raw, CAR) or deserialized",
                "responses": {"200": {"description": "content"}, **_errors(400, 404, 406)}},
        "head": {"summary": "as GET without a body",
                 "responses": {"200": {"description": "content"}, **_errors(400, 404, 406)}},
    },
    "/session": {"get": {"summary": "the session protocol WebSocket (docs/session-protocol.md)",
                         "responses": {"101": {"description": "upgraded"}, **_errors(400, 503)}}},
    "/ws": {"get": {
        "summary": "/session for browsers; `?token=` signs the connection in",
        "parameters": [{"name": "token", "in": "query", "required": False, "schema": _B64_32}],
        "responses": {"101": {"description": "upgraded"}, **_errors(400, 401, 503)}}},
    "/w/{world_id}": {"get": {
        "summary": "share link: the viewer page (Accept: text/html) or the world as JSON",
        "parameters": [_WORLD_ID],
        "responses": {"200": {"description": "viewer page or world",
                              "content": {"text/html": {"schema": _STR},
                                          "application/json": {"schema": _ref("WorldLink")}}},
                      **_errors(400, 404)}}},
    "/api/worlds": {"get": {
        "summary": "directory search",
        "parameters": [
            {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 100}},
            {"name": "tag", "in": "query", "schema": {"type": "string", "maxLength": 64}},
            {"name": "creator", "in": "query", "schema": _ADDRESS},
            {"name": "sort", "in": "query", "schema": {"enum": ["popular", "new"]}},
            {"name": "limit", "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
            {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 300}},
        ],
        "responses": {"200": _json(_ref("WorldPage"), "one page"), **_errors(400)}}},
    "/api/worlds/{world_id}": {"get": {
        "summary": "one world: record, versions seen, hosting nodes, instances",
        "parameters": [_WORLD_ID],
        "responses": {"200": _json(_ref("WorldDetail"), "the world"), **_errors(400, 404)}}},
    "/api/worlds/{world_id}/manifest": {"get": {
        "summary": "the world.json of the current record (read by its CID)",
        "parameters": [_WORLD_ID],
        "responses": {"200": _json(_OBJ, "world.json"), **_errors(400, 404)}}},
    "/api/worlds/{world_id}/join": {"post": {
        "summary": "may the signed-in visitor enter? where to connect",
        "security": _BEARER,
        "parameters": [_WORLD_ID],
        "responses": {"200": _json(_ref("JoinAnswer"), "the decision"),
                      **_errors(400, 401, 404, 503)}}},
    "/api/auth/challenge": {"post": {
        "summary": "a SIWE message to sign and a challenge for the session key",
        "requestBody": _body(["session_key", "address"],
                             {"session_key": _B64_32, "address": _ADDRESS}),
        "responses": {"200": _json(_ref("Challenge"), "sign these"),
                      **_errors(400, 413, 503)}}},
    "/api/auth/verify": {"post": {
        "summary": "trade the signed message and possession signature for a session token",
        "requestBody": _body(
            ["message", "signature", "session_key", "possession_signature"],
            {"message": {"type": "string", "maxLength": 8192},
             "signature": {"type": "string", "pattern": "^0x([0-9a-fA-F]{2})+$"},
             "session_key": _B64_32, "possession_signature": _B64_64}),
        "responses": {"200": _json(_ref("Token"), "signed in"),
                      **_errors(400, 401, 413, 503)}}},
    "/api/reports": {"post": {
        "summary": "report a visitor or a world to this node's operator",
        "security": _BEARER,
        "requestBody": _body(
            ["world_id", "reason"],
            {"world_id": {"type": "string", "maxLength": 200},
             "reason": {"type": "string", "minLength": 1, "maxLength": 1000}},
            {"subject": {"oneOf": [_ADDRESS, {"type": "null"}]},
             "instance_id": {"oneOf": [{"type": "string", "maxLength": 128}, {"type": "null"}]}}),
        "responses": {"201": _json(_OBJ, "stored: {id}"), **_errors(400, 401, 413)}}},
}  # fmt: skip

_CARD: Final = {
    "type": "object",
    "required": ["world_id", "cid", "seq", "owner", "visibility", "summary", "visitors"],
    "properties": {
        "world_id": _STR, "cid": _STR, "seq": {"type": "integer"}, "owner": _STR,
        "visibility": _STR, "issued_at": {"type": "integer"},
        "name": {"type": ["string", "null"]}, "description": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": _STR},
        "thumbnail": {"type": ["string", "null"]}, "thumbnail_url": {"type": ["string", "null"]},
        "summary": {"enum": ["ok", "pending", "unavailable"]},
        "first_seen": {"type": "number"}, "visitors": {"type": "integer"},
        "instances": {"type": "integer"}, "last_visit": {"type": ["number", "null"]},
    },
}  # fmt: skip
_DETAIL: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["world", "record", "versions", "hosts", "instances"],
    "properties": {"world": _ref("WorldCard"), "record": _OBJ,
                   "versions": {"type": "array"}, "hosts": {"type": "array"},
                   "instances": _OBJ},
}  # fmt: skip

DOCUMENT: Final[dict[str, Any]] = {
    "openapi": "3.1.0",
    "info": {"title": "Flux node gateway", "version": __version__},
    "paths": PATHS,
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": _ERROR,
            "WorldCard": _CARD,
            "WorldDetail": _DETAIL,
            "WorldLink": {**_DETAIL, "properties": {**_DETAIL["properties"],
                                                     "manifest": {}, "links": _OBJ}},
            "WorldPage": {"type": "object", "required": ["worlds", "next_cursor"],
                          "properties": {"worlds": {"type": "array", "items": _ref("WorldCard")},
                                         "next_cursor": {"type": ["string", "null"]}}},
            "JoinAnswer": {"type": "object", "required": ["allowed", "reason", "world_id"],
                           "properties": {"allowed": {"type": "boolean"}, "reason": _STR,
                                          "world_id": _STR, "ws_urls": {"type": "array"}}},
            "Challenge": {"type": "object",
                          "required": ["message", "nonce", "challenge", "expires_at"]},
            "Token": {"type": "object",
                      "required": ["token", "visitor", "address", "expires_at"]},
        },
    },
}  # fmt: skip


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT, headers={"Cache-Control": "no-cache"})


def add_openapi_route(app: web.Application) -> None:
    app.router.add_get("/api/openapi.json", openapi_document)
