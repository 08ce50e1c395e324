"""World packages on disk: a folder with `world.json` plus the assets it references.

`open_package` + `WorldPack.pack` check a folder and import it in one pass; `scan_package` runs
the same pass without storing anything (`world validate`). Neither creates, changes or deletes
anything in the folder. Every problem found is collected and raised together as
`WorldPackageInvalid`, each naming the package-relative file (and, for world.json content, the
JSON path).

Rules (documented choices):

- **No symbolic links anywhere inside the package**, whatever they point at. A link whose target
  resolves outside the package is reported as escaping; any other link is still rejected, so the
  importer never has to decide what a link means (IPFS would store it as a UnixFS symlink node,
  which browsers cannot follow). The package folder itself may be reached through a link: the
  caller named it.
- Only regular files and folders: FIFOs, sockets and devices are errors.
- **Hidden entries** (names starting with ``.``) are errors — a stray ``.git`` or ``.env`` must not
  be published by accident — except file names in `allow_hidden` (default: ``.gitkeep``, the
  placeholder that keeps empty asset folders in git), which are shipped like any other file.
  Hidden folders are never allowed and are not descended into. Nothing is skipped silently.
- Every entry's relative path must pass `check_relative_path` (so it can be referenced and is
  portable), its name must be valid UTF-8, and no two paths may differ only in letter case
  (they would collide on macOS and Windows).
- Limits from `WorldLimits`: ``max_files`` counts every file *and folder* visited (world.json
  included; the walk stops there), ``max_file_bytes`` each file, ``max_total_bytes`` all files,
  ``max_manifest_bytes`` world.json (checked from its size before it is read; the read itself is
  bounded too).
- Every asset reference of the manifest (`WorldManifest.asset_references`) must name a regular
  file found by the walk — an exact, case-sensitive match, never a filesystem lookup, so a
  case-insensitive filesystem cannot make a broken reference pass.

One pass, so what is checked is what is shipped: world.json is read once (its bytes are parsed
and those same bytes imported), each folder is listed once, and every file is opened once,
without following links, relative to its folder's descriptor, checked with `fstat` and imported
from that descriptor with the limits enforced while it streams. A file swapped for a link, a
FIFO or a bigger file after the listing is reported, never followed or shipped; the files listed
in `WorldPackage.files` (the `.gitkeep` placeholders included) are exactly the files in the DAG.
Empty folders (none of their entries shipped) are left out of both.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fluxnode.core.errors import WorldManifestInvalid, WorldPackageInvalid
from fluxnode.core.unixfs import Block, Link
from fluxnode.core.world import (
    DEFAULT_LIMITS,
    MANIFEST_NAME,
    PackageProblem,
    WorldLimits,
    WorldManifest,
    check_relative_path,
    format_excess,
    parse_manifest,
)
from fluxnode.storage.importer import (
    EntryChanged,
    ImportResult,
    directory_link,
    import_stream,
    list_folder,
    lstat_entry,
    open_entry,
    read_link,
)

__all__ = [
    "DEFAULT_HIDDEN_ALLOWLIST",
    "PackageFile",
    "PackageProblem",
    "WorldPack",
    "WorldPackage",
    "WorldPackageInvalid",
    "open_package",
    "scan_package",
]

#: Hidden file names shipped rather than rejected (folders are never allowed).
DEFAULT_HIDDEN_ALLOWLIST: frozenset[str] = frozenset({".gitkeep"})

BlockSink = Callable[[list[Block]], None]


@dataclass(frozen=True)
class PackageFile:
    path: str  # relative POSIX path inside the package
    size: int


@dataclass(frozen=True)
class WorldPackage:
    root: Path  # the package folder, resolved
    manifest: WorldManifest
    files: tuple[PackageFile, ...]  # every file, world.json included, sorted by path
    link: Link  # root of the UnixFS DAG holding exactly `files`

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def _shown(name: str) -> str:
    """A file name safe to print (undecodable bytes escaped)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _discard(blocks: list[Block]) -> None:
    return None


