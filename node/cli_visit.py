"""`flux-node visit`: a visitor for operators and tests, one JSON event per line.

It signs in to a node (the wallet key comes from `--key-file`, never from argv), joins a world
and reports what it sees: ``joined`` (instance, node, seat, spawn), ``denied`` (reason), then
``peer_joined``, ``peer_left``, ``transform``, ``state``, ``chat``, ``error``, ``reconnected``
and ``closed``, each naming the visitor it is about by its ``visitor`` id and wallet
``address``. `--move` walks a 2 m circle at 10 Hz that starts where the node put us (the
spawn point, from `Joined`), `--say` and `--interact` act once after joining (the manifest
`--interact` plans with comes from the node unless `--manifest` names one); `--for` bounds
the run, otherwise it lasts until Ctrl-C or SIGTERM. Either way it sends `Leave` before
closing, so the others see it go at once.

If the connection drops it reconnects (same session key, so the node keeps the seat for 30 s):
to the same node first, then to each further `--node` given, a few rounds with backoff; a
``reconnected`` event says where. `--no-reconnect` ends the visit at the first drop instead.

Exit: 0 when it joined, whatever happened after (a node that went away mid-visit ends it with
a ``closed`` event naming why, and no traceback); 1 when it was denied (``denied`` names the
reason) or could not reach the node; 2 for usage errors (bad URL or world id, unreadable key
file), which are all found before any connection is made.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
from pathlib import Path
from typing import Any

from fluxnode.core.errors import BadRequest, FluxError, KeyFileError, SessionDenied, SessionLost
from fluxnode.core.session.chat import text_problem

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
#: Only read when --key-file is absent; never a config key, never logged.
VISITOR_KEY_ENV = "FLUX_VISITOR_KEY"
MOVE_HZ = 10.0
MOVE_RADIUS = 2.0  # metres: 1.3 m/s at one turn per 10 s, far below any speed limit
MOVE_PERIOD = 10.0


def register(sub: Any) -> None:
    p = sub.add_parser("visit", help="visit a world as a test visitor; prints JSON events")
    p.add_argument("target", metavar="WORLD_ID|SHARE_LINK", help="land:<id>, <0xaddr>/<slug> "
                   "or a share link http(s)://host/w/<world_id>")  # fmt: skip
    p.add_argument("--node", metavar="URL", action="append",
                   help="the node's gateway URL (default: the link's); repeat it to name "
                        "fallback nodes to reconnect to")  # fmt: skip
    p.add_argument("--key-file", metavar="FILE",
                   help=f"wallet private key file (0600); or set {VISITOR_KEY_ENV}")  # fmt: skip
    p.add_argument("--move", action="store_true", help="walk a small circle at 10 Hz")
    p.add_argument("--say", metavar="TEXT", help="say TEXT in chat once joined")
    p.add_argument("--interact", metavar="OBJECT", help="click OBJECT once joined")
    p.add_argument("--trigger", default="onClick",
                   choices=["onClick", "onEnter", "onLeave", "onInteract"])  # fmt: skip
    p.add_argument("--manifest", metavar="URL|FILE",
                   help="the world's world.json for --interact (default: the node's copy, "
                        "GET /api/worlds/<world id>/manifest)")  # fmt: skip
    p.add_argument("--for", dest="seconds", type=float, metavar="SECONDS",
                   help="leave after SECONDS (default: run until Ctrl-C)")  # fmt: skip
    p.add_argument("--no-reconnect", action="store_true",
                   help="end the visit when the connection drops")  # fmt: skip
    p.add_argument("--json", action="store_true", help="one JSON object per line (the default "
                   "output is the same objects as key=value text)")  # fmt: skip


def _err(message: str) -> None:
    print(f"flux-node: error: {message}", file=sys.stderr)


class _Out:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.printed: set[str] = set()

    def __call__(self, event: str, **fields: Any) -> None:
        self.printed.add(event)
        record = {"event": event, **fields}
        if self.as_json:
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        else:
            line = " ".join([event] + [f"{k}={json.dumps(v, ensure_ascii=False)}"
                                       for k, v in fields.items()])  # fmt: skip
        print(line, flush=True)


def _nodes(args: argparse.Namespace, link_node: str | None) -> list[str]:
    """The home node first, then the fallbacks; the share link's node is one of them."""
    from fluxnode.client import session_url

    nodes = list(args.node or [])
    if link_node is not None and link_node not in nodes:
        nodes.append(link_node)
    if not nodes:
        raise BadRequest("give --node URL (a bare world id names no node)")
    for node in nodes:
        session_url(node)
    return nodes


