"""A tiny binary PLY writer/reader for triangle meshes with integer per-vertex labels (numpy only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_labeled_ply", "read_labeled_ply", "PlyFormatError"]


class PlyFormatError(ValueError):
    """A PLY file this module did not write (or a damaged one)."""


def write_labeled_ply(path, vertices: np.ndarray, faces: np.ndarray, vertex_ints: dict[str, np.ndarray]) -> None:
    """Write ``binary_little_endian`` PLY: float x,y,z + one int32 property per ``vertex_ints`` entry,
    faces as ``list uchar int vertex_indices``."""
    v = np.asarray(vertices, dtype="<f4").reshape(-1, 3)
    f = np.asarray(faces, dtype="<i4").reshape(-1, 3)
    if len(f) and (f.min() < 0 or f.max() >= len(v)):
        raise ValueError(f"write_labeled_ply({path}): face index out of range 0..{len(v) - 1}")
    vdt = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")] + [(k, "<i4") for k in vertex_ints]
    vrec = np.empty(len(v), dtype=vdt)
    vrec["x"], vrec["y"], vrec["z"] = v[:, 0], v[:, 1], v[:, 2]
    for k, arr in vertex_ints.items():
        arr = np.asarray(arr).reshape(-1)
        if arr.shape[0] != len(v):
            raise ValueError(
                f"write_labeled_ply({path}): property {k!r} has {arr.shape[0]} values for {len(v)} vertices")
        vrec[k] = arr.astype("<i4")
    frec = np.empty(len(f), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    frec["n"] = 3
    frec["v"] = f
    header = ["ply", "format binary_little_endian 1.0", "comment aligngs synthetic ground truth",
              f"element vertex {len(v)}", "property float x", "property float y", "property float z"]
    header += [f"property int {k}" for k in vertex_ints]
    header += [f"element face {len(f)}", "property list uchar int vertex_indices", "end_header"]
    with open(path, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        fh.write(vrec.tobytes())
        fh.write(frec.tobytes())


def read_labeled_ply(path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Read back what :func:`write_labeled_ply` wrote: (vertices [N,3] f32, faces [M,3] i32, {name: int32 [N]})."""
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise PlyFormatError(f"{path}: not a PLY file (missing 'ply' magic or 'end_header')")
    lines = data[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in lines:
        raise PlyFormatError(f"{path}: expected 'format binary_little_endian 1.0'")
    nv = nf = None
    names: list[tuple[str, str]] = []
    elem = None
    for ln in lines:
        tok = ln.split()
        if tok[:1] == ["element"]:
            elem = tok[1]
            if elem == "vertex":
                nv = int(tok[2])
            elif elem == "face":
                nf = int(tok[2])
            else:
                raise PlyFormatError(f"{path}: unexpected element {tok[1]!r}")
        elif tok[:1] == ["property"] and elem == "vertex":
            typ = {"float": "<f4", "int": "<i4"}.get(tok[1])
            if typ is None:
                raise PlyFormatError(f"{path}: unsupported vertex property type {tok[1]!r}")
            names.append((tok[2], typ))
        elif tok[:1] == ["property"] and elem == "face" and tok[1:4] != ["list", "uchar", "int"]:
            raise PlyFormatError(f"{path}: faces must be 'list uchar int', got {' '.join(tok[1:])}")
    if nv is None or nf is None:
        raise PlyFormatError(f"{path}: missing vertex or face element")
    body = data[end + len(b"end_header\n"):]
    vdt = np.dtype(names)
    fdt = np.dtype([("n", "u1"), ("v", "<i4", (3,))])
    need = nv * vdt.itemsize + nf * fdt.itemsize
    if len(body) != need:
        raise PlyFormatError(f"{path}: body has {len(body)} bytes, header implies {need}")
    vrec = np.frombuffer(body, dtype=vdt, count=nv)
    frec = np.frombuffer(body, dtype=fdt, count=nf, offset=nv * vdt.itemsize)
    if nf and not (frec["n"] == 3).all():
        raise PlyFormatError(f"{path}: non-triangle faces")
    verts = np.stack([vrec["x"], vrec["y"], vrec["z"]], 1).astype(np.float32)
    ints = {n: vrec[n].astype(np.int32) for n, t in names if n not in ("x", "y", "z")}
    return verts, frec["v"].astype(np.int32), ints
