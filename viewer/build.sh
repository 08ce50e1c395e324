#!/usr/bin/env bash
# Rebuild the viewer's vendored bundles (gateway/viewer/vendor/*.js) from the npm packages
# pinned in viewer/package-lock.json: `scripts/setup-npm.sh` (npm ci), then this script.
# The bundles are committed, so serving the viewer needs no build step and no npm;
# tests/browser/test_vendor.py checks the committed copies equal a fresh build.
# Usage: viewer/build.sh [OUT_DIR]   (default gateway/viewer/vendor)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../gateway/viewer/vendor}"
esbuild="$here/node_modules/@esbuild/linux-x64/bin/esbuild"
[ -x "$esbuild" ] || { echo "viewer/build.sh: run scripts/setup-npm.sh first ($esbuild missing)" >&2; exit 1; }
mkdir -p "$out"
cd "$here"
# --legal-comments=none keeps the files small; the licences are in viewer/node_modules and
# named in gateway/viewer/vendor/README.md. --charset=utf8 keeps output byte-stable.
for entry in vendor three; do
  "$esbuild" "src/$entry.js" --bundle --format=esm --minify --target=es2022 \
    --legal-comments=none --charset=utf8 --log-level=warning --outfile="$out/$entry.js"
done
