"""The viewer's signatures and encodings, checked against the Python implementations in Chromium.

Every replica re-checks a state operation's signature over `StateOp.signing_bytes` (canonical
JSON), so the page must produce those bytes exactly: ops and chat lines the page signs and
encodes are decoded by `fluxnode.core.session.wire` and accepted by a Python `WorldState` /
`verify_session_signature`, and ops Python signs are accepted by the page's replica. World
records signed by eth-account pass the page's record check; a tampered one does not.
"""

from __future__ import annotations

import json
import math
import random
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fluxnode.chain.entry import session_public_key, sign_session, verify_session_signature
from fluxnode.chain.records import sign_record
from fluxnode.client.replica import visitor_key
from fluxnode.core.session import wire
from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.hlc import Hlc
from fluxnode.core.session.state import OpKind, StateOp, WorldState
from fluxnode.core.world import parse_manifest
from tests.browser.conftest import new_account, new_page

pytestmark = [pytest.mark.slow, pytest.mark.interop]

#: `set:` literals whose canonical JSON differs between naive JS and Python: exponents,
#: integral floats, key order by code point (astral vs BMP), escapes, non-ASCII, U+2028.
SET_VALUES = [
    "1e-05", "0.1", "1e16", "100.0", "-0.0", "12345.678", "1.5e300", "true", "null",
    '"\\u00fc\\n\\u0001 \\u2028 \\ud83d\\ude00 \\"q\\""',
    '{"\\uffff": 1, "\\ud83d\\ude00": 2, "b": [1.5, true, null], "a": {"z": 0, "y": -3}}',
    "[[[1]]]",
]  # fmt: skip


def _manifest_bytes() -> bytes:
    objects = [
        {"id": f"o{i}", "type": "cube", "interactions": {"onClick": f"set:v={text}"},
         "permissions": {"canModify": True}}
        for i, text in enumerate(SET_VALUES)
    ]  # fmt: skip
    objects.append({"id": "door", "type": "door", "properties": {"open": False},
                    "interactions": {"onClick": "toggle:open"},
                    "permissions": {"canModify": True}})  # fmt: skip
    doc = {"name": "Signing", "settings": {"maxPlayers": 8, "visibility": "public"},
           "objects": objects}  # fmt: skip
    return json.dumps(doc).encode()


async def _page(browser: Any, base: str) -> Any:
    page, _ = await new_page(browser)
    await page.goto(f"{base}/viewer/index.html")
    return page


async def test_ops_and_chat_the_page_signs_pass_python_checks(
    browser: Any, viewer_only: str
) -> None:
    manifest_bytes = _manifest_bytes()
    manifest = parse_manifest(manifest_bytes)
    account = new_account()
    page = await _page(browser, viewer_only)
    out = await page.evaluate(
        """async ([manifest, address]) => {
          const ops = await import("/viewer/ops.js");
          const F = await import("/viewer/frames.js");
          const W = await import("/viewer/wallet.js");
          const key = W.newSessionKey();
          const clock = new ops.HlcClock(key.visitor);
          const frames = [];
          for (const obj of manifest.objects) {
            const current = obj.properties?.open;
            const plan = ops.planInteraction(obj, "onClick", current, address.toLowerCase(),
                                             clock.tick(Date.now()));
            frames.push(Array.from(F.stateOp(ops.signOp(plan, key.secret))));
          }
          const m = { instance: "inst-1", author: key.visitor, sentMs: Date.now(),
                      text: "héllo \\"world\\" 😀 \\u2028 tab\\tend" };
          m.signature = (await import("/viewer/vendor/vendor.js")).ed25519.sign(
            ops.chatSigningBytes(m), key.secret);
          return { visitor: key.visitor, frames, chat: Array.from(F.chat(m)) };
        }""",
        [json.loads(manifest_bytes), account.address],
    )
    key = visitor_key(out["visitor"])
    assert key is not None

    def verify(op: StateOp) -> bool:
        return verify_session_signature(key, op.signing_bytes(), op.signature)

    state = WorldState(manifest, verify)
    now = time.time()
    for raw, obj in zip(out["frames"], manifest.objects, strict=True):
        op = wire.decode(bytes(raw))
        assert isinstance(op, StateOp)
        assert op.object_id == obj.id and op.author == account.address.lower()
        assert op.hlc.actor == out["visitor"]
        state.check(op, now)  # raises OpRejected, naming the reason, if anything differs
        assert state.receive_op(op, now)
    assert state.value("door", "open") is True
    assert state.value("o3", "v") == 100.0

    chat = wire.decode(bytes(out["chat"]))
    assert isinstance(chat, ChatMessage)
    assert chat.text == 'héllo "world" 😀 \u2028 tab\tend'
    assert verify_session_signature(key, chat.signing_bytes(), chat.signature)