class _Bounded:
    """Reads at most `limit` bytes of `raw`: a file growing while it is read stops there."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self.raw = raw
        self.left = limit

    def readinto(self, buf: memoryview) -> int:
        if self.left <= 0:
            return 0
        n = self.raw.readinto(buf[: self.left])  # type: ignore[attr-defined]
        self.left -= n or 0
        return n or 0


class _Pass:
    """One walk of the package: checks every entry and imports the ones that are shipped."""

    def __init__(
        self,
        root: Path,
        limits: WorldLimits,
        allow_hidden: Collection[str],
        manifest_bytes: bytes | None,
        sink: BlockSink,
        cid_version: int,
    ) -> None:
        self.root = root
        self.limits = limits
        self.allow_hidden = allow_hidden
        self.manifest_bytes = manifest_bytes
        self.sink = sink
        self.cid_version = cid_version
        self.problems: list[PackageProblem] = []
        self.files: dict[str, int] = {}
        self.folders: set[str] = set()
        self.rejected: set[str] = set()  # entries already reported (links, hidden, special files)
        self.count = 0
        self.total = 0
        self.blocks = 0
        self.truncated = False

    def problem(self, file: str, message: str) -> None:
        self.problems.append(PackageProblem(file, message))

    def emit(self, blocks: list[Block]) -> None:
        if not self.problems:  # an invalid package is rolled back anyway: stop writing
            self.blocks += len(blocks)
            self.sink(blocks)

    def reject(self, rel: str, message: str) -> None:
        self.rejected.add(rel)
        self.problem(_shown(rel), message)

    def folder(self, fd: int, rel_dir: str) -> Link | None:
        """Check and import the open folder `fd`; None if nothing in it is shipped."""
        try:
            names = list_folder(fd)
        except OSError as exc:
            self.problem(rel_dir or ".", f"cannot list folder: {exc.strerror}")
            return None
        entries: list[tuple[str, Link]] = []
        subfolders: set[str] = set()
        for name in names:
            self.count += 1
            if self.count > self.limits.max_files:
                if not self.truncated:
                    self.problem(".", f"has more than {self.limits.max_files} files and folders")
                self.truncated = True
            if self.truncated:
                return None
            rel = f"{rel_dir}/{name}" if rel_dir else name
            link, is_dir = self.entry(fd, name, rel)
            if link is not None:
                entries.append((name, link))
                if is_dir:
                    subfolders.add(name)
        if not entries:
            return None
        return directory_link(entries, subfolders, self.cid_version, self.emit, rel_dir or ".")

    def entry(self, fd: int, name: str, rel: str) -> tuple[Link | None, bool]:
        """Check one entry and import it if it is shipped: (its link, whether it is a folder)."""
        shown = _shown(rel)
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            self.reject(rel, "file name is not valid UTF-8")
            return None, False
        path_problem = check_relative_path(rel)
        if path_problem is not None:
            self.problem(shown, f"path {path_problem}")
        try:
            st = lstat_entry(fd, name)
        except OSError as exc:
            self.reject(rel, f"cannot read: {exc.strerror}")
            return None, False
        hidden = name.startswith(".")
        if stat.S_ISLNK(st.st_mode):
            self.reject(rel, self.link_problem(fd, name, rel))
            return None, False
        if stat.S_ISDIR(st.st_mode):
            if hidden:
                self.reject(rel, "hidden folders are not allowed (remove it from the package)")
                return None, False
            self.folders.add(rel)
            if path_problem is not None:
                return None, False  # a badly named folder is reported once, not per child
            child = self.open(fd, name, rel, st)
            if child is None:
                return None, False
            try:
                return self.folder(child, rel), True
            finally:
                os.close(child)
        if not stat.S_ISREG(st.st_mode):
            self.reject(rel, "is not a regular file or folder")
            return None, False
        if hidden and name not in self.allow_hidden:
            self.reject(rel, "hidden files are not allowed (remove it from the package)")
            return None, False
        return self.file(fd, name, rel, st), False

    def open(self, fd: int, name: str, rel: str, st: os.stat_result) -> int | None:
        try:
            return open_entry(fd, name, st)
        except EntryChanged as exc:
            self.reject(rel, f"{exc.strerror} (links and special files are not allowed)")
        except OSError as exc:
            self.reject(rel, f"cannot read: {exc.strerror}")
        return None

    def file(self, fd: int, name: str, rel: str, st: os.stat_result) -> Link | None:
        limit = self.limits.max_file_bytes
        manifest: BinaryIO | None = None
        size = st.st_size
        if rel == MANIFEST_NAME:
            # Ship the bytes that were validated; never read world.json a second time.
            if self.manifest_bytes is None:
                self.files[rel] = size
                return None
            manifest = io.BytesIO(self.manifest_bytes)
            size = len(self.manifest_bytes)
        if size > limit:
            self.files[rel] = size
            self.total += size
            self.problem(_shown(rel), f"is {format_excess(size, limit)} per-file limit")
            return None
        if self.total + size > self.limits.max_total_bytes:
            self.files[rel] = size  # over the package limit: reported once, at the end
            self.total += size
            return None
        if manifest is not None:
            result = import_stream(manifest, self.emit, self.cid_version)
        else:
            child = self.open(fd, name, rel, st)
            if child is None:
                return None
            room = min(limit, self.limits.max_total_bytes - self.total)
            try:
                with os.fdopen(child, "rb", buffering=0) as raw:
                    bounded: BinaryIO = _Bounded(raw, room + 1)  # type: ignore[assignment]
                    result = import_stream(bounded, self.emit, self.cid_version)
            except OSError as exc:
                self.reject(rel, f"cannot read: {exc.strerror}")
                return None
            if result.bytes_read > room:
                self.files[rel] = result.bytes_read
                self.total += result.bytes_read
                self.problem(_shown(rel), "grew past its size limit while being read")
                return None
        self.files[rel] = result.bytes_read
        self.total += result.bytes_read
        return result.root

    def link_problem(self, fd: int, name: str, rel: str) -> str:
        try:
            target = os.fsdecode(read_link(fd, name))
            resolved = Path(os.path.realpath(self.root / rel))
        except (OSError, ValueError):
            return "symbolic links are not allowed"
        shown = _shown(target)
        if resolved != self.root and self.root not in resolved.parents:
            return f"symbolic link to {shown} escapes the package (links are not allowed)"
        return f"symbolic links are not allowed (link to {shown})"

    def check_names(self) -> None:
        """Paths differing only in letter case collide on macOS and Windows."""
        seen: dict[str, str] = {}
        for rel in sorted([*self.files, *self.folders]):
            other = seen.setdefault(rel.casefold(), rel)
            if other != rel:
                self.problem(_shown(rel), f"differs from {_shown(other)} only in letter case")

    def check_assets(self, manifest: WorldManifest) -> list[PackageProblem]:
        out = []
        for ref in manifest.asset_references():
            if ref.path in self.files or ref.path in self.rejected:
                continue  # present, or the file itself is already reported
            if ref.path in self.folders:
                message = f"asset {ref.path!r} is a folder, not a file"
            else:
                message = f"asset {ref.path!r} does not exist in the package"
            out.append(PackageProblem(MANIFEST_NAME, message, ref.json_path))
        return out


def _read_manifest(
    root_fd: int, limits: WorldLimits
) -> tuple[bytes | None, WorldManifest | None, list[PackageProblem]]:
    """world.json, read once: (its bytes, the model, problems). A link or a special file is left
    for the walk to report."""
    try:
        st = lstat_entry(root_fd, MANIFEST_NAME)
    except FileNotFoundError:
        return (
            None,
            None,
            [PackageProblem(MANIFEST_NAME, "is missing: a world package needs world.json")],
        )
    except OSError as exc:
        return None, None, [PackageProblem(MANIFEST_NAME, f"cannot read: {exc.strerror}")]
    if stat.S_ISDIR(st.st_mode):
        return None, None, [PackageProblem(MANIFEST_NAME, "must be a file, not a folder")]
    if not stat.S_ISREG(st.st_mode):
        return None, None, []
    limit = limits.max_manifest_bytes
    if st.st_size > limit:
        message = f"is {format_excess(st.st_size, limit)} manifest limit"
        return None, None, [PackageProblem(MANIFEST_NAME, message)]
    try:
        fd = open_entry(root_fd, MANIFEST_NAME, st)
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)  # more than `limit` bytes: parse_manifest says so
    except OSError as exc:
        return None, None, [PackageProblem(MANIFEST_NAME, f"cannot read: {exc.strerror}")]
    try:
        return data, parse_manifest(data, limits), []
    except WorldManifestInvalid as exc:
        problems = [
            PackageProblem(MANIFEST_NAME, err.message, None if err.path == "$" else err.path)
            for err in exc.errors
        ]
        return data, None, problems


class WorldPack:
    """An open world package: world.json read and parsed, the folder held by a descriptor.

    `pack` walks it once, importing into `sink` what it checks; `importer` adapts that to
    `Repo.add`. Use as a context manager (it closes the folder).
    """

    def __init__(self, root: Path, fd: int, limits: WorldLimits, allow_hidden: Collection[str]):
        self.root = root
        self.limits = limits
        self.allow_hidden = allow_hidden
        self._fd = fd
        self._manifest_bytes, manifest, self._manifest_problems = _read_manifest(fd, limits)
        self._manifest = manifest
        self.blocks = 0  # blocks the last `pack` emitted
        self.packed: WorldPackage | None = None  # what the last `pack` returned

    @property
    def manifest(self) -> WorldManifest:
        if self._manifest is None:
            raise RuntimeError("open_package returned a package without a manifest")
        return self._manifest

    def pack(self, sink: BlockSink, cid_version: int = 1) -> WorldPackage:
        """Walk, check and import the package; raise `WorldPackageInvalid` listing every problem
        (blocks already passed to `sink` are then the caller's to roll back)."""
        walk = _Pass(
            self.root, self.limits, self.allow_hidden, self._manifest_bytes, sink, cid_version
        )
        os.lseek(self._fd, 0, os.SEEK_SET)
        link = walk.folder(self._fd, "")
        walk.check_names()
        if walk.total > self.limits.max_total_bytes:
            excess = format_excess(walk.total, self.limits.max_total_bytes)
            walk.problem(".", f"files total {excess} package limit")
        problems = sorted(walk.problems, key=lambda p: p.file)  # folder problems in path order
        problems += self._manifest_problems
        manifest = self._manifest
        if manifest is not None and not walk.truncated:
            problems += walk.check_assets(manifest)
        seen = MANIFEST_NAME in walk.files or MANIFEST_NAME in walk.rejected
        if not walk.truncated and not problems and (manifest is None or not seen):
            problems.append(PackageProblem(MANIFEST_NAME, "changed while being read"))
        if problems or manifest is None or link is None:
            raise WorldPackageInvalid(self.root, problems)
        files = tuple(PackageFile(p, walk.files[p]) for p in sorted(walk.files))
        self.blocks = walk.blocks
        self.packed = WorldPackage(self.root, manifest, files, link)
        return self.packed

    def importer(self, cid_version: int = 1) -> Callable[[BlockSink], ImportResult]:
        """`pack` as a `Repo.add` source."""

        def run(sink: BlockSink) -> ImportResult:
            package = self.pack(sink, cid_version)
            return ImportResult(package.link, package.total_size, self.blocks)

        return run

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> WorldPack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_package(
    root: Path | str,
    limits: WorldLimits = DEFAULT_LIMITS,
    allow_hidden: Collection[str] = DEFAULT_HIDDEN_ALLOWLIST,
) -> WorldPack:
    """Open the package folder `root` and read its world.json. If world.json is unusable, walk
    the folder anyway (storing nothing) and raise `WorldPackageInvalid` with every problem."""
    try:
        resolved = Path(root).resolve(strict=True)
        fd = os.open(resolved, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, RuntimeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        problem = PackageProblem(".", f"cannot open: {reason}")
        raise WorldPackageInvalid(Path(root), [problem]) from None
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise WorldPackageInvalid(resolved, [PackageProblem(".", "is not a folder")])
    pack = WorldPack(resolved, fd, limits, allow_hidden)
    if pack._manifest is None:
        with pack:
            pack.pack(_discard)  # raises: lists the folder's problems with the manifest's
    return pack


def scan_package(
    root: Path | str,
    limits: WorldLimits = DEFAULT_LIMITS,
    allow_hidden: Collection[str] = DEFAULT_HIDDEN_ALLOWLIST,
    cid_version: int = 1,
) -> WorldPackage:
    """Validate the world package folder `root` by packing it without storing anything.

    Returns the parsed manifest, every file (world.json included) as sorted relative POSIX
    paths with sizes, and the root link the pack would have. Raises `WorldPackageInvalid` with
    every problem found (see the module doc).
    """
    with open_package(root, limits, allow_hidden) as pack:
        return pack.pack(_discard, cid_version)