def cmd_visit(args: argparse.Namespace) -> int:
    from fluxnode.chain.keys import load_wallet_key
    from fluxnode.client import parse_target

    try:
        target = parse_target(args.target)
        nodes = _nodes(args, target.node_url)
        if args.seconds is not None and not 0 < args.seconds <= 7 * 86400:
            raise BadRequest("--for must be a positive number of seconds (at most a week)")
        if args.say is not None and (problem := text_problem(args.say)):
            raise BadRequest(f"--say: {problem}")
        wallet = load_wallet_key(
            Path(args.key_file) if args.key_file else None, env_var=VISITOR_KEY_ENV
        )
    except (BadRequest, KeyFileError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    out = _Out(args.json)
    joined: list[bool] = []
    try:
        asyncio.run(_visit(args, nodes, target.world_id, wallet, out, joined))
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass  # Ctrl-C or SIGTERM: how a run without --for ends (Leave was sent on the way out)
    except SessionDenied as exc:
        if "denied" not in out.printed:  # a refused join was printed already, with more
            out("denied", reason=exc.reason, address=wallet.address)
        return EXIT_FAILURE
    except FluxError as exc:
        _err(str(exc))
    return EXIT_OK if joined else EXIT_FAILURE


async def _visit(
    args: argparse.Namespace, nodes: list[str], world_id: str, wallet: Any, out: _Out,
    joined_flag: list[bool],
) -> None:  # fmt: skip
    from fluxnode.client import Reconnect, Visitor, load_manifest

    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    manifest = await load_manifest(args.manifest) if args.manifest else None
    policy = None if args.no_reconnect else Reconnect(fallbacks=tuple(nodes[1:]))
    v = await Visitor.connect(nodes[0], wallet, reconnect=policy)
    reason = "the visit ended"
    printer: asyncio.Task[None] | None = None
    mover: asyncio.Task[None] | None = None
    try:
        joined = await v.join(world_id, manifest=manifest)
        joined_flag.append(True)
        out("joined", world=joined.world_id, instance=joined.instance_id, node=joined.node,
            seat=joined.seat, spawn=list(joined.spawn.position), node_url=v.node_url,
            address=v.address, visitor=v.visitor)  # fmt: skip
        printer = asyncio.create_task(_print_events(v, out))
        mover = asyncio.create_task(_walk(v)) if args.move else None
        if args.say is not None:
            await _act(out, v.say(args.say))
        if args.interact is not None:
            await _act(out, v.interact(args.interact, args.trigger))
        try:
            await asyncio.wait_for(asyncio.shield(printer), args.seconds)
        except TimeoutError:
            reason = "the visit's time is up"
    except asyncio.CancelledError:
        reason = "interrupted"
        raise
    finally:
        if mover is not None:
            mover.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mover
        await v.close(reason)  # Leave first, when still in the world
        if printer is not None:
            await printer  # prints the closed event, then ends


async def _act(out: _Out, action: Any) -> None:
    """One --say or --interact: a refusal is reported as an event, the visit goes on."""
    try:
        await action
    except FluxError as exc:
        out("error", code=exc.code, message=str(exc))


async def _walk(v: Any) -> None:
    """A circle through where `Joined` put us; after a reconnect, through where the new
    `Joined` put us (a kept seat: where we were; another node: its spawn point)."""
    step = 2 * math.pi / (MOVE_HZ * MOVE_PERIOD)
    loop = asyncio.get_running_loop()
    start = loop.time()
    tick = 0
    seen = None
    cx = cy = cz = 0.0
    while v.closed_reason is None:
        angle = tick * step
        here = v.joined
        if here is not None and here is not seen:
            seen = here
            sx, sy, sz = here.spawn.position
            cx, cy, cz = sx - MOVE_RADIUS * math.cos(angle), sy, sz - MOVE_RADIUS * math.sin(angle)
        if seen is not None:
            yaw = angle + math.pi / 2  # facing along the circle
            with contextlib.suppress(SessionLost):  # reconnecting: the next tick tries again
                await v.move(
                    (cx + MOVE_RADIUS * math.cos(angle), cy, cz + MOVE_RADIUS * math.sin(angle)),
                    (0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2)),
                    "walk",
                )
        tick += 1
        await asyncio.sleep(max(0.0, start + tick / MOVE_HZ - loop.time()))


async def _print_events(v: Any, out: _Out) -> None:
    from fluxnode.client import (
        Chat,
        Closed,
        Error,
        PeerJoined,
        PeerLeft,
        PeerMoved,
        Reconnected,
        StateChanged,
    )

    async for e in v.events():
        if isinstance(e, PeerJoined):
            out("peer_joined", visitor=e.visitor, address=e.address)
        elif isinstance(e, PeerLeft):
            out("peer_left", visitor=e.visitor, address=e.address)
        elif isinstance(e, PeerMoved):
            t = e.transform
            out("transform", visitor=e.visitor, address=e.address,
                position=None if t is None else list(t.position),
                rotation=None if t is None else list(t.rotation),
                anim=None if t is None else t.anim)  # fmt: skip
        elif isinstance(e, StateChanged):
            out("state", object=e.object_id, prop=e.prop, value=e.value, address=e.author)
        elif isinstance(e, Chat):
            out("chat", visitor=e.visitor, address=e.address, text=e.text, sent_ms=e.sent_ms)
        elif isinstance(e, Error):
            out("error", code=e.code, message=e.message)
        elif isinstance(e, Reconnected):
            out("reconnected", node_url=e.node_url, lost=e.lost, tries=e.tries, world=e.world_id,
                instance=e.instance, node=e.node, seat=e.seat)  # fmt: skip
        elif isinstance(e, Closed):
            out("closed", reason=e.reason)
