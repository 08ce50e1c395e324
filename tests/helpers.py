"""Helpers for tests that drive real node processes through the `flux-node` CLI: read a node's
status and world directory, wait for a condition to become true, publish a world."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import run_cli

EXAMPLE_WORLD = Path(__file__).resolve().parents[1] / "docs" / "examples" / "hello-world"


def status(data_dir: Path) -> dict[str, Any]:
    """The running node's `flux-node status` as JSON (fails the test if the command fails)."""
    out = run_cli("status", "--json", "--data-dir", str(data_dir))
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def worlds(data_dir: Path) -> list[dict[str, Any]]:
    """The running node's world directory (`flux-node worlds`)."""
    out = run_cli("worlds", "--data-dir", str(data_dir))
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout)["worlds"])


def wait_for(
    predicate: Callable[[], object],
    what: str,
    *,
    timeout: float = 60.0,
    interval: float = 0.2,
    detail: Callable[[], object] | None = None,
) -> float:
    """Poll `predicate` until it is true; returns the seconds that took. Fails the test after
    `timeout` seconds, naming `what` and, if given, the state `detail()` shows then."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            shown = f": {detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{shown}")
        time.sleep(interval)


def wait_for_world(data_dir: Path, cid: str, timeout: float = 20.0) -> float:
    """Wait until the node at `data_dir` lists a world at `cid`."""
    return wait_for(
        lambda: any(w["cid"] == cid for w in worlds(data_dir)),
        f"{cid} to reach {data_dir}",
        timeout=timeout,
        interval=0.1,
        detail=lambda: worlds(data_dir),
    )


def write_owner_key(path: Path) -> Any:
    """A fresh wallet whose private key is at `path` (mode 0600); returns the eth-account
    `LocalAccount`."""
    from eth_account import Account

    owner = Account.create()
    path.write_text(owner.key.hex())
    path.chmod(0o600)
    return owner


def publish(
    data_dir: Path, folder: Path, key_file: Path, *, slug: str = "hello", seq: int | None = None
) -> dict[str, Any]:
    """`flux-node publish` a world folder through the running node; returns its JSON answer."""
    args = ["publish", "--data-dir", str(data_dir), str(folder), "--slug", slug]
    args += ["--key-file", str(key_file)]
    if seq is not None:
        args += ["--seq", str(seq)]
    out = run_cli(*args)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))
