"""`flux-node visit`: a visitor for operators and tests, one JSON event per line.

It signs in to a node (the wallet key comes from `--key-file`, never from argv), joins a world
and reports what it sees: ``joined`` (instance, node, seat), ``denied`` (reason), then
``peer_joined``, ``peer_left``, ``transform``, ``state``, ``chat``, ``error`` and ``closed``,
each naming the visitor it is about by its ``visitor`` id and wallet ``address``. `--move`
walks a 2 m circle at 10 Hz (around the spawn point when the manifest is known), `--say` and
`--interact` act once after joining; `--for` bounds the run, otherwise it lasts until Ctrl-C.

Exit: 0 when it joined (whatever happened after), 1 when it was denied or could not reach the
node, 2 for usage errors (bad URL or world id, unreadable key file, --interact without
--manifest), which are all found before any connection is made.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
from pathlib import Path
from typing import Any

from fluxnode.core.errors import BadRequest, FluxError, KeyFileError, SessionDenied
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
    p.add_argument("--node", metavar="URL", help="the node's gateway URL (default: the link's)")
    p.add_argument("--key-file", metavar="FILE",
                   help=f"wallet private key file (0600); or set {VISITOR_KEY_ENV}")  # fmt: skip
    p.add_argument("--move", action="store_true", help="walk a small circle at 10 Hz")
    p.add_argument("--say", metavar="TEXT", help="say TEXT in chat once joined")
    p.add_argument("--interact", metavar="OBJECT", help="click OBJECT once joined")
    p.add_argument("--trigger", default="onClick",
                   choices=["onClick", "onEnter", "onLeave", "onInteract"])  # fmt: skip
    p.add_argument("--manifest", metavar="URL|FILE",
                   help="the world's world.json (needed by --interact), e.g. "
                        "http://node/ipfs/<root cid>/world.json")  # fmt: skip
    p.add_argument("--for", dest="seconds", type=float, metavar="SECONDS",
                   help="leave after SECONDS (default: run until Ctrl-C)")  # fmt: skip
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


def cmd_visit(args: argparse.Namespace) -> int:
    from fluxnode.chain.keys import load_wallet_key
    from fluxnode.client import parse_target, session_url

    try:
        target = parse_target(args.target)
        node = args.node or target.node_url
        if node is None:
            raise BadRequest("give --node URL (a bare world id names no node)")
        session_url(node)
        if args.seconds is not None and not 0 < args.seconds <= 7 * 86400:
            raise BadRequest("--for must be a positive number of seconds (at most a week)")
        if args.say is not None and (problem := text_problem(args.say)):
            raise BadRequest(f"--say: {problem}")
        if args.interact is not None and args.manifest is None:
            raise BadRequest("--interact needs --manifest URL|FILE (the world's world.json)")
        wallet = load_wallet_key(
            Path(args.key_file) if args.key_file else None, env_var=VISITOR_KEY_ENV
        )
    except (BadRequest, KeyFileError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    out = _Out(args.json)
    joined = False

    def on_joined() -> None:
        nonlocal joined
        joined = True

    try:
        asyncio.run(_visit(args, node, target.world_id, wallet, out, on_joined))
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a run without --for ends
    except SessionDenied as exc:
        if "denied" not in out.printed:  # a refused join was printed already, with more
            out("denied", reason=exc.reason, address=wallet.address)
        return EXIT_FAILURE
    except FluxError as exc:
        _err(str(exc))
        return EXIT_OK if joined else EXIT_FAILURE
    return EXIT_OK if joined else EXIT_FAILURE


async def _visit(
    args: argparse.Namespace, node: str, world_id: str, wallet: Any, out: _Out, on_joined: Any
) -> None:
    from fluxnode.client import Visitor, load_manifest

    manifest = await load_manifest(args.manifest) if args.manifest else None
    async with await Visitor.connect(node, wallet) as v:
        try:
            joined = await v.join(world_id, manifest=manifest)
        except SessionDenied as exc:
            out("denied", reason=exc.reason, address=v.address, visitor=v.visitor)
            raise
        on_joined()
        out("joined", world=joined.world_id, instance=joined.instance_id, node=joined.node,
            seat=joined.seat, node_url=v.node_url, address=v.address,
            visitor=v.visitor)  # fmt: skip
        async with asyncio.TaskGroup() as tasks:
            printer = tasks.create_task(_print_events(v, out))
            center = manifest.settings.spawn_point if manifest is not None else None
            mover = tasks.create_task(_walk(v, center)) if args.move else None
            if args.say is not None:
                await _act(out, v.say(args.say))
            if args.interact is not None:
                await _act(out, v.interact(args.interact, args.trigger))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(printer), args.seconds)
            if mover is not None:
                mover.cancel()
            await v.close("the visit's time is up")
            await printer  # prints the closed event, then ends


async def _act(out: _Out, action: Any) -> None:
    """One --say or --interact: a refusal is reported as an event, the visit goes on."""
    try:
        await action
    except FluxError as exc:
        out("error", code=exc.code, message=str(exc))


async def _walk(v: Any, center: Any) -> None:
    from fluxnode.core.errors import SessionLost

    cx, cy, cz = (center.x, center.y, center.z) if center is not None else (0.0, 0.0, 0.0)
    step = 2 * math.pi / (MOVE_HZ * MOVE_PERIOD)
    loop = asyncio.get_running_loop()
    start = loop.time()
    tick = 0
    with contextlib.suppress(SessionLost):
        while True:
            angle = tick * step
            yaw = angle + math.pi / 2  # facing along the circle
            await v.move(
                (cx + MOVE_RADIUS * math.cos(angle), cy, cz + MOVE_RADIUS * math.sin(angle)),
                (0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2)),
                "walk",
            )
            tick += 1
            await asyncio.sleep(max(0.0, start + tick / MOVE_HZ - loop.time()))


async def _print_events(v: Any, out: _Out) -> None:
    from fluxnode.client import Chat, Closed, Error, PeerJoined, PeerLeft, PeerMoved, StateChanged

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
        elif isinstance(e, Closed):
            out("closed", reason=e.reason)
