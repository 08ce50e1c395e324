"""World package folders: assets, paths, links, hidden files and size limits (tmp_path packages)."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from fluxnode.core.errors import RemoteError
from fluxnode.core.world import WorldLimits, format_size, parse_manifest
from fluxnode.storage.worldpkg import (
    PackageFile,
    PackageProblem,
    WorldPackage,
    WorldPackageInvalid,
    scan_package,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "hello-world"

MANIFEST: dict[str, Any] = {
    "name": "Garden",
    "thumbnail": "thumb.png",
    "settings": {"maxPlayers": 10, "visibility": "public", "skybox": "sky/day.jpg"},
    "objects": [
        {"id": "tree", "type": "model", "properties": {"model": "models/tree.glb"}},
        {"id": "bench", "type": "cube"},
    ],
    "scripts": ["scripts/main.js"],
}
ASSETS = {
    "thumb.png": b"\x89PNG....",
    "sky/day.jpg": b"jpeg" * 10,
    "models/tree.glb": b"glTF" * 100,
    "models/textures/bark.png": b"bark",  # unreferenced files are fine (a glTF may use them)
    "scripts/main.js": b"export {};\n",
}


def make_package(
    root: Path, manifest: object = MANIFEST, files: dict[str, bytes] | None = None
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    raw = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    (root / "world.json").write_bytes(raw)
    for rel, data in (ASSETS if files is None else files).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def state(root: Path) -> dict[str, tuple[int, int, int, bytes | str]]:
    """Every entry under `root` (links not followed): mode, size, mtime and content or target."""
    out: dict[str, tuple[int, int, int, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            if path.is_symlink():
                body: bytes | str = os.readlink(path)
            elif path.is_file():
                body = path.read_bytes()
            else:
                body = b""
            out[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, body)
    return out


def scan(root: Path | str, limits: WorldLimits | None = None, **kwargs: Any) -> WorldPackage:
    """scan_package, proving it changed nothing on disk (the package's parent is compared)."""
    top = Path(root).parent
    before = state(top)
    try:
        return scan_package(root, limits or WorldLimits(), **kwargs)
    finally:
        assert state(top) == before, "scan_package modified the disk"


def problems(root: Path, limits: WorldLimits | None = None, **kwargs: Any) -> list[str]:
    with pytest.raises(WorldPackageInvalid) as info:
        scan(root, limits, **kwargs)
    return [str(p) for p in info.value.problems]


@pytest.fixture
def pkg(tmp_path: Path) -> Path:
    """A valid package, with a file beside it (outside the package) for links to point at."""
    (tmp_path / "outside.txt").write_bytes(b"secret")
    return make_package(tmp_path / "garden")


# --- valid packages --------------------------------------------------------------------------


def test_a_valid_package_lists_its_files_sorted(pkg: Path) -> None:
    result = scan(pkg)
    assert isinstance(result, WorldPackage)
    assert result.root == pkg.resolve()
    assert result.manifest == parse_manifest((pkg / "world.json").read_bytes())
    assert result.files == (
        PackageFile("models/textures/bark.png", 4),
        PackageFile("models/tree.glb", 400),
        PackageFile("scripts/main.js", 11),
        PackageFile("sky/day.jpg", 40),
        PackageFile("thumb.png", 8),
        PackageFile("world.json", (pkg / "world.json").stat().st_size),
    )
    assert result.total_size == sum(f.size for f in result.files)
    assert scan(str(pkg)) == result


def test_the_example_package_validates() -> None:
    result = scan(EXAMPLE)
    assert [f.path for f in result.files] == ["scripts/door.js", "thumbnail.png", "world.json"]
    assert result.manifest.name == "Hello World"
    thumbnail = (EXAMPLE / "thumbnail.png").read_bytes()
    assert thumbnail.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(thumbnail) <= 2048


def test_the_package_folder_itself_may_be_reached_through_a_link(pkg: Path) -> None:
    link = pkg.parent / "link-to-garden"
    link.symlink_to(pkg, target_is_directory=True)
    try:
        assert scan(link).root == pkg.resolve()
    finally:
        link.unlink()


def test_empty_folders_are_allowed_and_not_listed(pkg: Path) -> None:
    (pkg / "empty").mkdir()
    try:
        assert "empty" not in [f.path for f in scan(pkg).files]
    finally:
        (pkg / "empty").rmdir()


# --- asset references ------------------------------------------------------------------------


def test_missing_assets_are_named_with_their_json_path(tmp_path: Path) -> None:
    files = dict(ASSETS)
    del files["models/tree.glb"], files["thumb.png"]
    root = make_package(tmp_path / "p", files=files)
    assert problems(root) == [
        "world.json: thumbnail: asset 'thumb.png' does not exist in the package",
        "world.json: objects[0].properties.model: asset 'models/tree.glb' does not exist in "
        "the package",
    ]


def test_an_asset_that_is_a_folder(tmp_path: Path) -> None:
    files = {k: v for k, v in ASSETS.items() if k != "scripts/main.js"}
    files["scripts/main.js/inner.js"] = b""
    root = make_package(tmp_path / "p", files=files)
    assert problems(root) == [
        "world.json: scripts[0]: asset 'scripts/main.js' is a folder, not a file",
    ]


def test_asset_lookup_is_case_sensitive(tmp_path: Path) -> None:
    manifest = copy.deepcopy(MANIFEST)
    manifest["thumbnail"] = "Thumb.png"
    root = make_package(tmp_path / "p", manifest)
    assert problems(root) == [
        "world.json: thumbnail: asset 'Thumb.png' does not exist in the package",
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "../outside.txt",
            "asset path \"../outside.txt\" must not contain '..' (it would leave the package)",
        ),
        (
            "/etc/passwd",
            'asset path "/etc/passwd" must be relative to the package folder, not absolute',
        ),
        (
            "models/../thumb.png",
            "asset path \"models/../thumb.png\" must not contain '..' (it would leave the package)",
        ),
    ],
)
def test_escaping_asset_paths_are_manifest_errors(tmp_path: Path, path: str, message: str) -> None:
    manifest = copy.deepcopy(MANIFEST)
    manifest["scripts"] = [path]
    root = make_package(tmp_path / "p", manifest)
    (tmp_path / "outside.txt").write_bytes(b"secret")
    assert problems(root) == [f"world.json: scripts[0]: {message}"]


