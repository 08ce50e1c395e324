"""Loading the operator's denylist files: content (`[content] denylist`, see core/denylist.py)
and wallet addresses (`[session] deny_addresses`)."""

from __future__ import annotations

import re
from pathlib import Path

from fluxnode.atomicfile import UnsafeFile, read_regular_file
from fluxnode.core.denylist import MAX_DENYLIST_BYTES, Denylist
from fluxnode.core.errors import ConfigError
from fluxnode.node.config import Config

#: An address list holds 43 bytes a line: 16 MiB is some 390,000 addresses.
MAX_ADDRESS_DENYLIST_BYTES = 16 << 20
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


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
    text = _read_text(path, "content.denylist", max_bytes)
    return Denylist.parse(text, str(path), max_bytes=max_bytes)


def load_address_denylist(cfg: Config) -> frozenset[str]:
    """Every address of every `session.deny_addresses` file, lower-case.

    Same strictness as `load_denylist`: a file that cannot be read, or a line that is neither
    blank, a `#` comment nor one 0x address (40 hex digits, any case, optionally followed by a
    `#` comment) is a ConfigError naming `file:line`, and the node does not start. A repeated
    address is no error (lists are often concatenated); it counts once.
    """
    out: set[str] = set()
    for path in cfg.session.deny_addresses:
        out |= read_address_denylist_file(path)
    return frozenset(out)


def read_address_denylist_file(
    path: Path, *, max_bytes: int = MAX_ADDRESS_DENYLIST_BYTES
) -> frozenset[str]:
    key = "session.deny_addresses"
    text = _read_text(path, key, max_bytes)
    out: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.partition("#")[0].strip()
        if not entry:
            continue
        if not _ADDRESS.fullmatch(entry):
            # The line itself is not quoted (see load_denylist); its number is enough.
            raise ConfigError(
                key, "not a 0x address (0x + 40 hex digits) or a # comment", f"{path}:{number}"
            )
        out.add(entry.lower())
    return frozenset(out)


def _read_text(path: Path, key: str, max_bytes: int) -> str:
    try:
        data = read_regular_file(path, max_bytes)
    except UnsafeFile as exc:
        raise ConfigError(key, f"denylist {exc}", str(path)) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(key, f"cannot read denylist: {reason}", str(path)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(key, f"not UTF-8 (byte {exc.start}): {exc.reason}", str(path)) from None
