"""Validation of poses and intrinsics read from files (every failure names the file)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError

ROTATION_TOL = 1e-3  # max |R^T R - I| entry accepted (then snapped to the nearest rotation)

# OpenGL / Blender camera axes (x right, y up, z backward) -> OpenCV (x right, y down, z forward).
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def check_pose(mat, path: str | Path | None, what: str = "pose") -> np.ndarray:
    """A rigid 4x4 camera-to-world matrix from a 4x4 or 3x4 array, or DataError.

    Rejects wrong shapes, NaN/inf, a last row other than [0,0,0,1], and rotations that are not orthonormal with
    determinant +1 (tolerance ``ROTATION_TOL``); small numerical drift is snapped to the nearest rotation (SVD).
    """
    try:
        m = np.asarray(mat, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(path, f"{what} is not a numeric matrix ({e})") from e
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4):
        raise DataError(path, f"{what} must be a 4x4 (or 3x4) matrix, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise DataError(path, f"{what} contains NaN or inf values")
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise DataError(path, f"{what} last row must be [0, 0, 0, 1], got {m[3].tolist()}")
    R = m[:3, :3]
    err = np.abs(R.T @ R - np.eye(3)).max()
    det = np.linalg.det(R)
    if err > ROTATION_TOL or det < 0:
        raise DataError(
            path,
            f"{what} rotation is not rigid (max |R^T R - I| = {err:.3g}, det = {det:.4g}; "
            "expected an orthonormal rotation with det +1, no scale or reflection)",
        )
    U, _, Vt = np.linalg.svd(R)
    m = m.copy()
    m[:3, :3] = U @ Vt
    return m


def check_intrinsics(K, path: str | Path | None, what: str = "intrinsics") -> np.ndarray:
    """A 3x3 pinhole K with positive finite focal lengths, or DataError."""
    try:
        K = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(path, f"{what} is not a numeric matrix ({e})") from e
    if K.shape != (3, 3):
        raise DataError(path, f"{what} must be a 3x3 matrix, got shape {K.shape}")
    if not np.isfinite(K).all():
        raise DataError(path, f"{what} contains NaN or inf values")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise DataError(path, f"{what} focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
    if not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0:
        raise DataError(path, f"{what} must be upper-triangular with last row [0, 0, 1], got {K.tolist()}")
    return K


def make_K(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)
