"""HTTP sign-in, join, reports and `/ws` with a token, over the real gateway and session edge."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from fluxnode.chain.entry import new_session_key, sign_session
from fluxnode.core.session import frames as fr
from fluxnode.core.session.entry import possession_message
from fluxnode.core.session.join import DENIED_PRIVATE
from fluxnode.core.session.wire import decode, encode
from fluxnode.core.siwe import parse_siwe
from fluxnode.gateway.api_input import MAX_JSON_BODY, b64url
from fluxnode.node.session_entry import DENIED_MANIFEST
from tests.unit.light_stack import Stack, Wallet, challenge, light_stack, sign_in, verify_body


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with light_stack(tmp_path) as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession, url: str, body: Any, status: int, token: str | None = None
) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    kw: dict[str, Any] = {"data": body} if isinstance(body, bytes | str) else {"json": body}
    async with http.post(url, headers=headers, **kw) as resp:
        assert resp.status == status, await resp.text()
        assert resp.content_type == "application/json"
        return await resp.json()


def error(body: Any) -> dict[str, str]:
    assert set(body) == {"error"}, body
    inner: dict[str, str] = body["error"]
    return inner


async def test_challenge_gives_a_siwe_message_naming_the_node_and_the_session_key(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    w = Wallet.new()
    ch = await challenge(http, stack.url, w)
    msg = parse_siwe(ch["message"])
    assert msg.domain == stack.domain and msg.chain_id == 80002
    assert msg.address == w.account.address and msg.nonce == ch["nonce"]
    assert msg.resources == (f"urn:flux:session-key:ed25519:{b64url(w.session_key)}",)
    assert ch["expires_at"] > time.time()


async def test_sign_in_join_and_the_socket_with_a_token(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    w = Wallet.new()
    token = await sign_in(http, stack.url, w)
    world = stack.records["public"].world_id
    answer = await post(http, f"{stack.url}/api/worlds/{world}/join", {}, 200, token)
    assert answer["allowed"] is True and answer["node"] == "node-a"
    assert answer["ws_urls"] == [stack.url.replace("http://", "ws://") + "/ws"]
    async with http.ws_connect(f"{answer['ws_urls'][0]}?token={token}") as ws:
        first = decode((await ws.receive()).data)
        assert isinstance(first, fr.SignedIn) and first.address == w.account.address.lower()
        await ws.send_bytes(encode(fr.Join(world, None, ())))
        while not isinstance(frame := decode((await ws.receive(timeout=10)).data), fr.Joined):
            assert not isinstance(frame, fr.Denied), frame
        assert frame.world_id == world and frame.node == "node-a"


async def test_ws_without_a_token_is_the_session_protocol(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(stack.url + "/ws") as ws:
        assert isinstance(decode((await ws.receive()).data), fr.Challenge)


async def test_ws_with_a_bad_or_unknown_token_is_refused_before_the_upgrade(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    for token in ("x" * 43, "short"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(f"{stack.url}/ws?token={token}")
        assert info.value.status == 401


async def test_join_refusals_carry_the_reason(stack: Stack, http: aiohttp.ClientSession) -> None:
    token = await sign_in(http, stack.url, Wallet.new())
    base = f"{stack.url}/api/worlds"
    private = stack.records["private"].world_id
    answer = await post(http, f"{base}/{private}/join", {}, 200, token)
    assert (answer["allowed"], answer["reason"]) == (False, DENIED_PRIVATE)
    absent = stack.records["absent"].world_id
    answer = await post(http, f"{base}/{absent}/join", {}, 200, token)
    assert (answer["allowed"], answer["reason"]) == (False, DENIED_MANIFEST)


async def test_a_verify_is_one_try_and_a_spent_nonce_is_refused(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    w = Wallet.new()
    ch = await challenge(http, stack.url, w)
    body = verify_body(w, ch)
    await post(http, stack.url + "/api/auth/verify", body, 200)
    again = error(await post(http, stack.url + "/api/auth/verify", body, 401))
    assert (again["code"], again["reason"]) == ("entry_proof_invalid", "no_challenge")
    # A fresh challenge for the same key, answered with the old (spent) proof.
    await challenge(http, stack.url, w)
    replay = error(await post(http, stack.url + "/api/auth/verify", body, 401))
    assert (replay["code"], replay["reason"]) == ("entry_proof_invalid", "nonce_reused")


async def test_forged_signatures_are_refused(stack: Stack, http: aiohttp.ClientSession) -> None:
    w = Wallet.new()
    ch = await challenge(http, stack.url, w)
    body = verify_body(w, ch)
    other = Account.create().sign_message(encode_defunct(text=ch["message"])).signature
    forged = error(await post(http, stack.url + "/api/auth/verify",
                              {**body, "signature": "0x" + bytes(other).hex()}, 401))  # fmt: skip
    assert forged["code"] == "entry_proof_invalid" and forged["reason"] == "wrong_signer"

    ch = await challenge(http, stack.url, w)
    body = verify_body(w, ch)
    stranger = sign_session(new_session_key(), possession_message(b"x" * 32))
    bad_possession = {**body, "possession_signature": b64url(stranger)}
    refused = error(await post(http, stack.url + "/api/auth/verify", bad_possession, 401))
    assert refused["code"] == "session_signature_invalid"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "bad_request"),
        (b"[]", 400, "bad_request"),
        ({"session_key": "abc"}, 400, "bad_request"),
        ({"session_key": "A" * 43, "address": "0x" + "11" * 20, "extra": 1}, 400, "bad_request"),
        ({"session_key": "A" * 42 + "=", "address": "0x" + "11" * 20}, 400, "bad_request"),
        ({"session_key": "A" * 43, "address": "bob"}, 400, "siwe_invalid"),
        (b"{" + b" " * (MAX_JSON_BODY + 1) + b"}", 413, "payload_too_large"),
    ],
)
async def test_malformed_and_oversized_challenges(
    stack: Stack, http: aiohttp.ClientSession, body: Any, status: int, code: str
) -> None:
    got = error(await post(http, stack.url + "/api/auth/challenge", body, status))
    assert got["code"] == code


async def test_tokens_expire_with_the_proof_and_junk_tokens_are_401(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    token = await sign_in(http, stack.url, Wallet.new())
    world = stack.records["public"].world_id
    url = f"{stack.url}/api/worlds/{world}/join"
    async with http.post(url) as resp:
        assert resp.status == 401 and error(await resp.json())["code"] == "token_invalid"
    async with http.post(url, headers={"Authorization": "Basic abc"}) as resp:
        assert resp.status == 401
    stack.light.clock = lambda: time.time() + 25 * 3600  # past the proof's expiry
    expired = error(await post(http, url, {}, 401, token))
    assert expired["code"] == "token_invalid"


async def test_reports_are_stored_for_the_operator_and_rate_limited(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    w = Wallet.new()
    token = await sign_in(http, stack.url, w)
    world = stack.records["public"].world_id
    body = {"world_id": world, "reason": "spam in chat", "subject": "0x" + "ab" * 20}
    created = await post(http, stack.url + "/api/reports", body, 201, token)
    (stored,) = await stack.reports.list(world)
    assert stored.id == created["id"] and stored.reporter == w.account.address.lower()
    assert stored.reason == "spam in chat"
    for _ in range(2):
        await post(http, stack.url + "/api/reports", body, 201, token)
    limited = error(await post(http, stack.url + "/api/reports", body, 429, token))
    assert limited["code"] == "rate_limited"
    bad = error(await post(http, stack.url + "/api/reports", {**body, "world_id": "x"}, 400, token))
    assert bad["code"] == "bad_request"
    nobody = error(await post(http, stack.url + "/api/reports", body, 401))
    assert nobody["code"] == "token_invalid"
