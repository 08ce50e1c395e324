#!/usr/bin/env bash
# Idempotent install of Debian's `chromium` for the browser tests (tests/browser, driven by
# PyPI playwright with executable_path=/usr/bin/chromium; `playwright install` is never run:
# it downloads a browser from outside the package registries). Returns at once when
# /usr/bin/chromium exists. Installing needs root (CI runs as root, with no stdin); anyone
# else gets a note and the browser tests fail with the same instruction.
set -euo pipefail

[ -x /usr/bin/chromium ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-chromium: /usr/bin/chromium missing; install it as root: apt-get install chromium" >&2
  exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
    < /dev/null > "$log" 2>&1
}
echo "setup-chromium: apt-get install chromium" >&2
# A fresh image may have no package lists yet: update once, only if the first try fails.
if ! install; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq < /dev/null >> "$log" 2>&1 || true
  if ! install; then
    cat "$log" >&2
    echo "setup-chromium: apt-get install chromium failed (log above)" >&2
    exit 1
  fi
fi
/usr/bin/chromium --version >&2
