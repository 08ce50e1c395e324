"""The world.json model: frozen dataclasses built by `fluxnode.core.world.check`.

The problem records its errors carry (`ManifestError`, `PackageProblem`) live with those errors
in `fluxnode.core.errors`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from fluxnode.core.world.paths import is_skybox_path

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"

ASSET_PROPERTIES: Final = ("model", "src")  # object properties that name assets


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    FRIENDS = "friends"
    TICKETED = "ticketed"


@dataclass(frozen=True)
class Vec3:
    x: float
    y: float
    z: float


ORIGIN: Final = Vec3(0.0, 0.0, 0.0)
UNIT_SCALE: Final = Vec3(1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Interactions:
    on_click: str | None = None
    on_enter: str | None = None
    on_leave: str | None = None
    on_interact: str | None = None


@dataclass(frozen=True)
class Permissions:
    can_move: bool = False
    can_delete: bool = False
    can_modify: bool = False
    owner: str | None = None


@dataclass(frozen=True)
class WorldObject:
    id: str
    type: str
    position: Vec3 = ORIGIN
    rotation: Vec3 = ORIGIN
    scale: Vec3 = UNIT_SCALE
    properties: dict[str, JsonValue] = field(default_factory=dict)
    interactions: Interactions = Interactions()
    permissions: Permissions = Permissions()


@dataclass(frozen=True)
class WorldSettings:
    max_players: int
    visibility: Visibility
    spawn_point: Vec3 = ORIGIN
    skybox: str | None = None
    lighting: dict[str, JsonValue] | None = None
    physics: dict[str, JsonValue] | None = None


@dataclass(frozen=True)
class AssetRef:
    """One asset reference: where in world.json (`json_path`) and which package file (`path`)."""

    json_path: str
    path: str


@dataclass(frozen=True)
class WorldManifest:
    name: str
    settings: WorldSettings
    description: str = ""
    thumbnail: str | None = None
    tags: tuple[str, ...] = ()
    objects: tuple[WorldObject, ...] = ()
    scripts: tuple[str, ...] = ()

    def asset_references(self) -> list[AssetRef]:
        """Every asset reference in document order (a path may appear more than once)."""
        refs = []
        if self.thumbnail is not None:
            refs.append(AssetRef("thumbnail", self.thumbnail))
        if self.settings.skybox is not None and is_skybox_path(self.settings.skybox):
            refs.append(AssetRef("settings.skybox", self.settings.skybox))
        refs += [AssetRef(f"scripts[{i}]", s) for i, s in enumerate(self.scripts)]
        for i, obj in enumerate(self.objects):
            for key in ASSET_PROPERTIES:
                value = obj.properties.get(key)
                if isinstance(value, str):
                    refs.append(AssetRef(f"objects[{i}].properties.{key}", value))
        return refs

    def asset_paths(self) -> list[str]:
        """The referenced package files: relative POSIX paths, sorted, without duplicates."""
        return sorted({ref.path for ref in self.asset_references()})