# --- links, special files, hidden files, names ------------------------------------------------


def test_a_symlink_escaping_the_package_is_rejected(pkg: Path) -> None:
    (pkg / "leak.txt").symlink_to("../outside.txt")
    try:
        assert problems(pkg) == [
            "leak.txt: symbolic link to ../outside.txt escapes the package (links are not allowed)"
        ]
    finally:
        (pkg / "leak.txt").unlink()


def test_an_absolute_symlink_escaping_through_a_folder_link(pkg: Path) -> None:
    (pkg / "etc").symlink_to("/etc", target_is_directory=True)
    try:
        assert problems(pkg) == [
            "etc: symbolic link to /etc escapes the package (links are not allowed)"
        ]
    finally:
        (pkg / "etc").unlink()


def test_symlinks_inside_the_package_are_rejected_too(pkg: Path) -> None:
    (pkg / "models" / "alias.glb").symlink_to("tree.glb")
    try:
        assert problems(pkg) == [
            "models/alias.glb: symbolic links are not allowed (link to tree.glb)"
        ]
    finally:
        (pkg / "models" / "alias.glb").unlink()


def test_a_referenced_asset_that_is_a_link_is_reported_once(tmp_path: Path) -> None:
    files = {k: v for k, v in ASSETS.items() if k != "thumb.png"}
    root = make_package(tmp_path / "p", files=files)
    (root / "thumb.png").symlink_to("sky/day.jpg")
    assert problems(root) == ["thumb.png: symbolic links are not allowed (link to sky/day.jpg)"]


def test_world_json_as_an_escaping_link(tmp_path: Path) -> None:
    real = make_package(tmp_path / "real")
    root = tmp_path / "p"
    make_package(root)
    (root / "world.json").unlink()
    (root / "world.json").symlink_to(real / "world.json")
    assert problems(root) == [
        f"world.json: symbolic link to {real / 'world.json'} escapes the package "
        "(links are not allowed)"
    ]


