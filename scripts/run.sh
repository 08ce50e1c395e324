#!/usr/bin/env bash
# Set up what is missing, then run a Flux node on embedded defaults until Ctrl-C.
# The demo keeps its state in ./.flux-demo and listens on loopback only; pass flags to override
# (e.g. --listen /ip4/0.0.0.0/tcp/4011 to join other machines). See README "Running a node".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export FLUX_DATA_DIR="${FLUX_DATA_DIR:-$PWD/.flux-demo/node}"
exec .venv/bin/flux-node run --listen /ip4/127.0.0.1/tcp/4011 --gateway 127.0.0.1:8011 "$@"
