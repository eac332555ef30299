"""Similarity (Sim3) alignment of point sets and trajectory errors for scoring estimated poses.

``umeyama(src, dst)`` finds ``s, R, t`` minimising ``sum |dst_i - (s R src_i + t)|^2`` (Umeyama 1991, closed form
from the SVD of the cross-covariance, reflection-corrected). Estimated poses live in their own frame and scale
(SfM / VGGT), so they are scored after aligning their camera centres to the reference ones:

- ATE: root-mean-square distance between aligned and reference camera centres, in the reference's units, and
  the same divided by the reference camera-path extent (``path_extent``: the diagonal of the centres' bounding box);
- rotation error: per camera, the angle of ``R_ref^T (R_align R_est)`` in degrees (camera-to-world rotations).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.types import Camera


@dataclass(frozen=True)
class Sim3:
    """x -> s R x + t."""

    s: float
    R: np.ndarray  # [3,3]
    t: np.ndarray  # [3]

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.s * np.asarray(x, np.float64) @ self.R.T + self.t

    def apply_c2w(self, c2w: np.ndarray) -> np.ndarray:
        """A camera-to-world pose moved into the target frame (rotation rotated, centre mapped, no scale on R)."""
        out = np.eye(4)
        out[:3, :3] = self.R @ c2w[:3, :3]
        out[:3, 3] = self.apply(c2w[:3, 3])
        return out


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> Sim3:
    """Least-squares similarity mapping ``src`` [N,3] onto ``dst`` [N,3] (N >= 3, not all collinear)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3:
        raise ValueError(f"umeyama: src and dst must both be [N,3], got {src.shape} and {dst.shape}")
    if len(src) < 3:
        raise ValueError(f"umeyama: needs at least 3 point pairs, got {len(src)}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = float((xs ** 2).sum() / len(src))
    if var_s <= 1e-18:
        raise ValueError("umeyama: source points are all identical")
    cov = xd.T @ xs / len(src)
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    s = float(np.trace(np.diag(D) @ S) / var_s) if with_scale else 1.0
    t = mu_d - s * R @ mu_s
    return Sim3(s, R, t)


def path_extent(centres: np.ndarray) -> float:
    """Size of a camera path: the diagonal of the centres' bounding box (> 0 for any non-degenerate path)."""
    c = np.asarray(centres, np.float64)
    return float(np.linalg.norm(c.max(0) - c.min(0)))


def rotation_angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> np.ndarray:
    """Angle of ``Ra^T Rb`` per pair ([...,3,3] each) in degrees."""
    M = np.swapaxes(Ra, -1, -2) @ Rb
    cos = (np.trace(M, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


@dataclass
class PoseErrors:
    sim3: Sim3
    ate: float  # RMSE of aligned camera centres, reference units
    ate_rel: float  # ate / path_extent(reference centres)
    rot_err_deg: float  # mean rotation error
    rot_err_deg_median: float
    n: int


def pose_errors(est: dict[str, Camera], ref: dict[str, Camera]) -> PoseErrors:
    """Score estimated cameras against reference ones over their common names, after a Sim3 of the centres."""
    names = [n for n in est if n in ref]
    if len(names) < 3:
        raise ValueError(f"pose_errors: need at least 3 cameras in common, got {len(names)}")
    ce = np.array([est[n].center for n in names])
    cr = np.array([ref[n].center for n in names])
    sim = umeyama(ce, cr)
    aligned = sim.apply(ce)
    ate = float(np.sqrt(np.mean(np.sum((aligned - cr) ** 2, 1))))
    Re = np.array([sim.R @ est[n].c2w[:3, :3] for n in names])
    Rr = np.array([ref[n].c2w[:3, :3] for n in names])
    rot = rotation_angle_deg(Rr, Re)
    ext = path_extent(cr)
    return PoseErrors(sim, ate, ate / ext if ext > 0 else float("nan"), float(rot.mean()), float(np.median(rot)),
                      len(names))
