"""Result parts: the typed, pickle-free hand-over format between the pipeline, the backend and the add-on.

A finished reconstruction writes ``<out>/result/manifest.json`` plus one ``.npy`` file per array
(``np.save`` / ``np.load(allow_pickle=False)``). The backend streams each part as a JSON header + raw
array frames (``stream``); the Blender add-on rebuilds the same arrays. Part kinds and their arrays:

- ``mesh``:    vertices f32[N,3], faces i32[M,3], colors u8[N,3], class_id i32[N] (optional)
- ``points``:  positions f32[N,3], colors u8[N,3], class_id i32[N] (optional), confidence f32[N] (optional)
- ``cameras``: c2w f32[V,4,4] (OpenCV axes), K f32[V,3,3], size i32[V,2] (width, height); meta: names
- ``class``:   one per present class; meta: class_id, name, color [r,g,b] 0..255, instances;
               arrays as ``mesh`` and/or ``points`` prefixed ``mesh_`` / ``points_``, plus
               ``mesh_instance`` i32[N] / ``points_instance`` i32[N] (instance id per element, -1 = none)
- ``file``:    a file the pipeline wrote (the 3DGS PLY), streamed by the server only: one array ``data`` u8[nbytes]

The manifest's top level also carries ``scene`` (name), ``up`` (the world up vector, 3 floats) and ``version``.
``partcheck.check_part`` validates a part against its kind.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .constants import ALLOWED_DTYPES, RESULTS_VERSION, SUPPORTED_RESULTS_VERSIONS
from .errors import ResultFormatError
from .jsonio import write_json_atomic
from .names import safe_name

MANIFEST = "manifest.json"


@dataclass
class ResultPart:
    name: str
    kind: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays.values()))


def write_parts(result_dir: str | os.PathLike, parts: list[ResultPart], *, scene: str, up=(0.0, 0.0, 1.0)) -> Path:
    """Write parts + manifest (the manifest last and atomically, so a reader never sees a half-written result)."""
    result_dir = Path(result_dir)
    result_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, part in enumerate(parts):
        files = {}
        for key, arr in part.arrays.items():
            arr = np.ascontiguousarray(arr)
            if arr.dtype.name not in ALLOWED_DTYPES:
                raise ValueError(f"result part {part.name!r}: array {key!r} has unsupported dtype {arr.dtype}")
            fname = f"{i:03d}_{safe_name(part.name)}.{safe_name(key)}.npy"
            np.save(result_dir / fname, arr, allow_pickle=False)
            files[key] = fname
        entries.append({"name": part.name, "kind": part.kind, "arrays": files, "meta": part.meta})
    manifest = {"version": RESULTS_VERSION, "scene": scene, "up": [float(u) for u in up], "parts": entries}
    return write_json_atomic(result_dir / MANIFEST, manifest, indent=1)


def check_manifest(manifest: dict) -> dict:
    """Validate the manifest's top level; return {'scene', 'up', 'version'}."""
    if not isinstance(manifest, dict):
        raise ResultFormatError(f"result manifest: expected an object, got {type(manifest).__name__}")
    version = manifest.get("version", 1)
    if version not in SUPPORTED_RESULTS_VERSIONS:
        raise ResultFormatError(f"result manifest: version {version!r} is not supported (this reader reads "
                                f"{', '.join(map(str, SUPPORTED_RESULTS_VERSIONS))})")
    up = manifest.get("up", [0.0, 0.0, 1.0])
    if not (isinstance(up, (list, tuple)) and len(up) == 3 and all(isinstance(u, (int, float)) for u in up)):
        raise ResultFormatError(f"result manifest: 'up' must be 3 numbers, got {up!r}")
    scene = manifest.get("scene") or "result"
    return {"scene": str(scene), "up": [float(u) for u in up], "version": version}


def result_folder(path: str | os.PathLike) -> Path:
    """The folder holding ``manifest.json``: ``path`` itself or, for a job / output folder, its ``result/``."""
    d = Path(path)
    if not (d / MANIFEST).is_file() and (d / "result" / MANIFEST).is_file():
        d = d / "result"
    if not d.is_dir():
        raise FileNotFoundError(f"result folder {d} does not exist")
    if not (d / MANIFEST).is_file():
        raise FileNotFoundError(f"no result manifest at {d / MANIFEST} (expected a folder written by an AlignGS run)")
    return d


def read_manifest(result_dir: str | os.PathLike) -> dict:
    """The checked manifest of a result folder (``result_folder`` rules)."""
    path = result_folder(result_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ResultFormatError(f"{path}: not valid JSON ({e})") from e
    check_manifest(manifest)
    if not isinstance(manifest.get("parts"), list):
        raise ResultFormatError(f"{path}: 'parts' must be a list")
    return manifest


def read_parts(result_dir: str | os.PathLike, *, mmap: bool = True) -> tuple[dict, list[ResultPart]]:
    """Read the manifest and every part's ``.npy`` arrays (``allow_pickle=False``; memory-mapped by default).

    Accepts the result folder itself or a folder holding ``result/``. Array files must lie inside the folder."""
    d = result_folder(result_dir)
    path = d / MANIFEST
    manifest = read_manifest(d)
    parts = []
    for i, e in enumerate(manifest["parts"]):
        if not isinstance(e, dict) or "kind" not in e or not isinstance(e.get("arrays", {}), dict):
            raise ResultFormatError(f"{path}: parts[{i}] must be an object with 'kind' and 'arrays'")
        arrays = {}
        for key, fname in e.get("arrays", {}).items():
            f = d / str(fname)
            if f.resolve().parent != d.resolve():
                raise ResultFormatError(f"{path}: parts[{i}] array {key!r} points outside the folder: {fname!r}")
            if not f.is_file():
                raise FileNotFoundError(f"{path}: parts[{i}] array {key!r}: missing file {f}")
            try:
                arrays[key] = np.load(f, allow_pickle=False, mmap_mode="r" if mmap else None)
            except ValueError as err:
                raise ResultFormatError(f"{f}: not a plain .npy array ({err})") from err
        parts.append(ResultPart(str(e.get("name", f"part{i}")), str(e["kind"]), arrays, dict(e.get("meta") or {})))
    return manifest, parts
