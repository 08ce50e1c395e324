"""`flux-node` command line. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.

Heavy imports (libp2p, aiohttp) happen inside the commands that need them, so `version` and
`--help` stay instant. The config machinery and every other command's modules cost ~0.25 s to
import (measured on 2 cores), longer than hashing 256 MiB: `add` names its own parser and only
`add --only-hash` (which reads no config) skips them altogether.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fluxnode import __version__
from fluxnode.core.errors import ConfigError, FluxError, IdentityError, NodeNotRunning
from fluxnode.node import cli_add
from fluxnode.node.logs import redact

if TYPE_CHECKING:
    from fluxnode.node.config import Config

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
#: The config keys `run` takes as flags (the flag names come from the key table).
RUN_FLAGS = (
    "network.listen",
    "network.bootstrap",
    "gateway.listen",
    "gateway.enabled",
    "identity.key_file",
    "log.level",
    "log.format",
)


def _root_parser() -> tuple[argparse.ArgumentParser, Any]:
    parser = argparse.ArgumentParser(
        prog="flux-node",
        description="Flux node: host 3D worlds peer-to-peer "
        "(IPFS content, libp2p gossip, Polygon ownership).",
    )
    return parser, parser.add_subparsers(dest="command", required=True, metavar="COMMAND")


def _parser_for(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser for `argv`: `add` or `version` alone when it is the command (its options
    are its own, so it parses exactly as in the full parser), else every command's."""
    if argv and argv[0] in ("add", "version"):
        parser, sub = _root_parser()
        if argv[0] == "add":
            cli_add.register_add(sub)
        else:
            _register_version(sub)
        return parser
    return build_parser()


def _register_version(sub: Any) -> None:
    sub.add_parser("version", help="print the version")


