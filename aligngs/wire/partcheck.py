"""Checks of one result part against its kind (the arrays ``results`` documents): every problem raises
``ResultFormatError`` naming the part, the array and what was expected; the checked arrays come back contiguous in
the expected dtypes (float32 / int32 / uint8 colours)."""
from __future__ import annotations

import numpy as np

from .errors import ResultFormatError

CHECKED_KINDS = ("mesh", "points", "cameras", "class")  # kinds a reader builds (``file`` parts are saved as is)


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
    raise ResultFormatError(f"result part {part.name!r}: unknown kind {part.kind!r} (known: {', '.join(CHECKED_KINDS)})")
