"""Positions and the world box shared by state operations and avatar transforms."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

WORLD_HALF_EXTENT: Final = 10_000.0  # metres from the origin on each axis: a city, not a planet


@dataclass(frozen=True)
class WorldBox:
    """The axis-aligned box every position must lie in (inclusive)."""

    low: tuple[float, float, float] = (-WORLD_HALF_EXTENT,) * 3
    high: tuple[float, float, float] = (WORLD_HALF_EXTENT,) * 3

    def problem(self, point: object) -> str | None:
        """Why `point` is not a position inside the box, or None if it is."""
        if not isinstance(point, list | tuple) or len(point) != 3:
            return "position must be 3 numbers"
        for axis, value, low, high in zip("xyz", point, self.low, self.high, strict=True):
            if type(value) not in (int, float):
                return f"position.{axis} must be a number"
            if not math.isfinite(value):
                return f"position.{axis} must be finite"
            if not low <= value <= high:
                return f"position.{axis} = {value:g} is outside the world ({low:g}..{high:g})"
        return None


DEFAULT_BOX: Final = WorldBox()


def distance(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    return math.dist(a, b)