def build_parser() -> argparse.ArgumentParser:
    from fluxnode.node import cli_chain, cli_content, cli_moderation, cli_visit, devnet
    from fluxnode.node.config import add_config_flags

    parser, sub = _root_parser()

    p = sub.add_parser("init", help="create the data dir, identity key and config.toml")
    cli_add.data_dir_arg(p)
    add_config_flags(p, ["identity.key_file"])

    p = sub.add_parser("run", help="run the node until SIGINT/SIGTERM")
    cli_add.data_dir_arg(p)
    add_config_flags(p, RUN_FLAGS)

    p = sub.add_parser("id", help="print this node's peer ID and addresses as JSON")
    cli_add.data_dir_arg(p)
    add_config_flags(p, ["identity.key_file"])

    p = sub.add_parser("status", help="the running node's peers, worlds, instances, chain and disk")
    cli_add.data_dir_arg(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="print JSON (the default when stdout is not a terminal)",
    )

    p = sub.add_parser("ping", help="ping a connected (or dialable) peer through the running node")
    cli_add.data_dir_arg(p)
    p.add_argument("peer", help="peer ID")
    p.add_argument("-n", "--count", type=int, default=3, help="number of pings (1..100)")

    _register_version(sub)
    cli_content.register(sub)
    cli_chain.register(sub)
    cli_moderation.register(sub)
    cli_visit.register(sub)
    devnet.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser_for(argv).parse_args(argv)
    try:
        if args.command == "add" and args.only_hash:
            return cli_add.cmd_add_only_hash(args)
        if args.command == "version":
            return cmd_version(args)
        from fluxnode.node import cli_content

        if args.command in cli_content.COMMANDS:
            return int(cli_content.COMMANDS[args.command](args, _config(args)))
        from fluxnode.node import cli_chain, cli_moderation, cli_visit, devnet

        if args.command in cli_moderation.COMMANDS:
            return int(cli_moderation.COMMANDS[args.command](args, _config(args)))
        if args.command == "chain":
            return int(cli_chain.cmd_chain(args, _config(args)))
        if args.command == "visit":
            return cli_visit.cmd_visit(args)
        if args.command == "devnet":
            return devnet.cmd_devnet(args)
        return int(COMMANDS[args.command](args))
    except (ConfigError, IdentityError) as exc:  # the operator must fix config or key
        _err(str(exc))
        return EXIT_USAGE
    except FluxError as exc:
        _err(str(exc))
        return EXIT_FAILURE
    except BrokenPipeError:  # e.g. `flux-node cat CID | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return EXIT_FAILURE
    except OSError as exc:
        _err(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


def _err(message: str) -> None:
    # Error messages can quote what the user passed (a key file's content, a request body).
    print(f"flux-node: error: {redact(message)}", file=sys.stderr)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _config(args: argparse.Namespace) -> Config:
    from fluxnode.node.config import load_config, overrides_from_args

    return load_config(overrides_from_args(args))


def cmd_init(args: argparse.Namespace) -> int:
    from fluxnode.node.datadir import init_data_dir, read_key
    from fluxnode.p2p import peer_id_from_private_key

    cfg = _config(args)
    result = init_data_dir(cfg)
    peer_id = peer_id_from_private_key(read_key(cfg.identity.key_file))
    what = "initialised" if result.created_key else "already initialised"
    print(f"{what} {cfg.data_dir} (peer ID {peer_id})", file=sys.stderr)
    _print_json(
        {
            "data_dir": str(cfg.data_dir),
            "peer_id": peer_id,
            "key_file": str(cfg.identity.key_file),
            "created_key": result.created_key,
        }
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from fluxnode.node.admin import socket_path
    from fluxnode.node.chain_setup import load_deployment
    from fluxnode.node.config_sections import LogLevel
    from fluxnode.node.daemon import run_node
    from fluxnode.node.datadir import check_key_if_present, init_data_dir, run_lock
    from fluxnode.node.denylist_files import load_address_denylist, load_denylist
    from fluxnode.node.logs import configure_logging

    # Everything that can be wrong with the configuration is checked before the first write
    # (data dir, key, lock): a start that exits 2 leaves the data dir as it was.
    cfg = _config(args)
    check_key_if_present(cfg)
    socket_path(cfg.data_dir)  # an over-long socket path
    denylist = load_denylist(cfg)
    load_address_denylist(cfg)  # read again at start; a bad file must exit 2 before any write
    load_deployment(cfg, required=False)
    configure_logging(cfg.log.level, cfg.log.format)
    if cfg.log.level is not LogLevel.DEBUG:
        # py-libp2p logs every refused handshake at WARNING; that is routine for us.
        logging.getLogger("libp2p").setLevel(logging.ERROR)
    init_data_dir(cfg)
    with run_lock(cfg.data_dir):
        try:
            import asyncio

            return asyncio.run(run_node(cfg, denylist))
        except BaseExceptionGroup as group:
            # A crash inside the TaskGroup (e.g. the p2p side failing) arrives grouped.
            flux, rest = group.split(FluxError)
            if rest is not None:
                raise
            assert flux is not None
            for exc in flux.exceptions:
                logging.getLogger("fluxnode.node").error("node failed: %s", exc)
            return EXIT_FAILURE


def cmd_id(args: argparse.Namespace) -> int:
    from fluxnode.node.datadir import read_key, read_node_json
    from fluxnode.p2p import peer_id_from_private_key

    cfg = _config(args)
    peer_id = peer_id_from_private_key(read_key(cfg.identity.key_file))
    try:
        addrs = read_node_json(cfg.data_dir).get("addrs", [])
    except NodeNotRunning:
        addrs = []  # not running: no live addresses to report
    _print_json({"peer_id": peer_id, "addrs": addrs})
    return EXIT_OK


def _admin(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    from fluxnode.node.admin import admin_request

    cfg = _config(args)
    import asyncio

    return asyncio.run(admin_request(cfg.data_dir, method, path, body))


def cmd_status(args: argparse.Namespace) -> int:
    data = _admin(args, "GET", "/v0/status")
    # A table for a person, JSON for a program: piped or redirected output stays the JSON it
    # always was, so scripts need no flag.
    if args.json or not sys.stdout.isatty():
        _print_json(data)
    else:
        from fluxnode.node.status_table import format_status

        print(format_status(data), end="")
    return EXIT_OK


def cmd_ping(args: argparse.Namespace) -> int:
    _print_json(_admin(args, "POST", "/v0/ping", {"peer": args.peer, "count": args.count}))
    return EXIT_OK


def cmd_version(args: argparse.Namespace) -> int:
    print(f"flux-node {__version__}")
    return EXIT_OK


COMMANDS = {
    "init": cmd_init,
    "run": cmd_run,
    "id": cmd_id,
    "status": cmd_status,
    "ping": cmd_ping,
    "version": cmd_version,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
