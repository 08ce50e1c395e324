"""`flux-node add`: its parser and commands, apart from the other content commands so that
`add` (and `add --only-hash` above all) starts without importing them or the config machinery
(see cli.main), which costs more than hashing a few hundred MiB.

The repository is opened directly, so `add` works whether or not a node runs on the data dir.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from fluxnode.node.progress import Progress

if TYPE_CHECKING:
    from fluxnode.node.config import Config


def data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR", help="node data directory")


def register_add(sub: Any) -> None:
    p = sub.add_parser("add", help="import a file or folder (or - for stdin); prints the root CID")
    data_dir_arg(p)
    p.add_argument("path", help="file, folder, or - for standard input")
    p.add_argument(
        "--cid-version",
        type=int,
        choices=[0, 1],
        default=0,
        help="0: Kubo default (dag-pb leaves); 1: raw leaves, base32 CIDv1",
    )
    p.add_argument("--only-hash", action="store_true", help="compute the CID, store nothing")
    p.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pin the result (default: --pin)",
    )
    p.add_argument("--name", help="pin name")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the root CID")


def open_repo(cfg: Config) -> Any:
    from fluxnode.node.denylist_files import load_denylist
    from fluxnode.storage.repo import Repo

    denylist = load_denylist(cfg)
    cfg.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Repo(cfg.data_dir, quota_bytes=cfg.storage.max_bytes, denylist=denylist)


def cmd_add_only_hash(args: argparse.Namespace) -> int:
    """`add --only-hash`: nothing is opened or created, and no config is read (the data dir
    may not even exist)."""
    from fluxnode.storage.importer import import_path, import_stream

    progress = Progress("added")
    source: Path | BinaryIO = sys.stdin.buffer if args.path == "-" else Path(args.path)
    # No sink: only the CIDs are computed, no block is assembled.
    if isinstance(source, Path):
        res = import_path(source, None, args.cid_version, progress)
    else:
        res = import_stream(source, None, args.cid_version, progress)
    progress.close()
    print(res.root.cid)
    return 0


def cmd_add(args: argparse.Namespace, cfg: Config) -> int:
    if args.only_hash:
        return cmd_add_only_hash(args)
    progress = Progress("added")
    source: Path | BinaryIO = sys.stdin.buffer if args.path == "-" else Path(args.path)
    result = open_repo(cfg).add(
        source, cid_version=args.cid_version, pin=args.pin, name=args.name, progress=progress
    )
    progress.close()
    if not args.quiet:
        print(
            f"added {result.cid} ({result.size} bytes, {result.blocks} blocks"
            f"{', pinned' if result.pinned else ''})",
            file=sys.stderr,
        )
    print(result.cid)
    return 0
