# The devnet's chain for docker/compose.yaml: anvil from the same npm package, at the same pinned
# version, that scripts/setup-npm.sh installs for the tests (contracts/package-lock.json).
# Build from the repository root:
#   docker build -f docker/anvil.Dockerfile -t flux-anvil .
FROM node:22-slim AS npm
WORKDIR /src/contracts
COPY contracts/package.json contracts/package-lock.json contracts/.npmrc ./
# --ignore-scripts: the anvil package ships its binary in the tarball; nothing may download.
RUN npm ci --no-audit --no-fund --ignore-scripts

FROM debian:bookworm-slim
COPY --from=npm /src/contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil /usr/local/bin/anvil
USER nobody
EXPOSE 8545
# 0.0.0.0 inside the container only: compose publishes the port on the host's 127.0.0.1.
# Automine until the seed service switches it to a block a second (evm_setIntervalMining), as
# `flux-node devnet` does. Chain id 80002 (Amoy) is what the nodes expect by default.
ENTRYPOINT ["anvil", "--host", "0.0.0.0", "--port", "8545", "--chain-id", "80002", "--hardfork", "prague"]
