"""Content commands: cat, get, pin, gc, repo, car, world, publish, worlds (`add` is in
node/cli_add.py, which starts without the config machinery).

They open the data dir's repository directly, so they work whether or not a node is running on
it (block files and SQLite WAL are safe across processes; GC takes an exclusive lock).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fluxnode.core.content import Kind
from fluxnode.core.errors import BadRequest, ConfigError
from fluxnode.core.paths import parse_content_path
from fluxnode.node import cli_add
from fluxnode.node.cli_add import data_dir_arg as _data_dir_arg
from fluxnode.node.cli_add import open_repo as _repo
from fluxnode.node.progress import CountingReader, Progress

if TYPE_CHECKING:
    from fluxnode.node.config import Config


def register(sub: Any) -> None:
    from fluxnode.node import cli_moderation
    from fluxnode.node.config_keys import OWNER_KEY_ENV

    cli_add.register_add(sub)
    p = sub.add_parser("cat", help="write a file's bytes to stdout")
    _data_dir_arg(p)
    p.add_argument("path", metavar="CID[/PATH]")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--length", type=int)

    p = sub.add_parser("get", help="write a file or folder to OUT")
    _data_dir_arg(p)
    p.add_argument("path", metavar="CID[/PATH]")
    p.add_argument("-o", "--output", required=True, metavar="OUT")

    pin = sub.add_parser("pin", help="manage pins").add_subparsers(dest="pin_cmd", required=True)
    p = pin.add_parser("add", help="pin a DAG that is fully in the store")
    _data_dir_arg(p)
    p.add_argument("cid")
    p.add_argument("--name")
    p.add_argument("--direct", action="store_true", help="pin only this block")
    p = pin.add_parser("rm", help="unpin (GC may then remove the blocks)")
    _data_dir_arg(p)
    p.add_argument("cid")
    p = pin.add_parser("ls", help="list pins as JSON lines")
    _data_dir_arg(p)
    p.add_argument("--type", choices=["recursive", "direct"])

    p = sub.add_parser("gc", help="remove every block no pin needs")
    _data_dir_arg(p)

    repo = sub.add_parser("repo", help="repository").add_subparsers(dest="repo_cmd", required=True)
    p = repo.add_parser("stat", help="blocks, bytes, quota")
    _data_dir_arg(p)
    p = repo.add_parser("verify", help="re-hash every block; check pinned DAGs are complete")
    _data_dir_arg(p)

    car = sub.add_parser("car", help="CARv1 import/export").add_subparsers(
        dest="car_cmd", required=True
    )
    p = car.add_parser("export", help="write the DAG under CID as a CARv1")
    _data_dir_arg(p)
    p.add_argument("cid")
    p.add_argument("-o", "--output", required=True, metavar="FILE.car", help="- for stdout")
    p = car.add_parser("import", help="import a CARv1 and pin its roots")
    _data_dir_arg(p)
    p.add_argument("file", metavar="FILE.car", help="- for stdin")
    p.add_argument("--no-pin", action="store_true", help="do not pin the roots")

    world = sub.add_parser("world", help="world packages").add_subparsers(
        dest="world_cmd", required=True
    )
    p = world.add_parser("validate", help="check world.json and the package's files")
    _data_dir_arg(p)
    p.add_argument("dir", metavar="DIR")
    p = world.add_parser("pack", help="validate, add and pin a world package; prints its CID")
    _data_dir_arg(p)
    p.add_argument("dir", metavar="DIR")
    p.add_argument(
        "--cid-version",
        type=int,
        choices=[0, 1],
        default=1,
        help="CID version of the package (default 1: raw leaves, base32)",
    )
    cli_moderation.register_world_ban(world)

    p = sub.add_parser("publish", help="pack a world, sign its record, announce it via the node")
    _data_dir_arg(p)
    p.add_argument("dir", metavar="WORLD_DIR")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--land", type=int, metavar="TOKEN_ID", help="world id land:<TOKEN_ID>")
    where.add_argument("--slug", metavar="NAME", help="personal world <your address>/<NAME>")
    p.add_argument(
        "--key-file",
        metavar="FILE",
        help=f"the owner's wallet key (0600 file); or set {OWNER_KEY_ENV}",
    )
    p.add_argument(
        "--visibility",
        choices=["public", "private", "friends", "ticketed"],
        help="default: settings.visibility from world.json",
    )
    p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="address let into a private/friends world (repeat)",
    )
    p.add_argument("--seq", type=int, help="record sequence number (default: current unix time)")
    p.add_argument("--cid-version", type=int, choices=[0, 1], default=1)

    p = sub.add_parser("worlds", help="the running node's world directory")
    _data_dir_arg(p)


def _counting(importer: Any, progress: Progress) -> Any:
    """`importer` (a `Repo.add` source) with every block it stores counted into `progress`."""

    def run(sink: Any) -> Any:
        def counted(blocks: Any) -> None:
            sink(blocks)
            progress.add(sum(len(b.data) for b in blocks))

        return importer(counted)

    return run


def cmd_cat(args: argparse.Namespace, cfg: Config) -> int:
    if args.offset < 0 or (args.length is not None and args.length < 0):
        raise BadRequest("--offset and --length must be >= 0")
    cid, segments = parse_content_path(args.path)
    out = sys.stdout.buffer
    for chunk in _repo(cfg).cat(cid, segments, args.offset, args.length):
        out.write(chunk)
    out.flush()
    return 0


def cmd_get(args: argparse.Namespace, cfg: Config) -> int:
    cid, segments = parse_content_path(args.path)
    repo = _repo(cfg)
    entry = repo.exporter.resolve(cid, segments)
    out = Path(args.output)
    if out.exists():
        raise BadRequest(f"{out} already exists; refusing to overwrite")
    _write_entry(repo, entry.cid, entry.kind, out)
    print(out)
    return 0


def _write_entry(repo: Any, cid: Any, kind: Kind, out: Path, depth: int = 0) -> None:
    if depth > 64:
        raise BadRequest("directory tree deeper than 64 levels")
    if kind is Kind.FILE:
        with _partial(out) as (fd, tmp):
            with os.fdopen(fd, "wb") as fh:
                for chunk in repo.exporter.read(cid):
                    fh.write(chunk)
            os.replace(tmp, out)
    elif kind is Kind.SYMLINK:
        os.symlink(repo.exporter.read_link(cid), out)
    else:
        out.mkdir()
        for entry in repo.exporter.list_dir(cid):
            name = entry.name
            if not name or "/" in name or name in (".", "..") or "\x00" in name:
                raise BadRequest(f"refusing unsafe name {name!r} inside {cid}")
            child = repo.exporter.stat(entry.cid)
            _write_entry(repo, entry.cid, child.kind, out / name, depth + 1)


def _cid(text: str) -> Any:
    from fluxnode.core.cid import Cid

    return Cid.parse(text.removeprefix("/ipfs/"))


def cmd_pin(args: argparse.Namespace, cfg: Config) -> int:
    repo = _repo(cfg)
    if args.pin_cmd == "add":
        progress = Progress("pinning", unit="blocks verified")
        try:
            pin = repo.pins.add(
                _cid(args.cid), recursive=not args.direct, name=args.name, progress=progress
            )
        finally:
            progress.close()
        print(json.dumps({"cid": pin.cid, "mode": pin.mode, "name": pin.name}))
    elif args.pin_cmd == "rm":
        if repo.pins.remove(_cid(args.cid)) == 0:
            raise BadRequest(f"{args.cid} is not pinned")
        print(json.dumps({"unpinned": args.cid}))
    else:
        for pin in repo.pins.list(args.type):
            print(json.dumps({"cid": pin.cid, "mode": pin.mode, "name": pin.name}))
    return 0


def cmd_gc(args: argparse.Namespace, cfg: Config) -> int:
    result = _repo(cfg).gc()
    print(
        json.dumps(
            {
                "blocks_removed": result.blocks_removed,
                "bytes_freed": result.bytes_freed,
                "blocks_kept": result.blocks_kept,
            }
        )
    )
    return 0


def cmd_repo(args: argparse.Namespace, cfg: Config) -> int:
    repo = _repo(cfg)
    if args.repo_cmd == "stat":
        st = repo.stat()
        print(
            json.dumps(
                {
                    "blocks": st.blocks,
                    "bytes": st.bytes,
                    "max_bytes": st.quota,
                    "pins": len(repo.pins.list()),
                    "path": str(cfg.data_dir),
                }
            )
        )
        return 0
    res = repo.verify()
    print(
        json.dumps(
            {
                "blocks": res.blocks,
                "corrupted": list(res.corrupted),
                "incomplete_pins": list(res.missing_in_pins),
            }
        )
    )
    return 0 if not res.corrupted and not res.missing_in_pins else 1


def _refuse_non_regular(out: Path) -> None:
    """An existing output must be a regular file: replacing a device node, a FIFO, a symlink
    or a folder with our file is never what was meant."""
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(
            "--output", f"{out} exists and is not a regular file; refusing to replace it"
        )


@contextlib.contextmanager
def _partial(out: Path) -> Iterator[tuple[int, Path]]:
    """A fresh temp file next to `out` (an unguessable name, created exclusively, so a planted
    symlink is never followed); removed unless the caller renamed it into place."""
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial")
    tmp = Path(tmp_name)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as a plain open() would create it
        yield fd, tmp
    finally:
        tmp.unlink(missing_ok=True)


def _export_car_file(repo: Any, cid: Any, out: Path) -> None:
    _refuse_non_regular(out)
    with _partial(out) as (fd, tmp):
        with os.fdopen(fd, "wb") as fh:
            repo.export_car(cid, fh)
        _refuse_non_regular(out)  # swapped while we wrote?
        os.replace(tmp, out)


def cmd_car(args: argparse.Namespace, cfg: Config) -> int:
    if args.car_cmd == "export" and args.output != "-":
        _refuse_non_regular(Path(args.output))  # before any work
    repo = _repo(cfg)
    if args.car_cmd == "export":
        cid = _cid(args.cid)
        if args.output == "-":
            repo.export_car(cid, sys.stdout.buffer)
            return 0
        out = Path(args.output)
        _export_car_file(repo, cid, out)
        print(out)
        return 0
    progress = Progress("importing")
    try:
        if args.file == "-":
            reader = CountingReader(sys.stdin.buffer, progress)
            result = repo.import_car(reader, pin_roots=not args.no_pin)
        else:
            with Path(args.file).open("rb") as fh:
                progress.total = os.fstat(fh.fileno()).st_size
                reader = CountingReader(fh, progress)
                result = repo.import_car(reader, pin_roots=not args.no_pin)
    finally:
        progress.close()
    print(
        json.dumps(
            {
                "roots": [str(r) for r in result.roots],
                "blocks": result.blocks,
                "new_blocks": len(result.added),
                "bytes": result.bytes,
                "pinned": not args.no_pin,
            }
        )
    )
    return 0


def cmd_world(args: argparse.Namespace, cfg: Config) -> int:
    from fluxnode.storage.worldpkg import WorldPackage, open_package, scan_package

    if args.world_cmd == "ban":
        from fluxnode.node import cli_moderation

        return cli_moderation.cmd_world_ban(args, cfg)
    limits = cfg.world

    def summary(package: WorldPackage) -> dict[str, Any]:
        return {
            "name": package.manifest.name,
            "files": len(package.files),
            "bytes": package.total_size,
            "objects": len(package.manifest.objects),
        }

    if args.world_cmd == "validate":
        print(json.dumps({"valid": True, **summary(scan_package(Path(args.dir), limits))}))
        return 0
    # One pass: the files checked are the files stored (a file swapped after a separate check
    # would be packed unchecked); an invalid package is rolled back by `add`.
    with open_package(Path(args.dir), limits) as pack:
        name = f"world:{pack.manifest.name}"
        progress = Progress(f"packing {pack.manifest.name}")
        try:
            result = _repo(cfg).add(_counting(pack.importer(args.cid_version), progress), name=name)
        finally:
            progress.close()
        assert pack.packed is not None  # set by the successful pack inside `add`
        package = pack.packed
    print(json.dumps({**summary(package), "cid": str(result.cid)}), file=sys.stderr)
    print(result.cid)
    return 0


def cmd_publish(args: argparse.Namespace, cfg: Config) -> int:
    import time

    # Not chain.deploy's loader: web3 and eth-account would cost this command about a second.
    from fluxnode.chain.keys import load_wallet_key
    from fluxnode.chain.records import sign_record
    from fluxnode.node.admin import admin_request
    from fluxnode.node.config_keys import OWNER_KEY_ENV
    from fluxnode.storage.worldpkg import open_package

    account = load_wallet_key(Path(args.key_file) if args.key_file else None, env_var=OWNER_KEY_ENV)
    pack = open_package(Path(args.dir), cfg.world)
    with pack:
        world_id = (
            f"land:{args.land}"
            if args.land is not None
            else f"{account.address.lower()}/{args.slug}"
        )
        visibility = args.visibility or pack.manifest.settings.visibility.value
        now = int(time.time())
        seq = args.seq or now

        def sign(cid: Any) -> Any:
            return sign_record(
                world_id=world_id,
                cid=cid,
                seq=seq,
                visibility=visibility,
                issued_at=now,
                account=account,
                access=args.allow,
            )

        # Sign a probe before storing anything: a bad id, slug or access list changes nothing.
        sign("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn")
        # Checked while it is stored (one pass, like `world pack`); an invalid one is rolled back.
        progress = Progress(f"packing {world_id}")
        try:
            result = _repo(cfg).add(
                _counting(pack.importer(args.cid_version), progress), name=f"world:{world_id}"
            )
        finally:
            progress.close()
    record = sign(result.cid)
    import asyncio  # only for the commands that need a loop

    answer = asyncio.run(
        admin_request(cfg.data_dir, "POST", "/v0/publish", {"record": record.to_wire().decode()})
    )
    print(json.dumps({"world_id": answer["world_id"], "cid": answer["cid"], "seq": answer["seq"]}))
    return 0


def cmd_worlds(args: argparse.Namespace, cfg: Config) -> int:
    import asyncio  # only for the commands that need a loop

    from fluxnode.node.admin import admin_request

    print(json.dumps(asyncio.run(admin_request(cfg.data_dir, "GET", "/v0/worlds")), indent=2))
    return 0


COMMANDS = {
    "add": cli_add.cmd_add,
    "cat": cmd_cat,
    "get": cmd_get,
    "pin": cmd_pin,
    "gc": cmd_gc,
    "repo": cmd_repo,
    "car": cmd_car,
    "world": cmd_world,
    "publish": cmd_publish,
    "worlds": cmd_worlds,
}
