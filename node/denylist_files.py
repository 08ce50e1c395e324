"""Loading the operator's denylist files named by `[content] denylist` (see core/denylist.py)."""

from __future__ import annotations

from pathlib import Path

from fluxnode.core.denylist import MAX_DENYLIST_BYTES, Denylist
from fluxnode.core.errors import ConfigError
from fluxnode.node.config import Config


def load_denylist(cfg: Config) -> Denylist:
    """All configured lists merged in order (later files override earlier ones).

    A missing, unreadable, oversized, non-UTF-8 or malformed file is a ConfigError naming the
    file (and the line, for a malformed rule): a node never runs with half of its denylist.
    """
    merged = Denylist()
    for path in cfg.denylist_files:
        merged = merged.merge(read_denylist_file(path))
    return merged


def read_denylist_file(path: Path, *, max_bytes: int = MAX_DENYLIST_BYTES) -> Denylist:
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError("content.denylist", f"cannot read denylist: {reason}", str(path)) from exc
    if len(data) > max_bytes:
        raise ConfigError("content.denylist", f"file larger than {max_bytes} bytes", str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "content.denylist", f"not UTF-8 (byte {exc.start}): {exc.reason}", str(path)
        ) from None
    return Denylist.parse(text, str(path), max_bytes=max_bytes)
