"""The session cores stay sans-IO: no event loop, sockets, threads or databases."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SESSION = Path(__file__).resolve().parents[2] / "core" / "session"
FORBIDDEN = {"asyncio", "trio", "libp2p", "web3", "aiohttp", "aiortc", "sqlite3", "socket",
             "threading", "cryptography"}  # fmt: skip


@pytest.mark.parametrize("path", sorted(SESSION.glob("*.py")), ids=lambda p: p.name)
def test_session_module_is_pure_and_small(path: Path) -> None:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    assert not names & FORBIDDEN
    assert len(path.read_text().splitlines()) < 400
