#!/usr/bin/env bash
# Set up what is missing, then run every check CI runs: ruff, mypy (strict on core/),
# import-linter layering contracts, and the whole pytest suite (slow and interop tests included).
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not slow" -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The JS reference harness (Node 22, Helia, ipfs-unixfs-importer, @ipld/car) for interop tests.
scripts/setup-npm.sh
# Debian chromium for the viewer's browser tests (tests/browser).
scripts/setup-chromium.sh

echo "== ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== mypy" >&2
# Check the installed link tree: the fluxnode.* names only exist there, not in the source folders.
tree=$(ls -d build/__editable__.flux_node-*)
MYPYPATH="$tree" .venv/bin/mypy -p fluxnode

echo "== import-linter" >&2
# Run from outside the repo so ./_fluxnode never shadows the installed namespace.
(cd /tmp && "$OLDPWD/.venv/bin/lint-imports" --config "$OLDPWD/pyproject.toml")

echo "== pytest" >&2
set +e
.venv/bin/pytest "$@"
rc=$?
set -e
# pytest exits 5 when nothing was collected: that is a failure for us, not a pass.
exit "$rc"
