"""The data directory: identity key, config template, run lock and `node.json`.

Every write is atomic (`fluxnode.atomicfile`) so a crash never leaves a half-written key or a
`node.json` that parses to garbage. Nothing here writes before the key has been checked.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxnode.atomicfile import atomic_write
from fluxnode.core.errors import IdentityError, NodeAlreadyRunning, NodeNotRunning
from fluxnode.node.config import CONFIG_FILE_NAME, CONFIG_TEMPLATE, Config
from fluxnode.p2p.identity import MAX_KEY_FILE_BYTES, generate_private_key, load_private_key

NODE_JSON = "node.json"
LOCK_FILE = "repo.lock"
ADMIN_SOCKET = "admin.sock"


def read_key(path: Path) -> bytes:
    """Read and check the key file. Refuses a key other users can read (like ssh)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if os.path.lexists(path):
            raise IdentityError(f"key file {path} is a symlink to a missing file") from None
        raise IdentityError(f"key file {path} does not exist (run `flux-node init`)") from None
    except OSError as exc:
        raise IdentityError(f"cannot access key file {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise IdentityError(f"key file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise IdentityError(
            f"key file {path} is readable by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run `chmod 600 {path}`"
        )
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise IdentityError(f"cannot read key file {path}: {exc.strerror}") from exc
    try:
        load_private_key(data)
    except IdentityError as exc:
        raise IdentityError(f"key file {path}: {exc}") from exc
    return data


def check_key_if_present(cfg: Config) -> bytes | None:
    """Validate an existing key before anything is written; a missing explicit key is an error.

    Anything at the path counts as present, a dangling symlink too: `init` would not replace
    it, so it must be refused now rather than after the data dir has been created.
    """
    path = cfg.identity.key_file
    if os.path.lexists(path) or not cfg.key_file_is_default:
        return read_key(path)
    return None


@dataclass(frozen=True)
class InitResult:
    created_dir: bool
    created_key: bool
    created_config: bool


def init_data_dir(cfg: Config) -> InitResult:
    """Create the data dir, key and commented config if missing. Never overwrites a key."""
    check_key_if_present(cfg)
    created_dir = not cfg.data_dir.exists()
    cfg.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    created_key = False
    key_file = cfg.identity.key_file
    if not os.path.lexists(key_file):
        key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Exclusive: two inits racing never overwrite each other's key.
        created_key = atomic_write(key_file, generate_private_key(), 0o600, exclusive=True)
    created_config = atomic_write(
        cfg.data_dir / CONFIG_FILE_NAME, CONFIG_TEMPLATE.encode(), 0o644, exclusive=True
    )
    return InitResult(created_dir, created_key, created_config)


@contextlib.contextmanager
def run_lock(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the data dir for the life of a running node."""
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise NodeAlreadyRunning(
                f"another node (pid {pid or '?'}) is running on {data_dir}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_node_json(data_dir: Path, info: dict[str, Any]) -> None:
    atomic_write(data_dir / NODE_JSON, (json.dumps(info, indent=2) + "\n").encode())


def remove_node_json(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (data_dir / NODE_JSON).unlink()


def read_node_json(data_dir: Path) -> dict[str, Any]:
    """The running node's `node.json`; NodeNotRunning if absent or left by a dead process."""
    path = data_dir / NODE_JSON
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise NodeNotRunning(f"no node is running on {data_dir}") from None
    except (OSError, ValueError) as exc:
        raise NodeNotRunning(f"unreadable {path}: {exc}") from exc
    if not isinstance(info, dict) or not _pid_alive(info.get("pid")):
        raise NodeNotRunning(f"no node is running on {data_dir} (stale {NODE_JSON})")
    return info


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
