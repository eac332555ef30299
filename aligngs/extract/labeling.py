"""Class labels for what the Blender user sees: Gaussians, mesh vertices and semantic point clouds.

Two ways to label 3-D points (docs/method.md §6; the reference attaches no labels itself):

- :func:`label_vertices_by_views` (the pipeline's DEFAULT for mesh vertices): majority vote of the rendered
  label maps over the training views that see the vertex (projected inside the image and passing a depth
  test against the rendered depth, so occluded views do not vote).
- :func:`label_points_by_gaussians`: confidence-weighted vote of the k nearest Gaussians' classes; needs no
  rendering, used for points without views (or as a fallback for vertices no view sees).

Class ids are ADE20K-150 ids 0..149 (:mod:`aligngs.priors.ade20k`), -1 = unknown / unseen.
Inputs may be numpy arrays or torch tensors; outputs are numpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree

from aligngs.data.types import Camera
from aligngs.priors.ade20k import colorize

__all__ = [
    "SemanticPoints",
    "as_semantic_points",
    "gaussian_classes",
    "label_vertices_by_views",
    "label_points_by_gaussians",
    "fill_unseen_by_gaussians",
    "semantic_point_cloud",
    "to_uint8_colors",
]


def _np(x, name: str, dtype=None) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: cannot convert to an array ({e})") from None


@dataclass
class SemanticPoints:
    """A labelled point cloud (numpy; what the "points" result part and the semantic PLY carry)."""

    positions: np.ndarray  # f32 [N,3]
    colors: np.ndarray  # u8 [N,3] RGB
    class_id: np.ndarray  # i32 [N], -1 = unknown
    confidence: np.ndarray  # f32 [N] in [0,1]

    def __post_init__(self) -> None:
        self.positions = np.ascontiguousarray(self.positions, dtype=np.float32)
        self.colors = np.ascontiguousarray(self.colors, dtype=np.uint8)
        self.class_id = np.ascontiguousarray(self.class_id, dtype=np.int32)
        self.confidence = np.ascontiguousarray(self.confidence, dtype=np.float32)
        n = self.positions.shape[0]
        if self.positions.shape != (n, 3) or self.colors.shape != (n, 3):
            raise ValueError(f"SemanticPoints: positions/colors must be [N,3], got {self.positions.shape} / {self.colors.shape}")
        if self.class_id.shape != (n,) or self.confidence.shape != (n,):
            raise ValueError(f"SemanticPoints: class_id/confidence must be [N]={n}, got {self.class_id.shape} / {self.confidence.shape}")

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    @property
    def class_colors(self) -> np.ndarray:
        """u8 [N,3] ADE20K palette colour of each point's class (black for -1)."""
        return colorize(self.class_id)

    def subset(self, mask_or_index) -> "SemanticPoints":
        return SemanticPoints(self.positions[mask_or_index], self.colors[mask_or_index],
                              self.class_id[mask_or_index], self.confidence[mask_or_index])


def as_semantic_points(points) -> SemanticPoints:
    """A :class:`SemanticPoints` from itself or a mapping with ``positions`` [N,3], ``colors`` [N,3] (u8 or
    float 0..1) and optional ``class_id`` [N] (default -1) and ``confidence`` [N] (default 0)."""
    if isinstance(points, SemanticPoints):
        return points
    if not hasattr(points, "keys") or "positions" not in points or "colors" not in points:
        raise ValueError("points: expected SemanticPoints or a mapping with 'positions' and 'colors' "
                         f"(+ optional 'class_id', 'confidence'), got {type(points).__name__}")
    pos = _np(points["positions"], "points['positions']", np.float32)
    n = pos.shape[0] if pos.ndim == 2 else -1
    cid = points.get("class_id")
    conf = points.get("confidence")
    return SemanticPoints(
        pos,
        to_uint8_colors(points["colors"]),
        np.full(n, -1, np.int32) if cid is None else _np(cid, "points['class_id']"),
        np.zeros(n, np.float32) if conf is None else _np(conf, "points['confidence']", np.float32),
    )


