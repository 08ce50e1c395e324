"""The committed viewer bundles are exactly what `viewer/build.sh` makes from the pinned npm
packages (`scripts/setup-npm.sh` installs them), so nobody ships hand-edited vendored code."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fluxnode.gateway.viewer_routes import VIEWER_DIR

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "viewer" / "build.sh"
COMMITTED = VIEWER_DIR / "vendor"


def test_committed_bundles_equal_a_fresh_build(tmp_path: Path) -> None:
    if not (
        REPO / "viewer" / "node_modules" / "@esbuild" / "linux-x64" / "bin" / "esbuild"
    ).exists():
        pytest.fail("viewer/node_modules is missing: run scripts/setup-npm.sh")
    out = subprocess.run([str(BUILD), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    built = sorted(p.name for p in tmp_path.glob("*.js"))
    assert built == sorted(p.name for p in COMMITTED.glob("*.js")) == ["three.js", "vendor.js"]
    stale = [n for n in built if (tmp_path / n).read_bytes() != (COMMITTED / n).read_bytes()]
    assert not stale, f"{stale} differ from a fresh build: run viewer/build.sh and commit"