def test_dangling_and_looping_links(pkg: Path) -> None:
    (pkg / "nowhere").symlink_to("does-not-exist")
    (pkg / "loop").symlink_to("loop")
    try:
        assert problems(pkg) == [
            "loop: symbolic links are not allowed (link to loop)",
            "nowhere: symbolic links are not allowed (link to does-not-exist)",
        ]
    finally:
        (pkg / "nowhere").unlink()
        (pkg / "loop").unlink()


def test_a_fifo_is_rejected_without_blocking(tmp_path: Path) -> None:
    root = make_package(tmp_path / "p")
    os.mkfifo(root / "pipe")
    assert problems(root) == ["pipe: is not a regular file or folder"]


def test_world_json_as_a_fifo_is_rejected_without_blocking(tmp_path: Path) -> None:
    root = make_package(tmp_path / "p")
    (root / "world.json").unlink()
    os.mkfifo(root / "world.json")
    assert problems(root) == ["world.json: is not a regular file or folder"]


def test_hidden_files_and_folders_are_errors_except_the_allowlist(tmp_path: Path) -> None:
    files = dict(ASSETS)
    files[".DS_Store"] = b"junk"
    files["models/.env"] = b"KEY=1"
    files["models/empty/.gitkeep"] = b""
    for i in range(50):  # never descended into: reported once, not 50 times
        files[f".git/objects/{i}"] = b"x"
    root = make_package(tmp_path / "p", files=files)
    assert problems(root) == [
        ".DS_Store: hidden files are not allowed (remove it from the package)",
        ".git: hidden folders are not allowed (remove it from the package)",
        "models/.env: hidden files are not allowed (remove it from the package)",
    ]
    (root / ".DS_Store").unlink()
    (root / "models" / ".env").unlink()
    shutil.rmtree(root / ".git")
    assert "models/empty/.gitkeep" in [f.path for f in scan(root).files]
    assert problems(root, allow_hidden=()) == [
        "models/empty/.gitkeep: hidden files are not allowed (remove it from the package)",
    ]
    assert scan(root, allow_hidden={".gitkeep", ".nojekyll"})


