"""Packaging and layering rules that import-linter cannot express."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = [
    "core",
    "node",
    "p2p",
    "storage",
    "chain",
    "contracts",
    "gateway",
    "client",
    "_fluxnode",
]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_exactly_one_module_imports_trio() -> None:
    importers = sorted(
        str(p.relative_to(ROOT))
        for d in PACKAGE_DIRS
        for p in (ROOT / d).rglob("*.py")
        if "trio" in _imports(p)
    )
    assert importers == ["p2p/bridge.py"]


@pytest.mark.slow
def test_wheel_installs_everything_under_the_fluxnode_namespace(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("flux_node-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"fluxnode"}
    for sub in ("core", "node", "p2p", "storage", "chain", "contracts", "gateway", "client"):
        assert f"fluxnode/{sub}/__init__.py" in names
    assert "fluxnode/__main__.py" in names
    assert "fluxnode/p2p/bridge.py" in names
    # package data the node needs at run time without Node.js
    assert "fluxnode/core/world.schema.json" in names
    for contract in ("FluxLand", "FluxItems", "FluxTickets"):
        assert f"fluxnode/contracts/artifacts/{contract}.json" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "flux-node = fluxnode.node.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
    # The wheel imports on its own, from a plain directory install, not via the editable tree.
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import fluxnode.node.cli, fluxnode.p2p.bridge, fluxnode.core.errors; "
            "print(fluxnode.node.cli.__file__); print(fluxnode.p2p.bridge.__file__)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    files = out.stdout.split()
    assert files == [str(target / "fluxnode/node/cli.py"), str(target / "fluxnode/p2p/bridge.py")]
