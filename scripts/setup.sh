#!/usr/bin/env bash
# Idempotent set-up shared by scripts/run.sh and scripts/test.sh: a project venv (.venv) with
# flux-node installed in strict editable mode plus dev tools. Quick when nothing changed: it
# re-installs only when pyproject.toml or the set of package files differs from the last run
# (strict editable mode links files one by one, so a new module needs a re-install).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=""
for cand in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
  [ -n "$cand" ] || continue
  if command -v "$cand" >/dev/null 2>&1 &&
     "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    PY="$cand"; break
  fi
done
[ -n "$PY" ] || { echo "setup: need Python >= 3.11 (set PYTHON=...)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PY" >&2
  "$PY" -m venv .venv
fi

stamp_dir=.setup-stamps
mkdir -p "$stamp_dir"
want=$( { cat pyproject.toml;
          find _fluxnode core node p2p storage chain contracts gateway client \
            \( -name node_modules -o -name __pycache__ \) -prune -o -type f -print |
            LC_ALL=C sort; } |
        sha256sum | cut -d' ' -f1 )
have=$(cat "$stamp_dir/python" 2>/dev/null || true)
if [ "$want" != "$have" ] || [ ! -x .venv/bin/flux-node ]; then
  echo "setup: installing flux-node and dev tools into .venv" >&2
  rm -rf build/__editable__*
  if ! .venv/bin/python -m pip install -e '.[dev]' --config-settings editable_mode=strict \
       > "$stamp_dir/pip.log" 2>&1; then
    cat "$stamp_dir/pip.log" >&2
    echo "setup: pip install failed (log above, also in $stamp_dir/pip.log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp_dir/python"
fi
