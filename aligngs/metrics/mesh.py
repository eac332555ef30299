"""Surface metrics between point sets (usually sampled from meshes), the usual indoor-reconstruction definitions.

accuracy   = mean distance from each predicted point to the nearest ground-truth point;
completion = mean distance from each ground-truth point to the nearest predicted point;
precision  = fraction of predicted points with that distance < threshold; recall likewise for ground truth;
fscore     = 2 P R / (P + R) (0 when both are 0); chamfer = (accuracy + completion) / 2.
Distances are in the points' units (metres for our scenes; threshold 0.05 = 5 cm).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..data.types import TriMesh


def _points(p, what: str) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"{what} must be an [N,3] array, got shape {a.shape}")
    if len(a) == 0:
        raise ValueError(f"{what} is empty")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contains NaN or inf")
    return a


def mesh_metrics(pred_points, gt_points, threshold: float = 0.05) -> dict[str, float]:
    """accuracy, completion, precision, recall, fscore, chamfer (see the module doc)."""
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    pred = _points(pred_points, "pred_points")
    gt = _points(gt_points, "gt_points")
    d_pred, _ = cKDTree(gt).query(pred, k=1, workers=-1)  # pred -> gt
    d_gt, _ = cKDTree(pred).query(gt, k=1, workers=-1)  # gt -> pred
    acc, comp = float(d_pred.mean()), float(d_gt.mean())
    prec, rec = float((d_pred < threshold).mean()), float((d_gt < threshold).mean())
    f = 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)
    return {"accuracy": acc, "completion": comp, "precision": prec, "recall": rec, "fscore": f,
            "chamfer": 0.5 * (acc + comp)}


def _mesh_arrays(mesh) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(mesh, TriMesh):
        return np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64)
    if hasattr(mesh, "vertices") and hasattr(mesh, "triangles"):  # open3d.geometry.TriangleMesh (legacy)
        return np.asarray(mesh.vertices, np.float64), np.asarray(mesh.triangles, np.int64)
    if hasattr(mesh, "vertex") and hasattr(mesh, "triangle"):  # open3d.t.geometry.TriangleMesh
        return (mesh.vertex.positions.cpu().numpy().astype(np.float64),
                mesh.triangle.indices.cpu().numpy().astype(np.int64))
    raise TypeError(f"expected a TriMesh or an open3d TriangleMesh, got {type(mesh).__name__}")


def sample_mesh(mesh, n: int, seed: int = 0) -> np.ndarray:
    """``n`` points [n,3] float64 uniformly on the surface (triangles drawn by area), reproducible per ``seed``."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    v, f = _mesh_arrays(mesh)
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise ValueError(f"mesh has no triangles (faces shape {f.shape})")
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError(f"mesh faces index vertices out of range (0..{len(v) - 1})")
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    total = area.sum()
    if not total > 0:
        raise ValueError("mesh has zero surface area")
    rng = np.random.default_rng(seed)
    tri = rng.choice(len(f), size=n, p=area / total)
    r1 = np.sqrt(rng.random(n))[:, None]
    r2 = rng.random(n)[:, None]
    return (1 - r1) * a[tri] + r1 * (1 - r2) * b[tri] + r1 * r2 * c[tri]
