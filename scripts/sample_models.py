"""Write the glTF models of the devnet's sample world (node/sample_worlds/gallery/models/).

Each model is a binary glTF 2.0 (.glb) of a few flat-shaded, coloured primitives (boxes and
pyramids with normals and indices), small enough to read in a hex dump and real enough for any
glTF loader. Run it again only to change a model; the output is deterministic, and
tests/unit/test_devnet_plan.py checks the committed files equal a fresh build.

    .venv/bin/python scripts/sample_models.py [OUT_DIR]
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

Vec = tuple[float, float, float]
Tri = tuple[Vec, Vec, Vec]

OUT = Path(__file__).resolve().parents[1] / "node" / "sample_worlds" / "gallery" / "models"


def _sub(a: Vec, b: Vec) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _normal(t: Tri) -> Vec:
    u, v = _sub(t[1], t[0]), _sub(t[2], t[0])
    n = (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])
    length = sum(c * c for c in n) ** 0.5 or 1.0
    return (n[0] / length, n[1] / length, n[2] / length)


def box(size: Vec, at: Vec = (0, 0, 0)) -> list[Tri]:
    """An axis-aligned box of `size` whose bottom centre is `at` (counter-clockwise faces)."""
    sx, sy, sz = (s / 2 for s in size)
    x0, x1 = at[0] - sx, at[0] + sx
    y0, y1 = at[1], at[1] + 2 * sy
    z0, z1 = at[2] - sz, at[2] + sz
    c = [(x, y, z) for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    tris: list[Tri] = []
    for a, b, d, e in quads:
        tris += [(c[a], c[b], c[d]), (c[a], c[d], c[e])]
    return tris


def pyramid(base: float, height: float, at: Vec = (0, 0, 0)) -> list[Tri]:
    """A square pyramid standing on `at`."""
    h = base / 2
    x, y, z = at
    corners = [(x - h, y, z - h), (x + h, y, z - h), (x + h, y, z + h), (x - h, y, z + h)]
    top = (x, y + height, z)
    tris: list[Tri] = [(corners[i], corners[(i + 1) % 4], top)[::-1] for i in range(4)]
    tris += [(corners[0], corners[1], corners[2]), (corners[0], corners[2], corners[3])]
    return tris


def glb(parts: list[tuple[str, list[Tri], tuple[float, float, float]]]) -> bytes:
    """A .glb with one mesh of one primitive per part (name, triangles, RGB colour)."""
    blob = bytearray()
    views: list[dict[str, object]] = []
    accessors: list[dict[str, object]] = []
    primitives: list[dict[str, object]] = []
    materials: list[dict[str, object]] = []
    for name, tris, rgb in parts:
        positions = [p for t in tris for p in t]
        normals = [n for t in tris for n in (_normal(t),) * 3]
        first = len(accessors)
        for data, kind in ((positions, "POSITION"), (normals, "NORMAL")):
            raw = b"".join(struct.pack("<3f", *v) for v in data)
            views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(raw)})
            blob += raw
            acc: dict[str, object] = {
                "bufferView": len(views) - 1,
                "componentType": 5126,
                "count": len(data),
                "type": "VEC3",
            }
            if kind == "POSITION":
                acc["min"] = [round(min(v[i] for v in data), 6) for i in range(3)]
                acc["max"] = [round(max(v[i] for v in data), 6) for i in range(3)]
            accessors.append(acc)
        indices = struct.pack(f"<{len(positions)}H", *range(len(positions)))
        indices += b"\0" * (-len(indices) % 4)
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(positions) * 2})
        blob += indices
        accessors.append(
            {"bufferView": len(views) - 1, "componentType": 5123, "count": len(positions)}
        )
        accessors[-1]["type"] = "SCALAR"
        materials.append(
            {
                "name": name,
                "pbrMetallicRoughness": {
                    "baseColorFactor": [*rgb, 1.0],
                    "metallicFactor": 0.0,
                    "roughnessFactor": 0.9,
                },
            }
        )
        primitives.append(
            {
                "attributes": {"POSITION": first, "NORMAL": first + 1},
                "indices": first + 2,
                "material": len(materials) - 1,
            }
        )
    doc = {
        "asset": {"version": "2.0", "generator": "flux-node scripts/sample_models.py"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": parts[0][0]}],
        "meshes": [{"primitives": primitives}],
        "materials": materials,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
    }
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    chunks = struct.pack("<I4s", len(text), b"JSON") + text
    chunks += struct.pack("<I4s", len(blob), b"BIN\x00") + bytes(blob)
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


BROWN, GREEN, WOOD, STONE, GOLD = (
    (0.36, 0.22, 0.1),
    (0.16, 0.5, 0.2),
    (0.62, 0.45, 0.25),
    (0.6, 0.6, 0.62),
    (0.9, 0.7, 0.2),
)

MODELS = {
    "tree.glb": [
        ("trunk", box((0.3, 1.0, 0.3)), BROWN),
        ("crown", pyramid(1.4, 1.2, (0, 1.0, 0)) + pyramid(1.0, 1.0, (0, 1.6, 0)), GREEN),
    ],
    "crate.glb": [
        ("crate", box((1.0, 1.0, 1.0)), WOOD),
        ("bands", box((1.04, 0.1, 1.04), (0, 0.2, 0)) + box((1.04, 0.1, 1.04), (0, 0.7, 0)), BROWN),
    ],
    "pedestal.glb": [
        ("pedestal", box((0.8, 0.9, 0.8)), STONE),
        ("trophy", pyramid(0.4, 0.6, (0, 0.9, 0)), GOLD),
    ],
}


def build() -> dict[str, bytes]:
    return {name: glb(parts) for name, parts in MODELS.items()}


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    out.mkdir(parents=True, exist_ok=True)
    for name, data in build().items():
        (out / name).write_bytes(data)
        print(f"{out / name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