def _visitor_id(key: Ed25519PrivateKey) -> str:
    import base64

    return base64.urlsafe_b64encode(session_public_key(key)).rstrip(b"=").decode()


async def test_page_accepts_python_signed_ops_and_refuses_forged_ones(
    browser: Any, viewer_only: str
) -> None:
    key = Ed25519PrivateKey.generate()
    visitor = _visitor_id(key)
    author = new_account().address.lower()
    frames = []
    for i, value in enumerate([1e-05, 1e16, {"b": [1.5, None], "a": "ü😀"}, True]):
        op = StateOp(f"o{i}", OpKind.SET, "v", value, "onClick", Hlc(1_700_000_000_000 + i, 0,
                     visitor), author)  # fmt: skip
        op = StateOp(op.object_id, op.kind, op.prop, op.value, op.trigger, op.hlc, op.author,
                     sign_session(key, op.signing_bytes()))  # fmt: skip
        frames.append(list(wire.encode(op)))
    forged = StateOp("o9", OpKind.SET, "v", 2, "onClick", Hlc(1, 0, visitor), author,
                     sign_session(key, b"something else"))  # fmt: skip
    frames.append(list(wire.encode(forged)))
    page = await _page(browser, viewer_only)
    accepted = await page.evaluate(
        """async ([frames, visitor, author]) => {
          const F = await import("/viewer/frames.js");
          const { Replica } = await import("/viewer/replica.js");
          const r = new Replica("me", author);
          return frames.map((f) => r.receiveOp(F.decode(new Uint8Array(f))));
        }""",
        [frames, visitor, author],
    )
    assert accepted == [True, True, True, True, False]


async def test_page_formats_floats_as_python_does(browser: Any, viewer_only: str) -> None:
    rng = random.Random(7)
    floats = [0.1, 1e-05, 1e-4, 1e15, 1e16, 123456789012345.6, 5e-324, 1.7976931348623157e308,
              -2.5, 1 / 3, 2.0**60, 0.0001234]  # fmt: skip
    floats += [rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30) for _ in range(300)]
    floats += [float(rng.getrandbits(64)) for _ in range(50)]
    page = await _page(browser, viewer_only)
    shown = await page.evaluate(
        """async (xs) => { const ops = await import("/viewer/ops.js");
                           return xs.map(ops.pyFloat); }""",
        floats,
    )
    expected = [repr(x) for x in floats]
    wrong = [(x, s) for x, s, e in zip(floats, shown, expected, strict=True) if s != e]
    assert not wrong, wrong[:5]
    assert all(math.isfinite(x) for x in floats)


async def test_page_checks_world_record_signatures(browser: Any, viewer_only: str) -> None:
    owner = new_account()
    world_id = f"{owner.address.lower()}/plaza"
    cid = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
    good = sign_record(world_id=world_id, cid=cid, seq=3, visibility="private",
                       issued_at=1_767_225_600, account=owner,
                       access=["0x" + "11" * 20, "0x" + "ab" * 20]).to_json()  # fmt: skip
    other = new_account()
    by_other = sign_record(world_id=world_id, cid=cid, seq=3, visibility="public",
                           issued_at=1_767_225_600, account=other).to_json()  # fmt: skip
    land = sign_record(world_id="land:7", cid=cid, seq=1, visibility="public",
                       issued_at=1_767_225_600, account=other).to_json()  # fmt: skip
    tampered = dict(good, cid="QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn")
    page = await _page(browser, viewer_only)
    results = await page.evaluate(
        """async (cases) => {
          const V = await import("/viewer/verified.js");
          const out = [];
          for (const [id, r] of cases) {
            try { const c = await V.verifyRecord(id, r);
                  out.push({ ok: true, cid: c.cid.toString(), owner: c.ownerChecked }); }
            catch (e) { out.push({ ok: false, name: e.name, message: e.message }); }
          }
          return out;
        }""",
        [[world_id, good], [world_id, by_other], ["land:7", land], [world_id, tampered],
         ["land:8", land]],
    )  # fmt: skip
    assert results[0] == {"ok": True, "cid": cid, "owner": True}
    assert results[1]["name"] == "VerificationError"
    assert "not the world's owner" in results[1]["message"]
    assert results[2] == {"ok": True, "cid": cid, "owner": False}
    assert results[3] == {"ok": False, "name": "VerificationError",
                          "message": "the world record is not signed by its owner"}  # fmt: skip
    assert results[4]["name"] == "VerificationError" and "not land:8" in results[4]["message"]
