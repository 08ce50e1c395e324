"""World packages on disk: a folder with `world.json` plus the assets it references.

`scan_package` checks a folder before it is imported (published) and lists what would be shipped.
It only reads: it never creates, changes or deletes anything. Every problem it finds is collected
and raised together as `WorldPackageInvalid`, each naming the package-relative file (and, for
world.json content, the JSON path).

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

Files may change between this scan and an import (the scan is a check of the folder as it is, not
a lock): the importer must enforce the same limits while it streams, open files without following
links, and import exactly `WorldPackage.files` (empty folders are not listed).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from fluxnode.core.errors import RemoteError
from fluxnode.core.world import (
    DEFAULT_LIMITS,
    MANIFEST_NAME,
    WorldLimits,
    WorldManifest,
    WorldManifestInvalid,
    check_relative_path,
    format_excess,
    parse_manifest,
    summarize,
)

__all__ = [
    "DEFAULT_HIDDEN_ALLOWLIST",
    "PackageFile",
    "PackageProblem",
    "WorldPackage",
    "WorldPackageInvalid",
    "scan_package",
]

#: Hidden file names shipped rather than rejected (folders are never allowed).
DEFAULT_HIDDEN_ALLOWLIST: frozenset[str] = frozenset({".gitkeep"})


@dataclass(frozen=True)
class PackageFile:
    path: str  # relative POSIX path inside the package
    size: int


@dataclass(frozen=True)
class PackageProblem:
    """One problem: `file` is package-relative (``.`` is the package folder itself); `json_path`
    is set when the problem is inside world.json's content (``objects[3].scale.x``)."""

    file: str
    message: str
    json_path: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}: {self.json_path}" if self.json_path else self.file
        return f"{where}: {self.message}"


class WorldPackageInvalid(RemoteError):
    """The folder is not a valid world package; `problems` lists everything found."""

    code = "world_package_invalid"

    def __init__(self, root: Path, problems: Sequence[PackageProblem]) -> None:
        self.root = root
        self.problems = list(problems)
        super().__init__(summarize(f"world package {root} is invalid", self.problems))


