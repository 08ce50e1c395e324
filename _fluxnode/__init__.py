"""Flux node: a peer-to-peer world hosting node.

The repository's top-level folders (core/, node/, p2p/, storage/, chain/, gateway/,
contracts/) are installed as sub-packages of this one namespace.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("flux-node")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
