"""Binary little-endian PLY files (via plyfile): a generic writer/reader plus mesh and point-cloud helpers.

Vertex properties are written in the dict's order with their own numpy dtypes (PLY types: int8/uint8,
int16/uint16, int32/uint32, float32/float64; bool is written as uchar, 64-bit integers as int32 when their
values fit). Faces are the standard ``vertex_indices`` list (uchar count, int indices). Files are written to a
temporary name next to the target and moved into place, so a reader never sees half a file.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement, PlyElementParseError

from aligngs.data.types import TriMesh
from aligngs.wire.jsonio import atomic_open

_PLY_OK = {np.dtype(t) for t in ("i1", "u1", "i2", "u2", "i4", "u4", "f4", "f8")}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _as_numpy(x) -> np.ndarray:
    """numpy view of an array-like (torch tensors are detached and moved to the CPU first)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _ply_column(name: str, values, n: int | None, where: str) -> np.ndarray:
    if not _NAME.match(name):
        raise ValueError(f"{where}: property name {name!r} is not a plain identifier")
    a = _as_numpy(values)
    if a.ndim != 1:
        raise ValueError(f"{where}: property {name!r} must be 1-D [N], got shape {a.shape}")
    if n is not None and len(a) != n:
        raise ValueError(f"{where}: property {name!r} has {len(a)} values, expected {n}")
    if a.dtype == np.bool_:
        return a.astype(np.uint8)
    if a.dtype.kind in "iu" and a.dtype.itemsize == 8:
        if len(a) and (a.min() < np.iinfo(np.int32).min or a.max() > np.iinfo(np.int32).max):
            raise ValueError(f"{where}: property {name!r} is 64-bit with values outside int32 (PLY has no 64-bit ints)")
        return a.astype(np.int32)
    a = a.astype(a.dtype.newbyteorder("="), copy=False)
    if a.dtype not in _PLY_OK:
        raise ValueError(f"{where}: property {name!r} has dtype {a.dtype}, which PLY cannot store")
    return a


def _vertex_records(vertex: dict, where: str) -> np.ndarray:
    if not vertex:
        raise ValueError(f"{where}: no vertex properties given")
    cols = {}
    n = None
    for name, values in vertex.items():
        cols[name] = _ply_column(name, values, n, where)
        n = len(cols[name])
    rec = np.empty(n, dtype=[(k, v.dtype.newbyteorder("<")) for k, v in cols.items()])
    for k, v in cols.items():
        rec[k] = v
    return rec


def _face_records(faces, n_vertices: int, where: str) -> np.ndarray:
    f = _as_numpy(faces)
    if f.ndim != 2 or f.shape[1] < 3 or f.dtype.kind not in "iu":
        raise ValueError(f"{where}: faces must be an integer array [M,k>=3], got shape {f.shape} dtype {f.dtype}")
    if f.size and (f.min() < 0 or f.max() >= n_vertices):
        raise ValueError(f"{where}: face indices must lie in [0, {n_vertices}), got [{f.min()}, {f.max()}]")
    if f.shape[1] > 255:
        raise ValueError(f"{where}: faces with more than 255 vertices cannot be stored (uchar count)")
    rec = np.empty(len(f), dtype=[("count", "u1"), ("vertex_indices", "<i4", (f.shape[1],))])
    rec["count"] = f.shape[1]
    rec["vertex_indices"] = f
    return rec


def write_ply(path, vertex: dict, faces=None, comments: list[str] | None = None) -> Path:
    """Write a binary little-endian PLY: ``vertex`` maps property name -> [N] array (in order), ``faces``
    an optional integer [M,k] array of vertex indices (``property list uchar int vertex_indices``).

    plyfile defines the header; the body is written straight from numpy records (plyfile's own list writer
    is a Python loop: ~2 s per million faces). Returns the path.
    """
    path = Path(path)
    where = f"write_ply({path})"
    vrec = _vertex_records(vertex, where)
    elements = [PlyElement.describe(vrec, "vertex")]
    frec = None
    if faces is not None:
        frec = _face_records(faces, len(vrec), where)
        placeholder = np.empty(len(frec), dtype=[("vertex_indices", "O")])  # header only: name, count, types
        elements.append(
            PlyElement.describe(placeholder, "face", len_types={"vertex_indices": "u1"}, val_types={"vertex_indices": "i4"})
        )
    header = PlyData(elements, text=False, byte_order="<", comments=list(comments or [])).header
    with atomic_open(path, "wb") as fh:
        fh.write(header.encode("ascii") + b"\n")
        fh.write(vrec.tobytes())
        if frec is not None:
            fh.write(frec.tobytes())
    return path


