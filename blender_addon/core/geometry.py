"""Pure-numpy geometry helpers for the importer (no bpy: unit-testable anywhere).

Conventions
-----------
* World up: a result's manifest carries ``up`` (3 floats, the reconstruction's world up). The importer rotates the
  whole result by the *minimal* rotation taking ``up`` to Blender's +Z (axis ``up x z``, angle ``acos(up . z)``; an
  ``up`` pointing straight down is turned 180 degrees about +X). Positions are baked into the datablocks, so the
  imported objects have identity transforms (cameras get the rotation in their ``matrix_world``).
* Cameras: results carry OpenCV camera-to-world matrices (x right, y down, z forward). A Blender camera looks down
  its local -Z with +Y up, so ``matrix_world = R_up @ c2w @ diag(1, -1, -1, 1)``.
* Intrinsics: ``sensor_fit = HORIZONTAL``, ``lens = fx / width * sensor_width``; the principal point becomes the lens
  shift, in units of the image width (Blender's shift unit under a horizontal fit):
  ``shift_x = (width / 2 - cx) / width`` and ``shift_y = (cy - height / 2) / width`` (image y grows downwards).
* Colours: results carry 8-bit sRGB; Blender's FLOAT_COLOR attributes store scene-linear RGBA, so colours go
  through the sRGB transfer function (a 256-entry table).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import GeometryError

SENSOR_WIDTH_MM = 36.0
OPENCV_TO_BLENDER_CAMERA = np.diag([1.0, -1.0, -1.0, 1.0])


def rotation_to_z(up) -> np.ndarray:
    """3x3 rotation taking the unit vector along ``up`` to +Z by the smallest angle."""
    u = np.asarray(up, dtype=np.float64).reshape(-1)
    if u.shape != (3,) or not np.all(np.isfinite(u)):
        raise GeometryError(f"manifest 'up': expected 3 finite numbers, got {up!r}")
    n = np.linalg.norm(u)
    if n < 1e-12:
        raise GeometryError(f"manifest 'up': expected a non-zero vector, got {up!r}")
    u = u / n
    z = np.array([0.0, 0.0, 1.0])
    c = float(u @ z)
    if c > 1.0 - 1e-12:
        return np.eye(3)
    if c < -1.0 + 1e-12:
        return np.diag([1.0, -1.0, -1.0])  # 180 degrees about +X
    v = np.cross(u, z)
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def _srgb_lut() -> np.ndarray:
    s = np.arange(256, dtype=np.float64) / 255.0
    lin = np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4)
    return lin.astype(np.float32)


_SRGB_TO_LINEAR = _srgb_lut()


def srgb8_to_linear_rgba(colors: np.ndarray) -> np.ndarray:
    """u8[N,3] (or [N,4]) sRGB -> flat f32[N*4] scene-linear RGBA (alpha 1, or the given alpha linearly)."""
    c = np.asarray(colors)
    if c.ndim != 2 or c.shape[1] not in (3, 4):
        raise GeometryError(f"colors: expected shape [N,3], got {list(c.shape)}")
    out = np.empty((c.shape[0], 4), dtype=np.float32)
    out[:, :3] = _SRGB_TO_LINEAR[c[:, :3]]
    out[:, 3] = 1.0 if c.shape[1] == 3 else c[:, 3].astype(np.float32) / 255.0
    return out.reshape(-1)


def linear_to_srgb(x) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def rotate_points(positions: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """f32[N,3] positions rotated by ``rot`` (a copy; the identity returns a contiguous f32 view/copy)."""
    p = np.ascontiguousarray(positions, dtype=np.float32)
    if np.array_equal(rot, np.eye(3)):
        return p
    return np.ascontiguousarray(p @ rot.T.astype(np.float32))


@dataclass
class CameraParams:
    lens: float
    sensor_width: float
    shift_x: float
    shift_y: float
    width: int
    height: int


def camera_params(K: np.ndarray, size, sensor_width: float = SENSOR_WIDTH_MM) -> CameraParams:
    """Blender camera data values (horizontal sensor fit) for a 3x3 pinhole ``K`` and an image (width, height)."""
    K = np.asarray(K, dtype=np.float64)
    w, h = (int(v) for v in size)
    if K.shape != (3, 3):
        raise GeometryError(f"cameras K: expected a 3x3 matrix, got shape {list(K.shape)}")
    if w <= 0 or h <= 0:
        raise GeometryError(f"cameras size: expected positive (width, height), got {(w, h)}")
    fx, cx, cy = K[0, 0], K[0, 2], K[1, 2]
    if not fx > 0:
        raise GeometryError(f"cameras K: expected fx > 0, got {fx}")
    return CameraParams(
        lens=float(fx / w * sensor_width),
        sensor_width=float(sensor_width),
        shift_x=float((w / 2.0 - cx) / w),
        shift_y=float((cy - h / 2.0) / w),
        width=w,
        height=h,
    )


def camera_matrix_world(c2w: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """4x4 Blender camera matrix_world from an OpenCV camera-to-world matrix and the up-rotation."""
    r4 = np.eye(4)
    r4[:3, :3] = rot
    return r4 @ np.asarray(c2w, dtype=np.float64) @ OPENCV_TO_BLENDER_CAMERA


def auto_point_radius(positions: np.ndarray) -> float:
    """A display radius for a surface point sample: half the mean spacing of N points spread over the bbox faces."""
    p = np.asarray(positions)
    if len(p) == 0:
        return 0.01
    sample = p[:: max(1, len(p) // 100_000)]
    ext = np.ptp(sample, axis=0).astype(np.float64)
    area = 2.0 * (ext[0] * ext[1] + ext[1] * ext[2] + ext[0] * ext[2])
    if not area > 0:
        return 0.01
    return float(0.5 * np.sqrt(area / len(p)))


@dataclass
class MeshPiece:
    label: int
    vertices: np.ndarray  # f32[n,3]
    faces: np.ndarray  # i32[m,3], indices into ``vertices``
    vertex_index: np.ndarray  # i64[n]: index of each vertex in the source mesh (for per-vertex attributes)


def split_mesh(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray) -> list[MeshPiece]:
    """Split a triangle mesh by a per-vertex label (a face takes the label of its first vertex).

    Each piece keeps only the vertices its faces use (re-indexed); shared boundary vertices are duplicated.
    Pieces come sorted by label; vertices no face uses are dropped. Without faces every labelled vertex set
    becomes a face-less piece (so a points-only mesh still splits).
    """
    labels = np.asarray(labels)
    faces = np.asarray(faces)
    if len(faces) == 0:
        pieces = []
        for lab, idx in split_indices(labels):
            pieces.append(MeshPiece(int(lab), vertices[idx], np.zeros((0, 3), np.int32), idx))
        return pieces
    flab = labels[faces[:, 0]]
    order = np.argsort(flab, kind="stable")
    sorted_lab = flab[order]
    uniq, starts = np.unique(sorted_lab, return_index=True)
    ends = list(starts[1:]) + [len(order)]
    pieces = []
    for lab, s, e in zip(uniq, starts, ends):
        f = faces[order[s:e]]
        used, inv = np.unique(f, return_inverse=True)
        pieces.append(MeshPiece(int(lab), vertices[used], inv.reshape(-1, 3).astype(np.int32), used))
    return pieces


def split_indices(labels: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(label, element indices) per distinct label, sorted by label; indices ascending within a label."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return []
    order = np.argsort(labels, kind="stable")
    sorted_lab = labels[order]
    uniq, starts = np.unique(sorted_lab, return_index=True)
    ends = list(starts[1:]) + [len(order)]
    return [(int(lab), order[s:e]) for lab, s, e in zip(uniq, starts, ends)]
