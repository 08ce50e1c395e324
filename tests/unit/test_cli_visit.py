"""`flux-node visit --json` against the test double of a node's session endpoint: the lines it
prints and its exit code (the process is real; the node is tests/unit/client_node_double.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from fluxnode.chain.entry import EntryVerifier
from tests.conftest import FLUX, clean_env
from tests.unit.client_node_double import CHAIN, NodeDouble, running
from tests.unit.test_client_visitor import new_key


async def visit(double: NodeDouble, key: Path, world_id: str) -> tuple[int, list[dict[str, str]]]:
    proc = await asyncio.create_subprocess_exec(
        FLUX, "visit", world_id, "--node", double.url, "--key-file", str(key), "--json",
        "--for", "1", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=clean_env(),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert b"Traceback" not in err, err.decode()
    assert proc.returncode is not None
    return proc.returncode, [json.loads(line) for line in out.decode().splitlines()]


async def test_a_denied_join_prints_one_denied_line_and_exits_1(tmp_path: Path) -> None:
    key = tmp_path / "visitor.key"
    key.write_text(new_key())
    key.chmod(0o600)
    async with running(NodeDouble()) as double:
        domain = f"127.0.0.1:{double.port}"
        # The CLI signs with the real clock, so this double checks proofs against it too.
        double.verifier = EntryVerifier(
            domain=domain, chain_id=CHAIN, uri_prefix=f"http://{domain}/session",
            clock=lambda: datetime.now(UTC),
        )  # fmt: skip
        code, lines = await visit(double, key, "land:2")
    assert code == 1, lines
    assert [(line["event"], line["reason"]) for line in lines] == [
        ("denied", "denied: no valid ticket for this world")
    ]