def test_file_names_must_be_portable_and_utf8(tmp_path: Path) -> None:
    root = make_package(tmp_path / "p")
    (root / "what?.png").write_bytes(b"")
    (root / "back\\slash").write_bytes(b"")
    fd = os.open(os.fsencode(root) + b"/bad-\xff-name", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    (root / "a:b").mkdir()
    for i in range(20):
        (root / "a:b" / f"{i}.png").write_bytes(b"")
    assert problems(root) == [
        "a:b: path must be relative to the package folder, not a drive path",
        "back\\slash: path must use / as the separator, not \\",
        "bad-\\xff-name: file name is not valid UTF-8",
        'what?.png: path must not contain any of : * ? " < > |',
    ]


def test_paths_differing_only_in_case_collide(tmp_path: Path) -> None:
    root = make_package(tmp_path / "p")
    (root / "Thumb.png").write_bytes(b"")
    (root / "SKY").mkdir()
    assert problems(root) == [
        "sky: differs from SKY only in letter case",
        "thumb.png: differs from Thumb.png only in letter case",
    ]


# --- limits ----------------------------------------------------------------------------------


def test_an_oversize_file(pkg: Path) -> None:
    limits = WorldLimits(max_file_bytes=100)
    size = (pkg / "world.json").stat().st_size
    assert problems(pkg, limits) == [
        "models/tree.glb: is 400 bytes, over the 100-byte per-file limit",
        f"world.json: is {size} bytes, over the 100-byte per-file limit",
    ]


def test_a_huge_sparse_file_is_rejected_from_its_size_without_reading_it(pkg: Path) -> None:
    with (pkg / "models" / "huge.glb").open("wb") as f:
        f.truncate(64 << 30)  # 64 GiB, sparse: reading it would take minutes
    with pytest.raises(WorldPackageInvalid) as info:
        scan_package(pkg)  # not `scan`: its before/after check reads every file
    assert [str(p) for p in info.value.problems] == [
        ".: files total 64 GiB, over the 32 MiB package limit",
        "models/huge.glb: is 64 GiB, over the 16 MiB per-file limit",
    ]


def test_total_size(pkg: Path) -> None:
    total = scan(pkg).total_size
    assert scan(pkg, WorldLimits(max_total_bytes=total)).total_size == total
    assert problems(pkg, WorldLimits(max_total_bytes=total - 1)) == [
        f".: files total {total:,} bytes, over the {total - 1:,}-byte package limit"
    ]


def test_too_many_files_stops_the_walk(tmp_path: Path) -> None:
    root = make_package(tmp_path / "p")
    # world.json + 5 assets + 4 folders (models, models/textures, scripts, sky) = 10 entries
    assert len(scan(root, WorldLimits(max_files=10)).files) == 6
    for i in range(100):
        (root / f"extra-{i:03}.bin").write_bytes(b"")
    assert problems(root, WorldLimits(max_files=10)) == [".: has more than 10 files and folders"]


def test_a_manifest_too_large(tmp_path: Path) -> None:
    root = make_package(tmp_path / "p", json.dumps(MANIFEST, indent=40).encode())
    size = (root / "world.json").stat().st_size
    assert problems(root, WorldLimits(max_manifest_bytes=1000)) == [
        f"world.json: is {format_size(size)}, over the 1,000-byte manifest limit"
    ]


def test_manifest_errors_are_listed_with_their_json_paths(tmp_path: Path) -> None:
    manifest = copy.deepcopy(MANIFEST)
    manifest["objects"][1]["scale"] = {"x": 1, "y": 0, "z": 1}
    manifest["settings"]["maxPlayers"] = 1000
    root = make_package(tmp_path / "p", manifest)
    with pytest.raises(WorldPackageInvalid) as info:
        scan(root)
    assert info.value.problems == [
        PackageProblem("world.json", "must be between 1 and 100", "settings.maxPlayers"),
        PackageProblem("world.json", "must be > 0", "objects[1].scale.y"),
    ]


def test_unparsable_manifest(tmp_path: Path) -> None:
    root = make_package(tmp_path / "p", b'{"name": NaN')
    (only,) = problems(root)
    assert only.startswith("world.json: is not valid JSON: ")


# --- the package folder ----------------------------------------------------------------------


def test_missing_world_json(tmp_path: Path) -> None:
    root = make_package(tmp_path / "p")
    (root / "world.json").unlink()
    assert problems(root) == ["world.json: is missing: a world package needs world.json"]


def test_world_json_that_is_a_folder(tmp_path: Path) -> None:
    root = make_package(tmp_path / "p")
    (root / "world.json").unlink()
    (root / "world.json").mkdir()
    assert problems(root) == ["world.json: must be a file, not a folder"]


def test_root_that_does_not_exist_or_is_a_file(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope") == [".: cannot open: No such file or directory"]
    (tmp_path / "file").write_bytes(b"")
    assert problems(tmp_path / "file") == [".: is not a folder"]


def test_all_problems_are_reported_together_and_nothing_changes(tmp_path: Path) -> None:
    manifest = copy.deepcopy(MANIFEST)
    manifest["scripts"] = ["scripts/main.js", "scripts/gone.js"]
    manifest["objects"][0]["position"] = {"x": 0, "y": 0}
    root = make_package(tmp_path / "p", manifest)
    (root / ".hidden").write_bytes(b"")
    (root / "models" / "huge.bin").write_bytes(b"\0" * 2000)
    (root / "out").symlink_to("/")
    before = state(tmp_path)
    with pytest.raises(WorldPackageInvalid) as info:
        scan(root, WorldLimits(max_file_bytes=1000))
    assert state(tmp_path) == before
    exc = info.value
    assert isinstance(exc, RemoteError)
    assert exc.code == "world_package_invalid"
    assert [str(p) for p in exc.problems] == [
        ".hidden: hidden files are not allowed (remove it from the package)",
        "models/huge.bin: is 2 KiB, over the 1,000-byte per-file limit",
        "out: symbolic link to / escapes the package (links are not allowed)",
        "world.json: objects[0].position.z: is required",
    ]
    assert str(exc).startswith(f"world package {root} is invalid (4 errors):\n  .hidden: ")
