"""Moderation commands: `flux-node reports` (what visitors reported, for the operator),
`flux-node world ban` (a world owner's signed ban list, handed to the running node, which
stores and gossips it) and `flux-node session silence` (the operator silences a visitor's
voice in this node's mesh plans).

Both talk to the running node's admin socket. `world ban` signs with `fluxnode.chain.keys`
(coincurve), like `publish`: eth-account's imports would cost the command about a second.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fluxnode.node.config import Config
from fluxnode.node.config_keys import OWNER_KEY_ENV

EXIT_OK, EXIT_USAGE = 0, 2
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR", help="node data directory")


def register(sub: Any) -> None:
    """The top-level commands of this module (`reports`)."""
    p = sub.add_parser("reports", help="visitors' reports stored by the running node")
    _data_dir_arg(p)
    p.add_argument("--world", metavar="WORLD_ID", help="only the reports about this world")
    p.add_argument(
        "--limit",
        type=int,
        default=100,
        metavar="N",
        help="at most N reports, newest first (default 100)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    session = sub.add_parser("session", help="live sessions on the running node")
    sub_session = session.add_subparsers(dest="session_cmd", required=True)
    p = sub_session.add_parser(
        "silence", help="silence a visitor's voice in this node's mesh plans (this node only)"
    )
    _data_dir_arg(p)
    p.add_argument("visitor", metavar="VISITOR", help="the visitor id (its session key's text)")
    p.add_argument("--off", action="store_true", help="lift the silence")


def register_world_ban(world: Any) -> None:
    """`world ban`, under the `world` command of cli_content."""
    p = world.add_parser(
        "ban",
        help="sign the next ban list of a world you own and publish it via the running node",
    )
    _data_dir_arg(p)
    p.add_argument("world_id", metavar="WORLD_ID", help='e.g. "land:42" or "0xabc.../plaza"')
    p.add_argument("ban", nargs="*", metavar="ADDRESS", help="addresses to ban")
    p.add_argument(
        "--unban",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="address whose ban is lifted (repeat)",
    )
    p.add_argument(
        "--key-file",
        metavar="FILE",
        help=f"the world owner's wallet key (0600 file); or set {OWNER_KEY_ENV}",
    )


def _usage(message: str) -> int:
    print(f"flux-node: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _admin(cfg: Config, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import asyncio

    from fluxnode.node.admin import admin_request

    return asyncio.run(admin_request(cfg.data_dir, method, path, body))


def cmd_reports(args: argparse.Namespace, cfg: Config) -> int:
    from urllib.parse import urlencode

    from fluxnode.node.reports_store import MAX_LIST

    if not 1 <= args.limit <= MAX_LIST:
        return _usage(f"--limit must be in 1..{MAX_LIST}")
    query = {"limit": str(args.limit)}
    if args.world is not None:
        query["world"] = args.world
    reports = _admin(cfg, "GET", f"/v0/reports?{urlencode(query)}")["reports"]
    if args.json:
        print(json.dumps({"reports": reports}, indent=2))
    else:
        print(format_reports(reports), end="")
    return EXIT_OK


def format_reports(reports: list[dict[str, Any]]) -> str:
    """The readable table `flux-node reports` prints: one report a line, newest first."""
    if not reports:
        return "no reports\n"
    header = ("ID", "RECEIVED (UTC)", "WORLD", "REPORTER", "SUBJECT", "INSTANCE", "REASON")
    rows = [header]
    for r in reports:
        when = datetime.fromtimestamp(float(r["received_at"]), UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows.append(
            (
                str(r["id"]),
                when,
                str(r["world_id"]),
                str(r["reporter"]),
                str(r["subject"] or "-"),
                str(r["instance_id"] or "-"),
                str(r["reason"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    out = []
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)]
        out.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(out) + "\n"


def cmd_world_ban(args: argparse.Namespace, cfg: Config) -> int:
    from fluxnode.chain.keys import load_wallet_key
    from fluxnode.core.access import canonical_world_id
    from fluxnode.core.errors import BadRequest
    from fluxnode.core.session.bans import MAX_BANNED, UnsignedBanList

    try:
        world_id = canonical_world_id(args.world_id)
    except BadRequest as exc:
        return _usage(str(exc))
    add, lift = list(args.ban), list(args.unban)
    if not add and not lift:
        return _usage("name at least one ADDRESS to ban or one --unban ADDRESS")
    for address in add + lift:
        if not _ADDRESS.fullmatch(address):
            return _usage(f"{address[:60]!r} is not a 0x address (0x + 40 hex digits)")
    add_set, lift_set = {a.lower() for a in add}, {a.lower() for a in lift}
    if both := sorted(add_set & lift_set):
        return _usage(f"{both[0]} is both banned and unbanned")
    wallet = load_wallet_key(Path(args.key_file) if args.key_file else None, env_var=OWNER_KEY_ENV)

    held = _admin(cfg, "GET", f"/v0/bans?world={_quote(world_id)}")["ban_list"]
    now = int(time.time())
    current = set(held["banned"]) if held else set()
    # Time-based like `publish`, and past what the node holds even if clocks disagree.
    seq = max(now, int(held["seq"]) + 1) if held else now
    banned = sorted((current | add_set) - lift_set)
    if len(banned) > MAX_BANNED:
        return _usage(f"a ban list holds at most {MAX_BANNED} addresses, this one {len(banned)}")
    unsigned = UnsignedBanList(
        world_id=world_id, seq=seq, banned=tuple(banned), owner=wallet.address, issued_at=now
    )
    ban_list = unsigned.signed(wallet.sign_personal(unsigned.signing_text()))
    answer = _admin(cfg, "POST", "/v0/bans", {"ban_list": ban_list.to_wire().decode()})
    print(
        json.dumps(
            {
                **answer,
                "added": sorted(add_set - current),
                "lifted": sorted(lift_set & current),
            }
        )
    )
    return EXIT_OK


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def cmd_session(args: argparse.Namespace, cfg: Config) -> int:
    from fluxnode.core.session.visitors import session_key_of

    if session_key_of(args.visitor) is None:
        return _usage(f"VISITOR {args.visitor[:60]!r} is not a visitor id (a session key's text)")
    body = {"visitor": args.visitor, "on": not args.off}
    print(json.dumps(_admin(cfg, "POST", "/v0/session/silence", body)))
    return EXIT_OK


COMMANDS = {"reports": cmd_reports, "session": cmd_session}
