"""Pinhole intrinsics and a seeded handheld camera loop inside a room layout (numpy, no bpy).

Poses are camera-to-world 4x4 matrices in OpenGL/Blender camera axes (x right, y up, z back: the camera
looks along its -z), which is exactly Blender's ``camera.matrix_world``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tools.synth.specs import RoomLayout

__all__ = ["Intrinsics", "intrinsics", "look_c2w", "camera_loop", "CameraPathError"]


class CameraPathError(RuntimeError):
    """No collision-free camera loop fits the room."""


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in the nerfstudio/gsplat pixel convention (pixel (i, j) spans [i, i+1) x [j, j+1),
    its centre is at (i + 0.5, j + 0.5)), so a centred principal point is (w/2, h/2)."""

    fl_x: float
    fl_y: float
    cx: float
    cy: float
    w: int
    h: int
    sensor_width_mm: float = 36.0

    @property
    def lens_mm(self) -> float:
        """Blender ``camera.lens`` for ``sensor_fit='HORIZONTAL'``: fx = lens / sensor_width * w."""
        return self.fl_x / self.w * self.sensor_width_mm

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fl_x, 0.0, self.cx], [0.0, self.fl_y, self.cy], [0.0, 0.0, 1.0]])


def intrinsics(width: int, height: int, hfov_deg: float = 66.0) -> Intrinsics:
    if width <= 0 or height <= 0:
        raise ValueError(f"intrinsics: width/height must be positive, got {width}x{height}")
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    return Intrinsics(f, f, width / 2.0, height / 2.0, int(width), int(height))


def look_c2w(position, yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """OpenGL camera-to-world for a camera at ``position`` looking along heading ``yaw`` (radians from +x,
    counter-clockwise about +z) tilted by ``pitch`` (positive up) and rolled by ``roll`` about the view axis."""
    f = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)])
    right = np.cross(f, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    up = np.cross(right, f)
    c, s = math.cos(roll), math.sin(roll)
    right, up = c * right + s * up, -s * right + c * up
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, -f, np.asarray(position, dtype=np.float64)
    return m


def _clear(layout: RoomLayout, p: np.ndarray, margin_obj: float, margin_wall: float) -> bool:
    sx, sy, sz = layout.size
    if abs(p[0]) > sx / 2 - margin_wall or abs(p[1]) > sy / 2 - margin_wall:
        return False
    if not 0.5 < p[2] < sz - 0.4:
        return False
    for o in layout.objects:
        if o.stuff:
            continue
        lo, hi = o.mesh.bbox
        if hi[2] < 0.05:  # rugs: walk over them
            continue
        if (lo[0] - margin_obj < p[0] < hi[0] + margin_obj and lo[1] - margin_obj < p[1] < hi[1] + margin_obj
                and p[2] < hi[2] + margin_obj):
            return False
    return True


def camera_loop(layout: RoomLayout, n_views: int, rng: np.random.Generator,
                margin_obj: float = 0.35, margin_wall: float = 0.5) -> list[np.ndarray]:
    """``n_views`` OpenGL c2w poses along one smooth closed loop through the room's free middle.

    The camera walks an ellipse around the room centre with low-frequency wobble in position, height
    (about 1.3-1.7 m) and heading, looking across the room (towards the far walls and the furniture along
    them), pitched 6-16 degrees down with a little roll. Every position keeps ``margin_obj`` from furniture
    bounding boxes and ``margin_wall`` from walls; the ellipse shrinks until that holds.
    """
    if n_views < 1:
        raise ValueError(f"camera_loop: n_views must be >= 1, got {n_views}")
    sx, sy, _ = layout.size
    ph = rng.uniform(0, 2 * math.pi, 10)
    t0 = float(rng.uniform(0, 2 * math.pi))
    h0 = float(rng.uniform(1.4, 1.55))
    direction = 1.0 if rng.random() < 0.5 else -1.0
    a0, b0 = max(0.3, sx / 2 - 1.6), max(0.25, sy / 2 - 1.6)
    dense = 8 * max(n_views, 16)  # check clearance densely along the whole loop, not only at the views
    view_at = {int(round(i * dense / n_views)): i for i in range(n_views)}
    for shrink in np.linspace(1.0, 0.2, 17):
        a, b = a0 * shrink, b0 * shrink
        ok = True
        poses = []
        for k in range(dense):
            t = t0 + direction * 2 * math.pi * k / dense
            p = np.array([
                a * math.cos(t) + 0.12 * shrink * math.sin(2 * t + ph[0]),
                b * math.sin(t) + 0.10 * shrink * math.sin(3 * t + ph[1]),
                h0 + 0.12 * math.sin(2 * t + ph[2]) + 0.04 * math.sin(5 * t + ph[3]),
            ])
            if not _clear(layout, p, margin_obj, margin_wall):
                ok = False
                break
            if k in view_at:
                # look across the room: heading towards the opposite side of the loop, wobbling
                yaw = t + math.pi + 0.3 * math.sin(t + ph[4]) + 0.1 * math.sin(3 * t + ph[5])
                pitch = -math.radians(11.0 + 5.0 * math.sin(2 * t + ph[6]))
                roll = math.radians(2.5) * math.sin(3 * t + ph[7])
                poses.append(look_c2w(p, yaw, pitch, roll))
        if ok and len(poses) == n_views:
            return poses
    raise CameraPathError(f"camera_loop: no collision-free loop in room {layout.size} (seed {layout.seed})")
