"""Live sessions across three real `flux-node run` processes on loopback, with a real anvil.

One network (anvil + contracts, land and tickets minted, three nodes with gateways, worlds of
every access kind) is built once for the module (`session_fixtures.start_network`); each test
uses its own worlds and its own visitors, so what one test does cannot satisfy another's
assertions. The node-kill test runs last: it leaves node c dead.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from fluxnode.chain.entry import new_session_key, sign_session
from fluxnode.client import Chat, Closed, PeerJoined, PeerLeft, StateChanged
from fluxnode.core.session import frames as fr
from fluxnode.core.session import wire
from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.entry import possession_message
from fluxnode.core.session.join import (
    DENIED_BANNED,
    DENIED_NO_TICKET,
    DENIED_NOT_FRIEND,
    DENIED_PRIVATE,
)
from fluxnode.core.session.presence import Transform
from fluxnode.core.session.state import WorldState
from fluxnode.core.world import parse_manifest
from tests.integration.session_fixtures import (
    SMALL_WORLD_PLAYERS,
    Network,
    key_file,
    network,
    rpc,
)
from tests.integration.session_visitors import (
    DOOR,
    RawSession,
    Watched,
    close_all,
    door_op,
    is_peer,
    join_instance,
    moved_to,
    now_ms,
    raw_visitor_id,
    refused,
    refused_hello,
    stranger,
    visit,
    visit_cli,
)

pytestmark = pytest.mark.slow

DOOR_CLICK = ("door-1", "onClick")
#: Transforms a flooding client sends back to back (the node takes 10 a second).
FLOOD = 300


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with network(tmp_path_factory.mktemp("sessions")) as built:
        print(f"network set-up: {built.timings}")
        yield built


# --- 1. access rules and instances, 30 visitors over 3 nodes ---------------------------------


async def test_thirty_visitors_access_rules_and_instances(net: Network) -> None:
    a, b, c = net.url("a"), net.url("b"), net.url("c")
    w, p = net.worlds, net.people
    seated: list[Watched] = []
    try:
        # plaza: 12 visitors over the three nodes, 4 seats per instance -> at least 3 instances
        plaza_nodes = [a, b, c] * 4
        plaza = await asyncio.gather(
            *(visit(u, stranger(), w["plaza"], f"plaza-{i}") for i, u in enumerate(plaza_nodes))
        )
        seated += plaza
        per_instance = collections.Counter(v.instance for v in plaza)
        assert len(per_instance) >= 3, per_instance
        assert max(per_instance.values()) <= SMALL_WORLD_PLAYERS, per_instance

        # ticketed land world: holders on every node get in; others are told why not
        # ticketed land world: holders on every node get in (one of them through the
        # `flux-node visit` CLI); others are told why not (one of them through the CLI too)
        holder_key = key_file(net.tmp / "holder-c.key", p["holder_c"])
        stranger_key = key_file(net.tmp / "stranger.key", stranger())
        holders, cli_holder, cli_stranger, reason = await asyncio.gather(
            asyncio.gather(
                visit(a, p["holder_a"], w["ticketed"], "holder-a"),
                visit(b, p["holder_b"], w["ticketed"], "holder-b"),
                visit(b, p["short_holder"], w["ticketed"], "short-holder"),
            ),
            asyncio.to_thread(visit_cli, c, holder_key, w["ticketed"], "--for", "1"),
            asyncio.to_thread(visit_cli, c, stranger_key, w["ticketed"], "--for", "1"),
            refused(a, stranger(), w["ticketed"]),
        )
        seated += holders
        assert reason == DENIED_NO_TICKET
        code, events = cli_holder
        assert code == 0 and events[0]["event"] == "joined", events
        assert events[0]["address"] == p["holder_c"].address.lower(), events[0]
        code, events = cli_stranger
        assert code == 1, events
        assert [(e["event"], e["reason"]) for e in events] == [("denied", DENIED_NO_TICKET)]

        # private world: its owner only; friends world: its list only
        seated.append(await visit(b, net.owner, w["vault"], "vault-owner"))
        reasons = await asyncio.gather(
            refused(a, stranger(), w["vault"]), refused(c, stranger(), w["vault"])
        )
        assert reasons == [DENIED_PRIVATE] * 2
        seated += await asyncio.gather(
            *(visit(u, p[f"friend_{i}"], w["club"], f"friend-{i}") for i, u in enumerate([a, b, c]))
        )
        reasons = await asyncio.gather(
            refused(b, stranger(), w["club"]), refused(c, stranger(), w["club"])
        )
        assert reasons == [DENIED_NOT_FRIEND] * 2

        # a banned address gets in nowhere; everyone else does
        reasons = await asyncio.gather(*(refused(u, p["banned"], w["arena"]) for u in (a, b, c)))
        assert reasons == [DENIED_BANNED] * 3
        seated += await asyncio.gather(
            *(visit(u, stranger(), w["arena"], f"arena-{i}") for i, u in enumerate([a, b, c]))
        )
        # 30 visitors: 22 seated here and one by the CLI, 6 strangers refused (one by the
        # CLI), the banned address 3 times
        assert len(seated) == 22

        # the short-lived ticket type expires on chain: after the time jump it lets nobody in,
        # while a long-lived one still does
        for v in holders:
            await v.close()
        seated = [v for v in seated if v not in holders]
        now = int(net.w3.eth.get_block("latest")["timestamp"])
        rpc(net.w3, "evm_increaseTime", net.short_ticket_expires - now + 60)
        rpc(net.w3, "evm_mine")
        await net.await_indexed(int(net.w3.eth.block_number))
        reasons = await asyncio.gather(
            refused(a, p["short_holder"], w["ticketed"]),
            refused(b, p["short_holder"], w["ticketed"]),
        )
        assert reasons == [DENIED_NO_TICKET] * 2
        seated.append(await visit(c, p["holder_a"], w["ticketed"], "holder-a-again"))
    finally:
        await close_all(seated)


# --- 2. presence and shared state across nodes ---------------------------------------------


async def test_visitors_on_three_nodes_see_each_other_move_and_agree_on_the_door(
    net: Network,
) -> None:
    hall, manifest = net.worlds["hall"], net.hello_manifest
    va = await visit(net.url("a"), stranger(), hall, "hall-a", manifest=manifest)
    visitors = [va]
    try:
        for name in ("b", "c"):
            label = f"hall-{name}"
            url = net.url(name)
            visitors.append(
                await join_instance(url, stranger(), hall, label, va.instance, manifest=manifest)
            )
        vb = visitors[1]
        for watcher in visitors:  # everyone hears of everyone else
            for other in visitors:
                if other is not watcher:
                    await watcher.wait_for(
                        lambda e, o=other: (
                            isinstance(e, PeerJoined)  # type: ignore[misc]
                            and (e.address or "").lower() == o.address
                        ),
                        f"PeerJoined of {other.label}",
                    )

        # b's visitor and a's visitor step aside; each is seen where it went, on every node
        marks = {v.label: v.mark() for v in visitors}
        targets = {}
        for mover, dx in ((vb, 0.8), (va, -0.8)):
            spawn = mover.v.joined.spawn.position  # type: ignore[union-attr]
            targets[mover.label] = (spawn[0] + dx, spawn[1], spawn[2])
            await mover.v.move(targets[mover.label])
        for mover in (vb, va):
            for watcher in visitors:
                if watcher is not mover:
                    await watcher.wait_for(
                        moved_to(mover, targets[mover.label]),
                        f"PeerMoved of {mover.label} to {targets[mover.label]}",
                        since=marks[watcher.label],
                    )

        # two visitors on different nodes click the door at once: every replica ends up
        # holding the op the merge rule picks (the one a fresh replica keeps of the two)
        op_a, op_b = await asyncio.gather(va.v.interact(DOOR[0]), vb.v.interact(DOOR[0]))
        judge = WorldState(parse_manifest(manifest.read_bytes()), lambda op: True)
        for op in (op_a, op_b):
            judge.receive_op(op, time.time())
        (winner,) = [op for op in judge.snapshot() if (op.object_id, op.prop) == DOOR]
        deadline = time.monotonic() + 20
        while any(door_op(v) != winner for v in visitors):
            if time.monotonic() > deadline:
                held = {v.label: door_op(v) for v in visitors}
                raise AssertionError(f"replicas never agreed on {winner}: {held}")
            await asyncio.sleep(0.05)
        values = {v.label: v.v.replica.state.value(*DOOR) for v in visitors}  # type: ignore[union-attr]
        assert set(values.values()) == {winner.value}, values
    finally:
        await close_all(visitors)


# --- 4. bad input against a live node --------------------------------------------------------

PROOF_REFUSED = "denied: entry proof refused ("


async def test_replayed_and_forged_entry_proofs_are_refused(net: Network) -> None:
    url, alice, mallory = net.url("a"), stranger(), stranger()
    first = await RawSession.open(url)
    try:
        hello, signed_in = await first.sign_in(alice)
        assert signed_in.address == alice.address.lower()
    finally:
        await first.close()

    # the same Hello on a new connection (its nonce is spent; the challenge is another)
    replayed = await refused_hello(url, lambda raw, ch: hello)
    assert replayed.startswith(PROOF_REFUSED + "nonce_reused)"), replayed
    # ... and at another node, whose sign-in domain it does not name
    elsewhere = await refused_hello(net.url("b"), lambda raw, ch: hello)
    assert elsewhere.startswith(PROOF_REFUSED + "wrong_domain)"), elsewhere

    def tampered(raw: RawSession, ch: fr.Challenge) -> fr.Hello:
        good = raw.hello(alice, ch)
        sig = bytearray(good.proof_signature)
        sig[5] ^= 0x01
        return replace(good, proof_signature=bytes(sig))

    def someone_elses(raw: RawSession, ch: fr.Challenge) -> fr.Hello:
        # mallory signs alice's message: the signature recovers to mallory, not alice
        good = raw.hello(alice, ch)
        forged = mallory.sign_message(encode_defunct(text=good.proof))
        return replace(good, proof_signature=bytes(forged.signature))

    def not_our_key(raw: RawSession, ch: fr.Challenge) -> fr.Hello:
        good = raw.hello(alice, ch)
        other = new_session_key()
        return replace(
            good, possession_signature=sign_session(other, possession_message(ch.challenge))
        )

    reasons = await asyncio.gather(
        refused_hello(url, tampered),
        refused_hello(url, someone_elses),
        refused_hello(url, not_our_key),
    )
    for reason in reasons:
        assert reason.startswith(PROOF_REFUSED), reasons
    status = (await net.astatus("a"))["sessions"]["service"]
    assert status["sign_in_refused"].get("nonce_reused", 0) >= 1, status


async def test_frames_for_another_visitor_are_refused(net: Network) -> None:
    lab, manifest = net.worlds["lab"], net.hello_manifest
    victim = await visit(net.url("a"), stranger(), lab, "victim", manifest=manifest)
    raw = await RawSession.open(net.url("a"))
    try:
        await raw.sign_in(stranger())
        await raw.send(fr.Join(lab))
        joined = await raw.expect(fr.Joined)
        assert joined.instance_id == victim.instance
        me = raw_visitor_id(raw)
        await victim.wait_for(
            lambda e: isinstance(e, PeerJoined) and e.visitor == me, "PeerJoined of the forger"
        )

        # a chat line in the victim's name, signed by our key
        forged = ChatMessage(joined.instance_id, victim.v.visitor, "I said this", now_ms())
        await raw.send(replace(forged, signature=sign_session(raw.key, forged.signing_bytes())))
        error = await raw.expect(fr.Error)
        assert error.code == "chat_rejected", error
        # a door click in the victim's name
        state = WorldState(parse_manifest(manifest.read_bytes()), lambda op: True)
        op = state.plan_interaction(*DOOR_CLICK, victim.address, state.clock.tick(time.time()))
        assert op is not None
        await raw.send(replace(op, signature=sign_session(raw.key, op.signing_bytes())))
        error = await raw.expect(fr.Error)
        assert error.code == "op_rejected", error

        # our own line after them: the victim sees it, and nothing of the forgeries before it
        ours = ChatMessage(joined.instance_id, me, "marker", now_ms())
        await raw.send(replace(ours, signature=sign_session(raw.key, ours.signing_bytes())))
        await victim.wait_for(lambda e: isinstance(e, Chat) and e.text == "marker", "our line")
        chats = [(e.visitor, e.text) for e in victim.seen if isinstance(e, Chat)]
        assert chats == [(me, "marker")], chats
        doors = [e for e in victim.seen if isinstance(e, StateChanged) and e.object_id == DOOR[0]]
        assert doors == [], doors
    finally:
        await raw.close()
        await victim.close()


async def test_oversized_and_malformed_messages(net: Network) -> None:
    raw = await RawSession.open(net.url("a"))
    try:
        await raw.sign_in(stranger())
        await raw.ws.send_bytes(b"\xc1 not msgpack")  # 0xc1 is never valid msgpack
        error = await raw.expect(fr.Error)
        assert error.code == "frame_invalid", error
        await raw.send(fr.Join(net.worlds["lab"]))  # a bad frame changes nothing
        await raw.expect(fr.Joined)
        await raw.ws.send_bytes(b"\x00" * (wire.MAX_FRAME + 1))
        deadline = time.monotonic() + 10
        while not raw.ws.closed:
            got = await raw.receive(max(0.1, deadline - time.monotonic()))
            if isinstance(got, aiohttp.WSMessage):
                break
            assert time.monotonic() < deadline, "the node kept an oversized message's connection"
        assert raw.ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG, raw.ws.close_code
    finally:
        await raw.close()


async def test_a_flooding_client_is_refused_while_others_still_move(net: Network) -> None:
    lab = net.worlds["lab"]
    watcher = await visit(net.url("a"), stranger(), lab, "flood-watcher")
    visitors = [watcher]
    flooder = await RawSession.open(net.url("a"))
    try:
        mover = await join_instance(net.url("b"), stranger(), lab, "flood-mover", watcher.instance)
        visitors.append(mover)
        await flooder.sign_in(stranger())
        await flooder.send(fr.Join(lab))
        joined = await flooder.expect(fr.Joined)
        assert joined.instance_id == watcher.instance

        errors: collections.Counter[str] = collections.Counter()

        async def read_flooder() -> None:
            while True:
                got = await flooder.receive(30)
                if isinstance(got, aiohttp.WSMessage):
                    errors[f"closed {flooder.ws.close_code}: {got.extra}"] += 1
                    return
                if isinstance(got, fr.Error):
                    errors[got.code] += 1

        reader = asyncio.create_task(read_flooder())
        x, y, z = joined.spawn.position
        for i in range(FLOOD):
            await flooder.send(Transform((x + 0.001 * i, y, z), (0.0, 0.0, 0.0, 1.0), "walk"))
        # meanwhile the mover walks at 10 Hz and the watcher (on another node) sees every step
        mark = watcher.mark()
        sx, sy, sz = mover.v.joined.spawn.position  # type: ignore[union-attr]
        for step in range(1, 11):
            await mover.v.move((sx + 0.1 * step, sy, sz))
            await asyncio.sleep(0.1)
        await watcher.wait_for(
            moved_to(mover, (sx + 1.0, sy, sz)), "the mover's last step", since=mark
        )
        # The flooder is told why (a few throttled Error frames), then closed for refusing to
        # stop; the node never stalled for the others (above).
        async with asyncio.timeout(15):
            await reader
        assert errors["transform_rejected"] >= 1, dict(errors)
        assert [k for k in errors if k.startswith("closed 1008")] == [
            "closed 1008: too many refused frames"
        ], dict(errors)
    finally:
        await flooder.close()
        await close_all(visitors)


# --- 3. a node killed mid-session (last: node c stays dead) ----------------------------------


async def test_a_killed_node_s_visitors_rejoin_elsewhere_and_are_seen_leave_and_return(
    net: Network,
) -> None:
    yard = net.worlds["yard"]
    ka = await visit(net.url("a"), stranger(), yard, "yard-a")
    visitors = [ka]
    try:
        visitors.append(await join_instance(net.url("b"), stranger(), yard, "yard-b", ka.instance))
        kb = visitors[1]
        moved: list[tuple[LocalAccount, Any]] = []
        for i in range(2):
            account, key = stranger(), new_session_key()
            visitors.append(
                await join_instance(
                    net.url("c"), account, yard, f"yard-c{i}", ka.instance, session_key=key
                )
            )
            moved.append((account, key))
        on_c = visitors[2:]
        for watcher in (ka, kb):
            for v in on_c:
                await watcher.wait_for(is_peer(PeerJoined, v.address), f"{v.label} joining")
        marks = {v.label: v.mark() for v in visitors}

        c = net.nodes["c"]
        c.proc.send_signal(signal.SIGKILL)
        c.proc.wait(10)
        killed = time.monotonic()
        for v in on_c:
            await v.wait_for(lambda e: isinstance(e, Closed), "the session to drop", within=10)
        for watcher in (ka, kb):
            for v in on_c:
                await watcher.wait_for(
                    is_peer(PeerLeft, v.address),
                    f"{v.label} leaving",
                    within=30,
                    since=marks[watcher.label],
                )
        left_after = time.monotonic() - killed

        # they come back through the two live nodes, with the same wallets and session keys
        back = await asyncio.gather(
            *(
                visit(net.url(name), account, yard, f"back-{name}", session_key=key)
                for name, (account, key) in zip(("a", "b"), moved, strict=True)
            )
        )
        visitors += back
        for v in back:
            assert v.v.joined is not None and v.v.joined.world_id == yard
            assert v.instance == ka.instance, (v.label, v.instance, ka.instance)
        for watcher in (ka, kb):
            for v in back:
                await watcher.wait_for(
                    is_peer(PeerJoined, v.address),
                    f"{v.label} coming back",
                    within=30,
                    since=marks[watcher.label],
                )
        print(f"node kill: peers saw its visitors leave after {left_after:.1f} s")
    finally:
        await close_all([v for v in visitors if v.v is not None])
