"""Flux node: a peer-to-peer world hosting node.

The repository's top-level folders (core/, node/, p2p/, storage/, chain/, gateway/,
contracts/) are installed as sub-packages of this one namespace.
"""

# The one place the version is written: pyproject.toml reads it from here (setuptools `attr:`),
# so every command learns it without importlib.metadata's ~35 ms scan of installed packages.
__version__ = "0.1.0"

__all__ = ["__version__"]
