"""The scene's extent: the radius the learning rates, the TSDF defaults and the pipeline's checks scale with."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from aligngs.data.types import Camera

EXTENT_MARGIN = 1.1  # as 3DGS's nerf_normalization
EXTENT_PERCENTILE = 99.0  # robust radius of the points (ignores the 1 % farthest: outliers, floaters)


def scene_extent(cameras: Sequence[Camera], points: np.ndarray | None = None) -> float:
    """Radius of the scene around the mean camera centre, 3DGS-style.

    ``1.1 * max(max_i |c_i - c_mean|, P99_j |p_j - c_mean|)``: the camera part is exactly 3DGS's
    ``getNerfppNorm`` radius; the points (optional, [P,3], e.g. SfM points or back-projected depth) extend it
    to what the cameras look at, using the 99th percentile distance so a few outliers do not inflate it.
    Raises ``ValueError`` when the result is zero (one camera or coincident cameras, and no points).
    """
    if len(cameras) == 0:
        raise ValueError("scene_extent: no cameras given")
    centers = np.stack([np.asarray(c.center, dtype=np.float64) for c in cameras])
    mean = centers.mean(axis=0)
    radius = float(np.linalg.norm(centers - mean, axis=1).max())
    if points is not None:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"scene_extent: points must be [P,3], got shape {pts.shape}")
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts):
            radius = max(radius, float(np.percentile(np.linalg.norm(pts - mean, axis=1), EXTENT_PERCENTILE)))
    extent = EXTENT_MARGIN * radius
    if not np.isfinite(extent) or extent <= 0.0:
        raise ValueError(
            f"scene_extent: zero extent from {len(cameras)} camera(s) (coincident centres) and no usable points; "
            "pass points or an explicit extent"
        )
    return extent
