"""Fixtures shared by the interop tests."""

from __future__ import annotations

import pytest

from tests.interop import jsref


@pytest.fixture
def js_harness() -> None:
    """Fail (not skip) when the JS reference harness is not installed: CI installs it, and an
    interop test that quietly skips proves nothing."""
    if not jsref.available():
        pytest.fail(
            f"JS reference harness missing ({jsref.node_bin()}): run scripts/setup-npm.sh",
            pytrace=False,
        )
