"""Loading the operator's denylist files named by `[content] denylist` (see core/denylist.py)."""

from __future__ import annotations

from pathlib import Path

from fluxnode.atomicfile import UnsafeFile, read_regular_file
from fluxnode.core.denylist import MAX_DENYLIST_BYTES, Denylist
from fluxnode.core.errors import ConfigError
from fluxnode.node.config import Config


def load_denylist(cfg: Config) -> Denylist:
    """All configured lists merged in order (later files override earlier ones).

    A missing, unreadable, non-regular, oversized, non-UTF-8 or malformed file is a ConfigError
    naming the file (and the line, for a malformed rule): a node never runs with half of its
    denylist. Errors never quote the file's content: a wrong path may name a secret file.
    """
    merged = Denylist()
    for path in cfg.content.denylist:
        merged = merged.merge(read_denylist_file(path))
    return merged


def read_denylist_file(path: Path, *, max_bytes: int = MAX_DENYLIST_BYTES) -> Denylist:
    try:
        data = read_regular_file(path, max_bytes)
    except UnsafeFile as exc:
        raise ConfigError("content.denylist", f"denylist {exc}", str(path)) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            "content.denylist", f"cannot read denylist: {reason}", str(path)
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "content.denylist", f"not UTF-8 (byte {exc.start}): {exc.reason}", str(path)
        ) from None
    return Denylist.parse(text, str(path), max_bytes=max_bytes)
