"""The smallest glTF 2.0 assets: one triangle, as a binary .glb or a .gltf with its .bin."""

from __future__ import annotations

import json
import struct
from typing import Any

_POSITIONS = struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0)


def _doc(buffer: dict[str, Any]) -> dict[str, Any]:
    return {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "triangle"}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": 3,
                "type": "VEC3",
                "min": [0, 0, 0],
                "max": [1, 1, 0],
            }
        ],
        "bufferViews": [{"buffer": 0, "byteLength": len(_POSITIONS)}],
        "buffers": [buffer],
    }


def triangle_glb() -> bytes:
    text = json.dumps(_doc({"byteLength": len(_POSITIONS)})).encode()
    text += b" " * (-len(text) % 4)  # chunks are 4-byte aligned; JSON pads with spaces
    chunks = struct.pack("<I4s", len(text), b"JSON") + text
    chunks += struct.pack("<I4s", len(_POSITIONS), b"BIN\x00") + _POSITIONS
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def triangle_gltf(bin_name: str) -> tuple[bytes, bytes]:
    """(the .gltf JSON naming `bin_name`, the .bin bytes)."""
    doc = _doc({"byteLength": len(_POSITIONS), "uri": bin_name})
    return json.dumps(doc).encode(), _POSITIONS
