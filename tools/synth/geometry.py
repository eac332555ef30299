"""Triangle-mesh primitives in numpy (no bpy): the one geometry both the renderer and the GT mesh use.

Every primitive is a :class:`PartMesh`: world-space vertices, triangles, per-corner UVs in metres (so 2-D
procedural textures keep a metric scale on every face) and a per-triangle material slot. Faces are wound
counter-clockwise seen from outside (outward normals); for room surfaces "outside" is the room interior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PartMesh", "merge", "quad", "box", "cylinder", "wall_with_hole", "rect_xy"]


@dataclass
class PartMesh:
    """A triangle soup with metric UVs and material slots."""

    vertices: np.ndarray  # [N,3] float64 world coordinates
    faces: np.ndarray  # [M,3] int64 vertex indices
    uvs: np.ndarray  # [M,3,2] float64, per face corner, metres
    slots: np.ndarray  # [M] int64 material slot per face

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, dtype=np.float64).reshape(-1, 3)
        self.faces = np.asarray(self.faces, dtype=np.int64).reshape(-1, 3)
        self.uvs = np.asarray(self.uvs, dtype=np.float64).reshape(-1, 3, 2)
        self.slots = np.asarray(self.slots, dtype=np.int64).reshape(-1)
        m = len(self.faces)
        if self.uvs.shape[0] != m or self.slots.shape[0] != m:
            raise ValueError(f"PartMesh: {m} faces but {self.uvs.shape[0]} uv triples and {self.slots.shape[0]} slots")
        if m and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise ValueError("PartMesh: face index out of range")

    @property
    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        return self.vertices.min(0), self.vertices.max(0)

    def face_normals(self) -> np.ndarray:
        v = self.vertices[self.faces]
        n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)

    def area(self) -> float:
        v = self.vertices[self.faces]
        return float(0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1).sum())


def merge(parts: list[PartMesh]) -> PartMesh:
    """Concatenate meshes (indices re-based); slots are kept as given."""
    if not parts:
        return PartMesh(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3, 2)), np.zeros(0))
    verts, faces, uvs, slots = [], [], [], []
    off = 0
    for p in parts:
        verts.append(p.vertices)
        faces.append(p.faces + off)
        uvs.append(p.uvs)
        slots.append(p.slots)
        off += len(p.vertices)
    return PartMesh(np.concatenate(verts), np.concatenate(faces), np.concatenate(uvs), np.concatenate(slots))


def quad(origin, eu, ev, slot: int = 0) -> PartMesh:
    """The parallelogram origin + s*eu + t*ev (s, t in [0, 1]); normal = eu x ev. UVs in metres."""
    o, eu, ev = (np.asarray(a, dtype=np.float64) for a in (origin, eu, ev))
    verts = np.stack([o, o + eu, o + eu + ev, o + ev])
    lu, lv = float(np.linalg.norm(eu)), float(np.linalg.norm(ev))
    uv = np.array([[0.0, 0.0], [lu, 0.0], [lu, lv], [0.0, lv]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    return PartMesh(verts, faces, uv[faces], np.full(2, slot))


def _rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def box(center, size, yaw: float = 0.0, slot: int = 0, open_faces: tuple[str, ...] = ()) -> PartMesh:
    """Axis box of ``size`` (sx, sy, sz) centred at ``center``, rotated by ``yaw`` about +z.

    ``open_faces`` drops faces by name ("-x", "+x", "-y", "+y", "-z", "+z"), e.g. a box resting on the floor
    has no visible bottom.
    """
    c = np.asarray(center, dtype=np.float64)
    h = 0.5 * np.asarray(size, dtype=np.float64)
    R = _rot_z(yaw)
    ex, ey, ez = R[:, 0] * h[0] * 2, R[:, 1] * h[1] * 2, R[:, 2] * h[2] * 2
    lo = c - (R @ h)
    faces = {
        "-z": (lo, ey, ex),
        "+z": (lo + ez, ex, ey),
        "-y": (lo, ex, ez),
        "+y": (lo + ey, ez, ex),
        "-x": (lo, ez, ey),
        "+x": (lo + ex, ey, ez),
    }
    parts = [quad(o, a, b, slot) for name, (o, a, b) in faces.items() if name not in open_faces]
    return merge(parts)


def cylinder(base_center, radius: float, height: float, segments: int = 20, slot: int = 0,
             caps: tuple[bool, bool] = (True, True), radius_top: float | None = None) -> PartMesh:
    """A z-aligned (truncated-cone) cylinder from ``base_center`` up ``height``; UVs: arc length x height."""
    b = np.asarray(base_center, dtype=np.float64)
    r0 = float(radius)
    r1 = r0 if radius_top is None else float(radius_top)
    ang = np.linspace(0.0, 2 * math.pi, segments + 1)[:-1]
    ring = np.stack([np.cos(ang), np.sin(ang), np.zeros_like(ang)], 1)
    bot = b + ring * r0
    top = b + ring * r1 + np.array([0.0, 0.0, height])
    verts = [bot, top]
    faces, uvs = [], []
    n = segments
    arc0, arc1 = 2 * math.pi * r0 / n, 2 * math.pi * r1 / n
    slant = math.hypot(height, r1 - r0)
    for i in range(n):
        j = (i + 1) % n
        a, bb, c, d = i, j, n + j, n + i
        faces += [[a, bb, c], [a, c, d]]
        u0, u1 = i * arc0, (i + 1) * arc0
        t0, t1 = i * arc1, (i + 1) * arc1
        uvs += [[[u0, 0], [u1, 0], [t1, slant]], [[u0, 0], [t1, slant], [t0, slant]]]
    V = np.concatenate(verts)
    extra = []
    if caps[0]:
        ci = len(V) + sum(len(e) for e in extra)
        extra.append(b[None])
        for i in range(n):
            j = (i + 1) % n
            faces.append([ci, j, i])
            uvs.append([[0, 0], [ring[j, 0] * r0, ring[j, 1] * r0], [ring[i, 0] * r0, ring[i, 1] * r0]])
    if caps[1]:
        ci = len(V) + sum(len(e) for e in extra)
        extra.append((b + np.array([0.0, 0.0, height]))[None])
        for i in range(n):
            j = (i + 1) % n
            faces.append([ci, n + i, n + j])
            uvs.append([[0, 0], [ring[i, 0] * r1, ring[i, 1] * r1], [ring[j, 0] * r1, ring[j, 1] * r1]])
    if extra:
        V = np.concatenate([V] + extra)
    F = np.asarray(faces)
    return PartMesh(V, F, np.asarray(uvs, dtype=np.float64), np.full(len(F), slot))


def rect_xy(x0: float, y0: float, x1: float, y1: float, z: float, up: bool, slot: int = 0) -> PartMesh:
    """Horizontal rectangle at height z facing +z (``up``) or -z."""
    if up:
        return quad((x0, y0, z), (x1 - x0, 0, 0), (0, y1 - y0, 0), slot)
    return quad((x0, y0, z), (0, y1 - y0, 0), (x1 - x0, 0, 0), slot)


def wall_with_hole(origin, along, inward, length: float, height: float,
                   hole: tuple[float, float, float, float] | None = None, depth: float = 0.0,
                   slot: int = 0, reveal_slot: int | None = None) -> PartMesh:
    """A vertical wall face seen from the room, optionally with a rectangular hole and its reveal.

    ``origin`` is the wall's bottom-left corner seen from inside, ``along`` the unit direction to its right,
    ``inward`` the unit normal pointing into the room. ``hole`` = (u0, u1, v0, v1) in metres along/up the
    wall. The reveal (the hole's four side faces) goes ``depth`` metres outward, facing the hole's axis.
    """
    o = np.asarray(origin, dtype=np.float64)
    a = np.asarray(along, dtype=np.float64)
    n = np.asarray(inward, dtype=np.float64)
    up = np.array([0.0, 0.0, 1.0])
    if abs(np.dot(np.cross(a, up), n) - 1.0) > 1e-9:
        raise ValueError("wall_with_hole: along x up must equal inward (wall seen from inside)")

    def panel(u0, u1, v0, v1):
        return quad(o + a * u0 + up * v0, a * (u1 - u0), up * (v1 - v0), slot)

    if hole is None:
        return panel(0.0, length, 0.0, height)
    u0, u1, v0, v1 = hole
    if not (0 < u0 < u1 < length and 0 <= v0 < v1 < height):
        raise ValueError(f"wall_with_hole: hole {hole} outside wall {length} x {height}")
    parts = [panel(0.0, u0, 0.0, height), panel(u1, length, 0.0, height), panel(u0, u1, v1, height)]
    if v0 > 0:
        parts.append(panel(u0, u1, 0.0, v0))
    if depth > 0:
        rs = slot if reveal_slot is None else reveal_slot
        out = -n * depth
        p00 = o + a * u0 + up * v0
        p10 = o + a * u1 + up * v0
        p01 = o + a * u0 + up * v1
        # sill (faces up), lintel (faces down), left jamb (faces +along), right jamb (faces -along)
        parts.append(quad(p00, a * (u1 - u0), out, rs))
        parts.append(quad(p01, out, a * (u1 - u0), rs))
        parts.append(quad(p00, out, up * (v1 - v0), rs))
        parts.append(quad(p10, up * (v1 - v0), out, rs))
    return merge(parts)
