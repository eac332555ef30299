"""Initial point clouds for the Gaussians: given points (SfM / VGGT / COLMAP), sensor-depth back-projection, or
a random fill of the camera frusta when nothing else is known."""
from __future__ import annotations

import logging

import numpy as np

from ..data.types import Frame, Scene

log = logging.getLogger(__name__)


def backproject_frames(frames: list[Frame], stride: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """World points + colours from every frame's depth map (pixels with depth > 0), every ``stride``-th pixel."""
    pts, cols = [], []
    for f in frames:
        if f.depth is None or f.camera is None:
            continue
        cam = f.camera
        d = f.depth[::stride, ::stride]
        v, u = np.nonzero(d > 0)
        z = d[v, u].astype(np.float64)
        uu, vv = u * stride, v * stride
        x = (uu - cam.K[0, 2]) / cam.K[0, 0] * z
        y = (vv - cam.K[1, 2]) / cam.K[1, 1] * z
        pc = np.stack([x, y, z], 1)
        pts.append(pc @ cam.c2w[:3, :3].T + cam.c2w[:3, 3])
        cols.append(f.image[vv, uu] if f.image is not None else np.full((len(z), 3), 0.5))
    if not pts:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    return np.concatenate(pts).astype(np.float32), np.concatenate(cols).astype(np.float32)


def random_frustum_points(frames: list[Frame], n: int, depth_range: tuple[float, float], rng: np.random.Generator):
    """Uniform random points inside the training frusta between the given depths (3DGS's random init, per view)."""
    per = max(n // max(len(frames), 1), 1)
    pts = []
    for f in frames:
        cam = f.camera
        u = rng.uniform(0, cam.width, per)
        v = rng.uniform(0, cam.height, per)
        z = rng.uniform(*depth_range, per)
        pc = np.stack([(u - cam.K[0, 2]) / cam.K[0, 0] * z, (v - cam.K[1, 2]) / cam.K[1, 1] * z, z], 1)
        pts.append(pc @ cam.c2w[:3, :3].T + cam.c2w[:3, 3])
    p = np.concatenate(pts).astype(np.float32)
    return p, np.full_like(p, 0.5)


def initial_points(scene: Scene, train: list[Frame], max_points: int, seed: int, extent: float) -> tuple[np.ndarray, np.ndarray, str]:
    """Pick the best available initialisation. Returns (points [P,3], colours [P,3] 0..1, source name)."""
    rng = np.random.default_rng(seed)
    if scene.points is not None and len(scene.points) > 0:
        pts = np.asarray(scene.points, np.float32)
        cols = np.asarray(scene.point_colors, np.float32) if scene.point_colors is not None else np.full_like(pts, 0.5)
        source = scene.meta.get("points_source", scene.source)
    else:
        pts, cols = backproject_frames(train)
        source = "depth"
        if len(pts) == 0:
            log.warning("no initial points or depth: random frustum initialisation (quality will suffer)")
            pts, cols = random_frustum_points(train, max_points, (0.1 * extent, 2.0 * extent), rng)
            source = "random"
    if len(pts) > max_points:
        keep = rng.choice(len(pts), max_points, replace=False)
        pts, cols = pts[keep], cols[keep]
    return pts, cols, source