def to_uint8_colors(colors) -> np.ndarray:
    """[N,3] colours as uint8: uint8 passes through, floats are taken as 0..1 (clipped, rounded)."""
    c = _np(colors, "colors")
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"colors: expected [N,3], got {c.shape}")
    if c.dtype == np.uint8:
        return c
    if not np.issubdtype(c.dtype, np.floating):
        raise ValueError(f"colors: expected uint8 0..255 or float 0..1, got dtype {c.dtype}")
    return np.round(np.clip(c, 0.0, 1.0) * 255.0).astype(np.uint8)


def gaussian_classes(sem_logits, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Per-Gaussian class from its semantic logits [N,C]: (argmax int32 [N], softmax max float32 [N])."""
    t = sem_logits if isinstance(sem_logits, torch.Tensor) else torch.as_tensor(_np(sem_logits, "sem_logits"))
    if t.dim() != 2 or t.shape[1] < 1:
        raise ValueError(f"gaussian_classes: sem_logits must be [N,C], got {list(t.shape)}")
    ids, confs = [], []
    with torch.no_grad():
        for s in range(0, t.shape[0], chunk):
            p = torch.softmax(t[s:s + chunk].float(), dim=1)
            c, i = p.max(dim=1)
            ids.append(i.to(torch.int32).cpu())
            confs.append(c.cpu())
    if not ids:
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    return torch.cat(ids).numpy(), torch.cat(confs).numpy().astype(np.float32)


def _project(points: np.ndarray, cam: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel indices (col, row) by rounding (pixel centres at integers) and camera z of world points."""
    w2c = cam.w2c
    P = cam.K @ w2c[:3, :3]  # [3,3]: homogeneous pixel coordinates = P x + K t
    h = np.einsum("nk,jk->nj", points, P) + cam.K @ w2c[:3, 3]
    z = np.einsum("nk,k->n", points, w2c[2, :3]) + w2c[2, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        col = np.floor(h[:, 0] / h[:, 2] + 0.5)
        row = np.floor(h[:, 1] / h[:, 2] + 0.5)
    return col, row, z


def label_vertices_by_views(
    vertices,
    cameras: Sequence[Camera],
    label_maps: Sequence,
    depth_maps: Sequence,
    conf_maps: Sequence | None = None,
    depth_tol: float = 0.05,
    *,
    num_classes: int = 150,
    chunk: int = 65536,
) -> tuple[np.ndarray, np.ndarray]:
    """Label vertices [V,3] by voting over the views that see them.

    For each view i (``cameras[i]``, ``label_maps[i]`` int [H,W] with -1 = no label, ``depth_maps[i]`` float
    [H,W] rendered z-depth with 0 = nothing rendered, ``conf_maps[i]`` optional float [H,W] vote weights,
    all at the camera's width x height) a vertex votes when it projects in front of the camera and inside
    the image (nearest pixel), the rendered depth there is > 0 and ``|z_vertex - depth| <= depth_tol``
    (scene units; about 2-3 TSDF voxels is a good value) and the pixel is labelled. Each vote has weight 1
    (or the pixel's confidence). Returns ``class_id`` int32 [V] (argmax of the summed votes, ties -> lowest
    id; -1 = seen by no view) and ``confidence`` float32 [V] = the winner's share of the vertex's votes
    (0 for unseen vertices).
    """
    X = _np(vertices, "vertices", np.float64)
    if X.ndim != 2 or X.shape[1] != 3:
        raise ValueError(f"label_vertices_by_views: vertices must be [V,3], got {X.shape}")
    n_views = len(cameras)
    if len(label_maps) != n_views or len(depth_maps) != n_views or (conf_maps is not None and len(conf_maps) != n_views):
        raise ValueError(f"label_vertices_by_views: need one label/depth(/conf) map per camera ({n_views}), got "
                         f"{len(label_maps)}/{len(depth_maps)}/{None if conf_maps is None else len(conf_maps)}")
    if not depth_tol > 0:
        raise ValueError(f"label_vertices_by_views: depth_tol must be > 0, got {depth_tol}")
    views = []
    for i, cam in enumerate(cameras):
        hw = (cam.height, cam.width)
        lab = _np(label_maps[i], f"label_maps[{i}]")
        dep = _np(depth_maps[i], f"depth_maps[{i}]", np.float64)
        if lab.shape != hw or dep.shape != hw:
            raise ValueError(f"label_vertices_by_views: view {i}: label/depth maps must be [H,W]={list(hw)} "
                             f"(the camera's size), got {lab.shape} / {dep.shape}")
        if not np.issubdtype(lab.dtype, np.integer):
            raise ValueError(f"label_vertices_by_views: label_maps[{i}] must be integer, got {lab.dtype}")
        if lab.size and (lab.min() < -1 or lab.max() >= num_classes):
            raise ValueError(f"label_vertices_by_views: label_maps[{i}] values must lie in -1..{num_classes - 1}")
        conf = None
        if conf_maps is not None:
            conf = _np(conf_maps[i], f"conf_maps[{i}]", np.float64)
            if conf.shape != hw:
                raise ValueError(f"label_vertices_by_views: conf_maps[{i}] must be [H,W]={list(hw)}, got {conf.shape}")
        views.append((cam, lab.astype(np.int64), dep, conf))

    V = X.shape[0]
    class_id = np.full(V, -1, np.int32)
    confidence = np.zeros(V, np.float32)
    for s in range(0, V, chunk):
        Xc = X[s:s + chunk]
        n = Xc.shape[0]
        keys, weights = [], []
        for cam, lab, dep, conf in views:
            col, row, z = _project(Xc, cam)
            ok = (z > 0) & np.isfinite(col) & np.isfinite(row)
            ok &= (col >= 0) & (col < cam.width) & (row >= 0) & (row < cam.height)
            idx = np.nonzero(ok)[0]
            r, c = row[idx].astype(np.int64), col[idx].astype(np.int64)
            d = dep[r, c]
            lb = lab[r, c]
            hit = (d > 0) & (np.abs(z[idx] - d) <= depth_tol) & (lb >= 0)
            idx, lb = idx[hit], lb[hit]
            keys.append(idx * num_classes + lb)
            weights.append(np.ones(idx.shape[0]) if conf is None else conf[r[hit], c[hit]])
        if not keys:
            continue
        votes = np.bincount(np.concatenate(keys), weights=np.concatenate(weights),
                            minlength=n * num_classes).reshape(n, num_classes)
        total = votes.sum(axis=1)
        best = votes.argmax(axis=1)
        seen = total > 0
        class_id[s:s + n][seen] = best[seen]
        confidence[s:s + n][seen] = (votes[np.arange(n), best][seen] / total[seen]).astype(np.float32)
    return class_id, confidence


def label_points_by_gaussians(
    points,
    g_means,
    g_class,
    g_conf=None,
    k: int = 8,
    max_dist: float | None = None,
    chunk: int = 131072,
) -> tuple[np.ndarray, np.ndarray]:
    """Label points [P,3] from the k nearest Gaussians (centres ``g_means`` [N,3], classes ``g_class`` [N]).

    Each neighbour votes for its class with weight ``g_conf`` (default 1); Gaussians with class -1 and
    neighbours farther than ``max_dist`` do not vote. Returns the class with the largest summed weight (ties
    -> the one whose nearest voter is closest) and its share of the votes; (-1, 0) where nobody votes.
    """
    P = _np(points, "points", np.float64)
    M = _np(g_means, "g_means", np.float64)
    gc = _np(g_class, "g_class").astype(np.int64)
    if P.ndim != 2 or P.shape[1] != 3 or M.ndim != 2 or M.shape[1] != 3:
        raise ValueError(f"label_points_by_gaussians: points and g_means must be [.,3], got {P.shape} / {M.shape}")
    if gc.shape != (M.shape[0],):
        raise ValueError(f"label_points_by_gaussians: g_class must be [N]={M.shape[0]}, got {gc.shape}")
    w_g = np.ones(M.shape[0]) if g_conf is None else _np(g_conf, "g_conf", np.float64)
    if w_g.shape != (M.shape[0],):
        raise ValueError(f"label_points_by_gaussians: g_conf must be [N]={M.shape[0]}, got {w_g.shape}")
    if k < 1:
        raise ValueError(f"label_points_by_gaussians: k must be >= 1, got {k}")
    n_pts = P.shape[0]
    out_c = np.full(n_pts, -1, np.int32)
    out_w = np.zeros(n_pts, np.float32)
    if M.shape[0] == 0 or n_pts == 0:
        return out_c, out_w
    k = min(k, M.shape[0])
    tree = cKDTree(M)
    cls_ext = np.append(gc, -1)
    w_ext = np.append(np.where(gc >= 0, w_g, 0.0), 0.0)
    for s in range(0, n_pts, chunk):
        dist, idx = tree.query(P[s:s + chunk], k=k, distance_upper_bound=np.inf if max_dist is None else max_dist)
        idx = idx.reshape(idx.shape[0], k)  # missing neighbours come back as index N
        cls, w = cls_ext[idx], w_ext[idx]
        # score[p, j] = summed weight of the neighbours sharing neighbour j's class
        score = ((cls[:, :, None] == cls[:, None, :]) * w[:, None, :]).sum(-1)
        score = np.where(w > 0, score, -1.0)
        j = score.argmax(axis=1)
        rows = np.arange(idx.shape[0])
        total = w.sum(axis=1)
        ok = total > 0
        out_c[s:s + chunk][ok] = cls[rows, j][ok]
        out_w[s:s + chunk][ok] = (score[rows, j][ok] / total[ok]).astype(np.float32)
    return out_c, out_w


def fill_unseen_by_gaussians(
    vertices,
    class_id,
    confidence,
    g_means,
    g_class,
    g_conf=None,
    k: int = 8,
    max_dist: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Give the vertices that no view labelled (``class_id == -1``) the class of their nearest Gaussians
    (:func:`label_points_by_gaussians`); labelled vertices are unchanged. Returns new (class_id, confidence)."""
    cid = _np(class_id, "class_id").astype(np.int32).copy()
    conf = _np(confidence, "confidence", np.float32).copy()
    X = _np(vertices, "vertices", np.float64)
    if cid.shape != (X.shape[0],) or conf.shape != cid.shape:
        raise ValueError(f"fill_unseen_by_gaussians: class_id/confidence must be [V]={X.shape[0]}, got {cid.shape} / {conf.shape}")
    todo = np.nonzero(cid < 0)[0]
    if todo.size:
        c, w = label_points_by_gaussians(X[todo], g_means, g_class, g_conf, k=k, max_dist=max_dist)
        cid[todo], conf[todo] = c, w
    return cid, conf


def semantic_point_cloud(
    positions,
    colors,
    *,
    sem_logits=None,
    class_id=None,
    confidence=None,
    opacities=None,
    min_opacity: float = 0.0,
    min_confidence: float = 0.0,
) -> SemanticPoints:
    """Build a :class:`SemanticPoints` from per-point positions [N,3] and colours [N,3] (u8, or float 0..1).

    Classes come from ``sem_logits`` [N,C] (via :func:`gaussian_classes`) or from ``class_id`` [N] (+ optional
    ``confidence`` [N], default 1). ``opacities`` [N] + ``min_opacity`` drop near-transparent Gaussians;
    points below ``min_confidence`` keep their place but get class -1. The palette colour of each point's
    class is ``result.class_colors``.
    """
    pos = _np(positions, "positions", np.float32)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"semantic_point_cloud: positions must be [N,3], got {pos.shape}")
    n = pos.shape[0]
    rgb = to_uint8_colors(colors)
    if rgb.shape[0] != n:
        raise ValueError(f"semantic_point_cloud: colors must be [N,3] with N={n}, got {rgb.shape}")
    if (sem_logits is None) == (class_id is None):
        raise ValueError("semantic_point_cloud: give exactly one of sem_logits or class_id")
    if sem_logits is not None:
        cid, conf = gaussian_classes(sem_logits)
    else:
        cid = _np(class_id, "class_id").astype(np.int32)
        conf = np.ones(n, np.float32) if confidence is None else _np(confidence, "confidence", np.float32)
    if cid.shape != (n,) or conf.shape != (n,):
        raise ValueError(f"semantic_point_cloud: classes/confidence must be [N]={n}, got {cid.shape} / {conf.shape}")
    cid = np.where(conf >= min_confidence, cid, -1).astype(np.int32)
    keep = np.ones(n, bool)
    if opacities is not None:
        op = _np(opacities, "opacities", np.float32).reshape(-1)
        if op.shape != (n,):
            raise ValueError(f"semantic_point_cloud: opacities must be [N]={n}, got {op.shape}")
        keep &= op >= min_opacity
    return SemanticPoints(pos[keep], rgb[keep], cid[keep], conf[keep])
