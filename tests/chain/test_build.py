"""The committed contract artifacts are exactly what the pinned compiler makes of the sources."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fluxnode.contracts import CONTRACT_NAMES, load_artifact

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_artifacts_match_sources() -> None:
    node = shutil.which("node")
    assert node, "node not found (system Node 20 builds the contracts)"
    assert (REPO / "contracts" / "node_modules" / "solc").is_dir(), "run scripts/setup-npm.sh"
    result = subprocess.run(
        [node, "contracts/build.mjs", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        "contracts/artifacts differ from contracts/src (run `node contracts/build.mjs` and "
        f"commit the result):\n{result.stderr}"
    )


def test_packaged_artifacts_load() -> None:
    for name in (*CONTRACT_NAMES, "TestWallet1271"):
        artifact = load_artifact(name)
        assert artifact.name == name
        assert artifact.bytecode.startswith("0x60") and len(artifact.bytecode) > 100
        assert any(e.get("type") == "function" for e in artifact.abi)
        on_disk = json.loads((REPO / "contracts" / "artifacts" / f"{name}.json").read_text())
        assert on_disk["abi"] == artifact.abi
        assert on_disk["compiler"]["settings"]["evmVersion"] == "cancun"