def read_ply(path) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Read a PLY (binary or ASCII): ``(vertex properties by name in file order, faces [M,k] int32 or None)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_ply: no such file {path}")
    try:
        try:  # fast path: triangles memory-mapped (plyfile checks every row's count)
            data = PlyData.read(str(path), known_list_len={"face": {"vertex_indices": 3}})
        except PlyElementParseError:
            data = PlyData.read(str(path), mmap=False)
    except Exception as exc:  # plyfile raises several types for malformed files
        raise ValueError(f"read_ply: {path} is not a readable PLY file: {exc}") from exc
    names = [e.name for e in data.elements]
    if "vertex" not in names:
        raise ValueError(f"read_ply: {path} has no 'vertex' element (elements: {names})")
    vel = data["vertex"].data
    vertex = {name: np.array(vel[name], dtype=vel.dtype[name].newbyteorder("=")) for name in vel.dtype.names}
    faces = None
    if "face" in names:
        fel = data["face"].data
        key = next((k for k in ("vertex_indices", "vertex_index") if k in fel.dtype.names), None)
        if key is None:
            raise ValueError(f"read_ply: {path} face element has no vertex_indices property ({fel.dtype.names})")
        lists = fel[key]
        if lists.dtype != object:  # fixed-length fast path: already [M,3]
            faces = np.array(lists, dtype=np.int32).reshape(len(lists), -1)
        elif len(lists) == 0:
            faces = np.zeros((0, 3), dtype=np.int32)
        else:
            lengths = {len(x) for x in lists}
            if len(lengths) != 1:
                raise ValueError(f"read_ply: {path} mixes polygons of {sorted(lengths)} vertices; expected one size")
            faces = np.stack([np.asarray(x) for x in lists]).astype(np.int32)
    return vertex, faces


def write_mesh_ply(path, mesh: TriMesh) -> Path:
    """A :class:`TriMesh` as PLY: ``x y z`` float, ``red green blue`` uchar (when ``colors``), then every
    ``vertex_attrs`` entry as its own property ([N,k] entries become ``name_0 .. name_{k-1}``), faces as
    ``vertex_indices``."""
    v = _as_numpy(mesh.vertices)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"write_mesh_ply({path}): vertices must be [N,3], got shape {v.shape}")
    vertex = {"x": v[:, 0].astype(np.float32), "y": v[:, 1].astype(np.float32), "z": v[:, 2].astype(np.float32)}
    if mesh.colors is not None:
        vertex.update(_color_columns(mesh.colors, len(v), f"write_mesh_ply({path})"))
    vertex.update(_attr_columns(mesh.vertex_attrs, len(v), vertex, f"write_mesh_ply({path})"))
    return write_ply(path, vertex, _as_numpy(mesh.faces).reshape(-1, 3))


def read_mesh_ply(path) -> TriMesh:
    """Read a mesh written by :func:`write_mesh_ply` (or any PLY with x y z [+ red green blue] + faces).
    Properties other than position/colour come back in ``vertex_attrs`` one per name (no regrouping)."""
    vertex, faces = read_ply(path)
    for k in ("x", "y", "z"):
        if k not in vertex:
            raise ValueError(f"read_mesh_ply: {path} has no vertex property {k!r}")
    verts = np.stack([vertex.pop(k) for k in ("x", "y", "z")], axis=1).astype(np.float32)
    colors = None
    if all(k in vertex for k in ("red", "green", "blue")):
        colors = np.stack([vertex.pop(k) for k in ("red", "green", "blue")], axis=1).astype(np.uint8)
    if faces is None:
        faces = np.zeros((0, 3), dtype=np.int32)
    elif faces.shape[1] != 3:
        raise ValueError(f"read_mesh_ply: {path} has {faces.shape[1]}-gons; expected triangles")
    return TriMesh(vertices=verts, faces=faces, colors=colors, vertex_attrs=vertex)


def write_points_ply(path, positions, colors=None, attrs: dict | None = None) -> Path:
    """A point cloud: ``x y z`` float, ``red green blue`` uchar (``colors`` uint8 0..255, or float 0..1 which
    is rounded), then ``attrs`` (name -> [N] or [N,k] array, e.g. ``class_id`` int32, ``confidence`` float32)."""
    p = _as_numpy(positions)
    where = f"write_points_ply({path})"
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"{where}: positions must be [N,3], got shape {p.shape}")
    vertex = {"x": p[:, 0].astype(np.float32), "y": p[:, 1].astype(np.float32), "z": p[:, 2].astype(np.float32)}
    if colors is not None:
        vertex.update(_color_columns(colors, len(p), where))
    vertex.update(_attr_columns(attrs or {}, len(p), vertex, where))
    return write_ply(path, vertex)


def _color_columns(colors, n: int, where: str) -> dict:
    c = _as_numpy(colors)
    if c.shape != (n, 3):
        raise ValueError(f"{where}: colors must be [N,3] = {(n, 3)}, got shape {c.shape}")
    if c.dtype != np.uint8:
        if c.dtype.kind != "f":
            raise ValueError(f"{where}: colors must be uint8 0..255 or float 0..1, got dtype {c.dtype}")
        c = np.clip(np.rint(np.nan_to_num(c) * 255.0), 0, 255).astype(np.uint8)
    return {"red": c[:, 0], "green": c[:, 1], "blue": c[:, 2]}


def _attr_columns(attrs: dict, n: int, taken: dict, where: str) -> dict:
    out = {}
    for name, values in attrs.items():
        a = _as_numpy(values)
        if a.ndim == 1:
            cols = {name: a}
        elif a.ndim == 2:
            cols = {f"{name}_{j}": a[:, j] for j in range(a.shape[1])}
        else:
            raise ValueError(f"{where}: attribute {name!r} must be [N] or [N,k], got shape {a.shape}")
        if len(a) != n:
            raise ValueError(f"{where}: attribute {name!r} has {len(a)} rows, expected {n}")
        for key in cols:
            if key in taken or key in out:
                raise ValueError(f"{where}: attribute name {key!r} is already used")
        out.update(cols)
    return out
