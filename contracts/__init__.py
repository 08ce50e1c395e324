"""Solidity sources and their compiled artifacts, shipped as package data.

`load_artifact(name)` reads `artifacts/<name>.json` (written by `node contracts/build.mjs`, checked
in, re-checked in CI by `build.mjs --check`) through `importlib.resources`, so an installed wheel
needs no Node or solc. Contracts: FluxLand (ERC-721 land → world CID), FluxItems (ERC-1155 items +
ERC-2981 royalties), FluxTickets (ERC-1155 ticket types) and TestWallet1271 (test-only ERC-1271
wallet). See contracts/src/*.sol for their behaviour.

`anvil_binary()` finds the local-chain binary that `scripts/setup-npm.sh` installs from npm
(`@foundry-rs/anvil-linux-amd64`) into `contracts/node_modules/`. It exists only in a source
checkout after that script ran, never in an installed wheel: tests and devnets use it, a
production node never does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fluxnode.core.errors import ArtifactError

__all__ = [
    "CONTRACT_NAMES",
    "Artifact",
    "ArtifactError",
    "anvil_binary",
    "load_artifact",
]

# The contracts a node deploys and reads (TestWallet1271 is loadable too, for tests).
CONTRACT_NAMES: tuple[str, ...] = ("FluxLand", "FluxItems", "FluxTickets")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_HEX = re.compile(r"0x(?:[0-9a-f]{2})*")
_ANVIL = Path("node_modules", "@foundry-rs", "anvil-linux-amd64", "bin", "anvil")


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its ABI (JSON list) and creation bytecode (0x-hex)."""

    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    name: str


def load_artifact(name: str) -> Artifact:
    """The compiled artifact of contract `name` (e.g. "FluxLand"); raises ArtifactError."""
    if not _NAME.fullmatch(name):
        raise ArtifactError(f"not a contract name: {name!r}")
    resource = resources.files(__name__).joinpath("artifacts", f"{name}.json")
    try:
        data = json.loads(resource.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"no artifact for contract {name!r}") from None
    except ValueError as exc:
        raise ArtifactError(f"artifact {name!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("contractName") != name:
        raise ArtifactError(f"artifact {name!r} does not describe contract {name!r}")
    abi, bytecode, deployed = data.get("abi"), data.get("bytecode"), data.get("deployedBytecode")
    if not isinstance(abi, list) or not all(isinstance(e, dict) for e in abi):
        raise ArtifactError(f"artifact {name!r}: abi is not a list of objects")
    for field, value in (("bytecode", bytecode), ("deployedBytecode", deployed)):
        if not isinstance(value, str) or not _HEX.fullmatch(value):
            raise ArtifactError(f"artifact {name!r}: {field} is not 0x-prefixed lowercase hex")
    assert isinstance(bytecode, str) and isinstance(deployed, str)
    return Artifact(abi=abi, bytecode=bytecode, deployed_bytecode=deployed, name=name)


def anvil_binary() -> Path:
    """The anvil binary in `contracts/node_modules` of a source checkout.

    Present only after `scripts/setup-npm.sh`; raises FileNotFoundError (saying so) otherwise,
    and always in an installed wheel, which carries no node_modules.
    """
    # In the strict editable install this file is a symlink into the checkout: resolve it.
    path = Path(__file__).resolve().parent / _ANVIL
    if not path.is_file():
        raise FileNotFoundError(
            f"anvil not found at {path}: it comes from npm (@foundry-rs/anvil-linux-amd64) and "
            "exists only in a source checkout after scripts/setup-npm.sh"
        )
    return path
