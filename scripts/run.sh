#!/usr/bin/env bash
# Set up what is missing, then run a whole Flux network on this machine until Ctrl-C:
# `flux-node devnet` = anvil with the contracts, three nodes on 127.0.0.1 and two sample worlds.
# Needs Python >= 3.11 and npm (for the anvil binary, from npm); no browser, no Docker.
# State lives in ./.flux-demo (override with FLUX_DEVNET_DIR); extra flags go to `flux-node
# devnet` (e.g. --nodes 5, --port 9011). See README "The two commands".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-npm.sh contracts
exec .venv/bin/flux-node devnet --dir "${FLUX_DEVNET_DIR:-$PWD/.flux-demo}" "$@"