@dataclass(frozen=True)
class WorldPackage:
    root: Path  # the package folder, resolved
    manifest: WorldManifest
    files: tuple[PackageFile, ...]  # every file, world.json included, sorted by path

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def _shown(name: str) -> str:
    """A file name safe to print (undecodable bytes escaped)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


class _Scan:
    def __init__(self, root: Path, limits: WorldLimits, allow_hidden: Collection[str]) -> None:
        self.root = root
        self.limits = limits
        self.allow_hidden = allow_hidden
        self.problems: list[PackageProblem] = []
        self.files: dict[str, int] = {}
        self.folders: set[str] = set()
        self.rejected: set[str] = set()  # entries already reported (links, hidden, special files)
        self.truncated = False

    def problem(self, file: str, message: str, json_path: str | None = None) -> None:
        self.problems.append(PackageProblem(file, message, json_path))

    def walk(self) -> None:
        """Visit every entry without following links, depth first in name order."""
        count = 0
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            try:
                with os.scandir(self.root / rel_dir) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                self.problem(rel_dir or ".", f"cannot list folder: {exc.strerror}")
                continue
            for entry in entries:
                count += 1
                if count > self.limits.max_files:
                    self.problem(".", f"has more than {self.limits.max_files} files and folders")
                    self.truncated = True
                    return
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                if self.entry(entry, rel):
                    stack.append(rel)

    def entry(self, entry: os.DirEntry[str], rel: str) -> bool:
        """Check one entry; True if it is a folder to descend into."""
        shown = _shown(rel)
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            self.problem(shown, "file name is not valid UTF-8")
            self.rejected.add(rel)
            return False
        problem = check_relative_path(rel)
        if problem is not None:
            self.problem(shown, f"path {problem}")
        try:
            is_link = entry.is_symlink()
            is_dir = entry.is_dir(follow_symlinks=False)
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            self.problem(shown, f"cannot read: {exc.strerror}")
            self.rejected.add(rel)
            return False
        hidden = entry.name.startswith(".")
        if is_link:
            self.rejected.add(rel)
            self.problem(shown, self.link_problem(entry.path))
        elif is_dir:
            if hidden:
                self.rejected.add(rel)
                self.problem(shown, "hidden folders are not allowed (remove it from the package)")
                return False
            self.folders.add(rel)
            return problem is None  # a badly named folder is reported once, not per child
        elif not stat.S_ISREG(st.st_mode):
            self.rejected.add(rel)
            self.problem(shown, "is not a regular file or folder")
        else:
            if hidden and entry.name not in self.allow_hidden:
                self.rejected.add(rel)
                self.problem(shown, "hidden files are not allowed (remove it from the package)")
                return False
            self.files[rel] = st.st_size
            if st.st_size > self.limits.max_file_bytes:
                excess = format_excess(st.st_size, self.limits.max_file_bytes)
                self.problem(shown, f"is {excess} per-file limit")
        return False

    def link_problem(self, path: str) -> str:
        try:
            target = os.readlink(path)
            resolved = Path(os.path.realpath(path))
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

    def read_manifest(self) -> WorldManifest | None:
        if MANIFEST_NAME not in self.files:
            if self.truncated:
                pass  # not reached by the walk; the file-count problem says why
            elif MANIFEST_NAME in self.folders:
                self.problem(MANIFEST_NAME, "must be a file, not a folder")
            elif MANIFEST_NAME not in self.rejected:
                self.problem(MANIFEST_NAME, "is missing: a world package needs world.json")
            return None
        limit = self.limits.max_manifest_bytes
        if self.files[MANIFEST_NAME] > limit:
            excess = format_excess(self.files[MANIFEST_NAME], limit)
            self.problem(MANIFEST_NAME, f"is {excess} manifest limit")
            return None
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.root / MANIFEST_NAME, flags)
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise OSError(0, "not a regular file")
                data = f.read(limit + 1)  # more than `limit` bytes: parse_manifest says so
        except OSError as exc:
            self.problem(MANIFEST_NAME, f"cannot read: {exc.strerror}")
            return None
        try:
            return parse_manifest(data, self.limits)
        except WorldManifestInvalid as exc:
            for err in exc.errors:
                json_path = None if err.path == "$" else err.path
                self.problem(MANIFEST_NAME, err.message, json_path)
            return None

    def check_assets(self, manifest: WorldManifest) -> None:
        for ref in manifest.asset_references():
            if ref.path in self.files or ref.path in self.rejected:
                continue  # present, or the file itself is already reported
            if ref.path in self.folders:
                message = f"asset {ref.path!r} is a folder, not a file"
            else:
                message = f"asset {ref.path!r} does not exist in the package"
            self.problem(MANIFEST_NAME, message, ref.json_path)


def scan_package(
    root: Path | str,
    limits: WorldLimits = DEFAULT_LIMITS,
    allow_hidden: Collection[str] = DEFAULT_HIDDEN_ALLOWLIST,
) -> WorldPackage:
    """Validate the world package folder `root` (read-only) and list its files.

    Returns the parsed manifest and every file, world.json included, as sorted relative POSIX
    paths with sizes. Raises `WorldPackageInvalid` with every problem found (see the module doc).
    """
    try:
        resolved = Path(root).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        problem = PackageProblem(".", f"cannot open: {reason}")
        raise WorldPackageInvalid(Path(root), [problem]) from None
    if not resolved.is_dir():
        raise WorldPackageInvalid(resolved, [PackageProblem(".", "is not a folder")])
    scan = _Scan(resolved, limits, allow_hidden)
    scan.walk()
    scan.check_names()
    total = sum(scan.files.values())
    if total > limits.max_total_bytes:
        excess = format_excess(total, limits.max_total_bytes)
        scan.problem(".", f"files total {excess} package limit")
    scan.problems.sort(
        key=lambda p: p.file
    )  # the folder's problems in path order, then world.json's
    manifest = scan.read_manifest()
    if manifest is not None and not scan.truncated:
        scan.check_assets(manifest)
    if scan.problems or manifest is None:
        raise WorldPackageInvalid(resolved, scan.problems)
    files = tuple(PackageFile(p, scan.files[p]) for p in sorted(scan.files))
    return WorldPackage(resolved, manifest, files)
