"""Result parts: the typed, pickle-free hand-over format between the pipeline, the backend and the add-on.

A finished reconstruction writes ``<out>/result/manifest.json`` plus one ``.npy`` file per array
(``np.save`` / ``np.load(allow_pickle=False)``). The backend streams each part as a JSON header + raw
array frames; the Blender add-on rebuilds the same arrays. Part kinds and their arrays:

- ``mesh``:    vertices f32[N,3], faces i32[M,3], colors u8[N,3], class_id i32[N] (optional)
- ``points``:  positions f32[N,3], colors u8[N,3], class_id i32[N] (optional), confidence f32[N] (optional)
- ``cameras``: c2w f32[V,4,4] (OpenCV axes), K f32[V,3,3], size i32[V,2] (width, height); meta: names
- ``class``:   one per present class; meta: class_id, name, color [r,g,b] 0..255, instances;
               arrays as ``mesh`` and/or ``points`` prefixed ``mesh_`` / ``points_``, plus
               ``mesh_instance`` i32[N] / ``points_instance`` i32[N] (instance id per element, -1 = none)

The manifest's top level also carries ``scene`` (name), ``up`` (the world up vector, 3 floats) and ``version``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RESULTS_VERSION = 1
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")

ALLOWED_DTYPES = frozenset({"uint8", "int8", "uint16", "int16", "int32", "uint32", "int64", "float16", "float32", "float64", "bool"})


@dataclass
class ResultPart:
    name: str
    kind: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays.values()))


def _safe(name: str) -> str:
    return _SAFE.sub("_", name).strip("._") or "part"


def write_parts(result_dir: str | os.PathLike, parts: list[ResultPart], *, scene: str, up=(0.0, 0.0, 1.0)) -> Path:
    """Write parts + manifest atomically (manifest written last, via rename)."""
    result_dir = Path(result_dir)
    result_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, part in enumerate(parts):
        files = {}
        for key, arr in part.arrays.items():
            arr = np.ascontiguousarray(arr)
            if arr.dtype.name not in ALLOWED_DTYPES:
                raise ValueError(f"result part {part.name!r}: array {key!r} has unsupported dtype {arr.dtype}")
            fname = f"{i:03d}_{_safe(part.name)}.{_safe(key)}.npy"
            np.save(result_dir / fname, arr, allow_pickle=False)
            files[key] = fname
        entries.append({"name": part.name, "kind": part.kind, "arrays": files, "meta": part.meta})
    manifest = {"version": RESULTS_VERSION, "scene": scene, "up": [float(u) for u in up], "parts": entries}
    tmp = result_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, result_dir / "manifest.json")
    return result_dir / "manifest.json"


def read_manifest(result_dir: str | os.PathLike) -> dict:
    path = Path(result_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no result manifest at {path}")
    return json.loads(path.read_text())


def read_parts(result_dir: str | os.PathLike, *, mmap: bool = True) -> tuple[dict, list[ResultPart]]:
    """Read the manifest and every part (arrays memory-mapped by default)."""
    result_dir = Path(result_dir)
    manifest = read_manifest(result_dir)
    parts = []
    for e in manifest["parts"]:
        arrays = {
            k: np.load(result_dir / f, allow_pickle=False, mmap_mode="r" if mmap else None)
            for k, f in e["arrays"].items()
        }
        parts.append(ResultPart(e["name"], e["kind"], arrays, e.get("meta", {})))
    return manifest, parts
