"""The result-part format as the add-on reads it (no bpy; mirrors ``aligngs/results.py``, which the add-on
cannot import because it ships alone in its zip).

A result is a manifest dict (``version``, ``scene``, ``up``, ``parts``) plus parts. Part kinds and arrays:

- ``mesh``:    vertices f32[N,3], faces i32[M,3], colors u8[N,3], class_id i32[N] (optional)
- ``points``:  positions f32[N,3], colors u8[N,3], class_id i32[N] (optional), confidence f32[N] (optional)
- ``cameras``: c2w f32[V,4,4] (OpenCV axes), K f32[V,3,3], size i32[V,2] (width, height); meta: names
- ``class``:   meta class_id, name, color [r,g,b] 0..255, instances; arrays as ``mesh`` / ``points`` prefixed
               ``mesh_`` / ``points_`` plus ``mesh_instance`` / ``points_instance`` i32[N] (-1 = no instance)

``check_part`` validates one part and returns contiguous arrays in the expected dtypes; every problem raises
``ResultFormatError`` naming the part, the array and what was expected.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KNOWN_KINDS = ("mesh", "points", "cameras", "class")
SUPPORTED_VERSIONS = (1,)


class ResultFormatError(ValueError):
    """A manifest or part does not match the result format."""


@dataclass
class Part:
    name: str
    kind: str
    arrays: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


def _arr(part, key: str, *, required: bool = True):
    a = part.arrays.get(key)
    if a is None and required:
        raise ResultFormatError(f"result part {part.name!r} ({part.kind}): missing array {key!r}")
    return None if a is None else np.asarray(a)


def _shape(part, key: str, a: np.ndarray, want: tuple) -> None:
    ok = a.ndim == len(want) and all(w is None or w == s for w, s in zip(want, a.shape))
    if not ok:
        txt = "[" + ",".join("N" if w is None else str(w) for w in want) + "]"
        raise ResultFormatError(
            f"result part {part.name!r} ({part.kind}): array {key!r} has shape {list(a.shape)}, expected {txt}"
        )


def _kind_ok(part, key: str, a: np.ndarray, kinds: str) -> None:
    if a.dtype.kind not in kinds:
        names = {"f": "float", "i": "int", "u": "unsigned int", "b": "bool"}
        raise ResultFormatError(
            f"result part {part.name!r} ({part.kind}): array {key!r} has dtype {a.dtype}, "
            f"expected {' or '.join(names[k] for k in kinds)}"
        )


def _float(part, key, a, want):
    _kind_ok(part, key, a, "fiu")
    _shape(part, key, a, want)
    if not np.all(np.isfinite(a)):
        raise ResultFormatError(f"result part {part.name!r} ({part.kind}): array {key!r} has non-finite values")
    return np.ascontiguousarray(a, dtype=np.float32)


def _int(part, key, a, want):
    _kind_ok(part, key, a, "iub")
    _shape(part, key, a, want)
    return np.ascontiguousarray(a, dtype=np.int32)


def _colors(part, key, a, n):
    _kind_ok(part, key, a, "u" if a.dtype.kind == "u" else "fiu")
    if a.ndim != 2 or a.shape[0] != n or a.shape[1] not in (3, 4):
        raise ResultFormatError(
            f"result part {part.name!r} ({part.kind}): array {key!r} has shape {list(a.shape)}, expected [{n},3]"
        )
    if a.dtype != np.uint8:
        if a.dtype.kind == "f" and a.size and float(np.nanmax(a)) <= 1.0:
            a = a * 255.0
        a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a[:, :3])


def check_mesh(part, prefix: str = "") -> dict:
    v = _float(part, prefix + "vertices", _arr(part, prefix + "vertices"), (None, 3))
    f = _int(part, prefix + "faces", _arr(part, prefix + "faces"), (None, 3))
    n = len(v)
    if f.size and (int(f.min()) < 0 or int(f.max()) >= n):
        raise ResultFormatError(
            f"result part {part.name!r} ({part.kind}): array {prefix}faces indexes vertex "
            f"{int(f.min()) if int(f.min()) < 0 else int(f.max())}, expected 0..{n - 1}"
        )
    out = {"vertices": v, "faces": f}
    c = _arr(part, prefix + "colors", required=False)
    if c is not None:
        out["colors"] = _colors(part, prefix + "colors", c, n)
    for key in ("class_id", "instance"):
        a = _arr(part, prefix + key, required=False)
        if a is not None:
            out[key] = _int(part, prefix + key, a, (n,))
    return out


def check_points(part, prefix: str = "") -> dict:
    p = _float(part, prefix + "positions", _arr(part, prefix + "positions"), (None, 3))
    n = len(p)
    out = {"positions": p}
    c = _arr(part, prefix + "colors", required=False)
    if c is not None:
        out["colors"] = _colors(part, prefix + "colors", c, n)
    for key in ("class_id", "instance"):
        a = _arr(part, prefix + key, required=False)
        if a is not None:
            out[key] = _int(part, prefix + key, a, (n,))
    conf = _arr(part, prefix + "confidence", required=False)
    if conf is not None:
        out["confidence"] = _float(part, prefix + "confidence", conf, (n,))
    return out


def check_cameras(part) -> dict:
    c2w = _float(part, "c2w", _arr(part, "c2w"), (None, 4, 4))
    v = len(c2w)
    K = _float(part, "K", _arr(part, "K"), (v, 3, 3))
    size = _int(part, "size", _arr(part, "size"), (v, 2))
    names = part.meta.get("names")
    if names is None:
        names = [f"camera_{i:03d}" for i in range(v)]
    if not isinstance(names, list) or len(names) != v or not all(isinstance(s, str) for s in names):
        raise ResultFormatError(f"result part {part.name!r} (cameras): meta 'names' must be {v} strings")
    return {"c2w": c2w, "K": K, "size": size, "names": names}


def check_class(part) -> dict:
    meta = part.meta
    for key in ("class_id", "name"):
        if key not in meta:
            raise ResultFormatError(f"result part {part.name!r} (class): meta is missing {key!r}")
    color = meta.get("color", [200, 200, 200])
    if not (isinstance(color, (list, tuple)) and len(color) == 3):
        raise ResultFormatError(f"result part {part.name!r} (class): meta 'color' must be [r,g,b] 0..255")
    out = {
        "class_id": int(meta["class_id"]),
        "name": str(meta["name"]),
        "color": [int(c) for c in color],
        "instances": meta.get("instances"),
    }
    if "mesh_vertices" in part.arrays:
        out["mesh"] = check_mesh(part, "mesh_")
    if "points_positions" in part.arrays:
        out["points"] = check_points(part, "points_")
    return out


def check_part(part) -> dict:
    """Validate ``part`` (name, kind, arrays, meta) against its kind; unknown kinds raise."""
    if part.kind == "mesh":
        return check_mesh(part)
    if part.kind == "points":
        return check_points(part)
    if part.kind == "cameras":
        return check_cameras(part)
    if part.kind == "class":
        return check_class(part)
    raise ResultFormatError(f"result part {part.name!r}: unknown kind {part.kind!r} (known: {', '.join(KNOWN_KINDS)})")


def check_manifest(manifest: dict) -> dict:
    """Validate the manifest's top level; return {'scene', 'up', 'version'}."""
    if not isinstance(manifest, dict):
        raise ResultFormatError(f"result manifest: expected an object, got {type(manifest).__name__}")
    version = manifest.get("version", 1)
    if version not in SUPPORTED_VERSIONS:
        raise ResultFormatError(f"result manifest: version {version!r} is not supported (this add-on reads 1)")
    up = manifest.get("up", [0.0, 0.0, 1.0])
    if not (isinstance(up, (list, tuple)) and len(up) == 3 and all(isinstance(u, (int, float)) for u in up)):
        raise ResultFormatError(f"result manifest: 'up' must be 3 numbers, got {up!r}")
    scene = manifest.get("scene") or "result"
    return {"scene": str(scene), "up": [float(u) for u in up], "version": version}


def read_result_folder(result_dir: str | os.PathLike, *, mmap: bool = True) -> tuple[dict, list[Part]]:
    """Read ``manifest.json`` and every part's ``.npy`` arrays (``allow_pickle=False``) from a result folder.

    Accepts the folder itself or a job folder holding ``result/``.
    """
    d = Path(result_dir)
    if not (d / "manifest.json").is_file() and (d / "result" / "manifest.json").is_file():
        d = d / "result"
    path = d / "manifest.json"
    if not d.is_dir():
        raise FileNotFoundError(f"result folder {d} does not exist")
    if not path.is_file():
        raise FileNotFoundError(f"no result manifest at {path} (expected a folder written by an AlignGS run)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ResultFormatError(f"{path}: not valid JSON ({e})") from e
    check_manifest(manifest)
    entries = manifest.get("parts")
    if not isinstance(entries, list):
        raise ResultFormatError(f"{path}: 'parts' must be a list")
    parts = []
    for i, e in enumerate(entries):
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
        parts.append(Part(str(e.get("name", f"part{i}")), str(e["kind"]), arrays, dict(e.get("meta") or {})))
    return manifest, parts
