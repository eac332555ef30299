"""SPARS3R-style dense initialisation: align per-view dense depth to sparse SfM points.

SfM gives accurate but sparse points; a dense depth map per view (a monocular depth prior, VGGT depth or a sensor)
is dense but in its own per-view scale and offset. Following SPARS3R (CVPR 2025):

1. **Global fusion alignment** per view: the sparse points the view observes are projected with its camera; at
   each projection the dense depth ``d`` is paired with the point's camera depth ``z``. A scale/shift
   ``z ~ s d + b`` is fitted with RANSAC (minimal samples of 2 pairs, inlier if ``|s d + b - z| < inlier_rel z``,
   least-squares refit on the inliers); pairs off the fit are the view's outliers.
2. **Semantic outlier alignment**: when the view has labels, every semantically coherent region (a connected
   component of one label) that holds outliers gets its own scale/shift fitted on its pairs; it replaces the global
   one inside that region when it explains more of the region's pairs. A region whose pairs are mostly outliers and
   that has too few pairs for its own fit is left out of the dense cloud (its depth is known to be off).
3. The aligned depth maps are unprojected with the cameras into one metrically consistent (SfM-frame) cloud;
   a point is kept when one of its nearest other views (by camera centre) agrees with it (its aligned depth there
   within ``consistency_rel``) or when none of them sees it -- a per-view error (a region with no sparse support
   whose depth is off) rarely agrees with another view.

Which sparse points a view observes: the SfM result's per-image tracks (pycolmap ``Image.points2D`` with a
``point3D_id``; see ``PoseResult.observations``) when present, else every point that projects inside the image in
front of the camera (occluded ones then fall out as RANSAC outliers). Pixel positions always come from projecting
the 3D point with the frame's own camera, so they match the depth map's resolution and pixel convention.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..data.types import Camera, Frame

log = logging.getLogger(__name__)


@dataclass
class DenseAlignConfig:
    inlier_rel: float = 0.02  # inlier if |s d + b - z| < inlier_rel * z
    ransac_iters: int = 256
    min_pairs: int = 8  # a view needs this many sparse-dense pairs to be aligned at all
    min_inlier_ratio: float = 0.3  # a view whose best global fit explains fewer pairs is skipped
    semantic: bool = True  # step 2 (needs labels)
    segment_min_pairs: int = 5  # pairs a region needs for its own fit (a shift at the view's scale)
    segment_margin: int = 2  # the region's fit must explain this many more of its pairs than the global fit
    segment_min_pixels: int = 30  # smaller regions are not treated as regions
    drop_bad_segments: bool = True  # leave out mostly-outlier regions that cannot be re-aligned
    edge_rel: float = 0.05  # pairs where the dense depth jumps by more than this (3x3) are not used
    consistency_views: int = 3  # check each dense point in this many nearest other views (0 = no check)
    consistency_rel: float = 0.03  # ... and keep it if one of them agrees within this relative depth difference
    stride: int = 2  # unproject every stride-th pixel
    max_points: int = 200_000
    seed: int = 0


@dataclass
class ScaleShift:
    scale: float
    shift: float
    inliers: np.ndarray  # bool [N]

    @property
    def n_inliers(self) -> int:
        return int(self.inliers.sum())

    def residual(self, d: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.abs(self.scale * d + self.shift - z)


def _lstsq(d: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    A = np.stack([d, np.ones_like(d)], 1)
    (s, b), *_ = np.linalg.lstsq(A, z, rcond=None)
    return float(s), float(b)


def ransac_scale_shift(d: np.ndarray, z: np.ndarray, inlier_rel: float = 0.05, iters: int = 256,
                       rng: np.random.Generator | None = None) -> ScaleShift | None:
    """Robust fit of ``z ~ s d + b`` (``s > 0``) over pairs ``d`` (dense) and ``z`` (sparse, > 0); None if no
    positive-scale fit exists (fewer than 2 pairs with distinct ``d``)."""
    d = np.asarray(d, np.float64).ravel()
    z = np.asarray(z, np.float64).ravel()
    if d.shape != z.shape:
        raise ValueError(f"ransac_scale_shift: d and z differ in length ({len(d)} vs {len(z)})")
    n = len(d)
    if n < 2:
        return None
    rng = rng or np.random.default_rng(0)
    tol = inlier_rel * np.abs(z)
    best, best_count = None, -1
    pairs = rng.integers(0, n, size=(iters, 2))
    if n <= 24:  # small sets: every pair once (exhaustive beats random here)
        i, j = np.triu_indices(n, 1)
        pairs = np.stack([i, j], 1)
    for i, j in pairs:
        dd = d[i] - d[j]
        if abs(dd) < 1e-12:
            continue
        s = (z[i] - z[j]) / dd
        if s <= 0:
            continue
        b = z[i] - s * d[i]
        count = int((np.abs(s * d + b - z) < tol).sum())
        if count > best_count:
            best, best_count = (s, b), count
    if best is None:
        return None
    s, b = best
    inl = np.abs(s * d + b - z) < tol
    for _ in range(3):  # refit on the inliers until the set settles
        if inl.sum() < 2 or np.ptp(d[inl]) < 1e-12:
            break
        s2, b2 = _lstsq(d[inl], z[inl])
        if s2 <= 0:
            break
        new = np.abs(s2 * d + b2 - z) < tol
        if new.sum() < inl.sum():
            break
        s, b = s2, b2
        if np.array_equal(new, inl):
            break
        inl = new
    return ScaleShift(float(s), float(b), np.abs(s * d + b - z) < tol)


def local_shift(d: np.ndarray, z: np.ndarray, scale: float, tol: np.ndarray) -> float | None:
    """The shift ``b`` (at a fixed ``scale``) that most pairs agree on: every pair proposes ``z - scale d``; the
    proposal with the most pairs within ``tol`` wins, refined as the median of those pairs' proposals."""
    if len(d) == 0:
        return None
    prop = z - scale * d
    counts = (np.abs(prop[None, :] - prop[:, None]) < tol[None, :]).sum(1)
    best = prop[int(np.argmax(counts))]
    agree = np.abs(prop - best) < tol
    return float(np.median(prop[agree]))


def project(camera: Camera, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates [N,2] (pixel centres at integers) and camera depth [N] of world points."""
    w2c = camera.w2c
    pc = np.asarray(points, np.float64) @ w2c[:3, :3].T + w2c[:3, 3]
    z = pc[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = camera.K[0, 0] * pc[:, 0] / z + camera.K[0, 2]
        v = camera.K[1, 1] * pc[:, 1] / z + camera.K[1, 2]
    return np.stack([u, v], 1), z


def smooth_mask(depth: np.ndarray, rel: float) -> np.ndarray:
    """True where the 3x3 neighbourhood of the (3x3 median-filtered, so pixel noise does not count) depth stays
    within ``rel`` of the pixel's: not on a depth edge."""
    from scipy import ndimage

    d = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float64)
    d = np.where(d > 0, ndimage.median_filter(d, 3, mode="nearest"), 0.0)
    hi = ndimage.maximum_filter(d, 3, mode="nearest")
    lo = ndimage.minimum_filter(np.where(d > 0, d, np.inf), 3, mode="nearest")
    return (d > 0) & (hi - lo <= rel * d)


def view_pairs(camera: Camera, depth: np.ndarray, points: np.ndarray, visible: np.ndarray | None = None,
               edge_rel: float | None = None):
    """(pixel rows, pixel cols, dense depth, sparse camera depth) for the sparse points a view sees.

    ``visible``: indices into ``points`` observed in this view (None = all that project inside the image).
    ``edge_rel``: drop pairs on dense-depth edges (``smooth_mask``), where a one-pixel offset changes the depth."""
    idx = np.arange(len(points)) if visible is None else np.asarray(visible, np.int64)
    uv, z = project(camera, points[idx])
    H, W = depth.shape
    with np.errstate(invalid="ignore"):
        ui, vi = np.rint(uv[:, 0]), np.rint(uv[:, 1])
        ok = (z > 1e-9) & (ui >= 0) & (ui < W) & (vi >= 0) & (vi < H)
    ui, vi, z = ui[ok].astype(np.int64), vi[ok].astype(np.int64), z[ok]
    d = depth[vi, ui].astype(np.float64)
    good = np.isfinite(d) & (d > 0)
    if edge_rel is not None:
        good &= smooth_mask(depth, edge_rel)[vi, ui]
    return vi[good], ui[good], d[good], z[good]


def segments(labels: np.ndarray, min_pixels: int) -> np.ndarray:
    """Connected regions of equal label (labels >= 0) as int32 ids [H,W]; -1 outside any region of min_pixels."""
    from scipy import ndimage

    seg = np.full(labels.shape, -1, np.int32)
    next_id = 0
    for cls in np.unique(labels):
        if cls < 0:
            continue
        comp, n = ndimage.label(labels == cls)
        if n == 0:
            continue
        sizes = np.bincount(comp.ravel(), minlength=n + 1)
        for k in np.nonzero(sizes[1:] >= min_pixels)[0] + 1:
            seg[comp == k] = next_id
            next_id += 1
    return seg


@dataclass
class ViewAlignment:
    name: str
    depth: np.ndarray | None  # aligned depth [H,W] (SfM units), 0 where left out; None if the view was skipped
    scale: float = float("nan")
    shift: float = float("nan")
    pairs: int = 0
    inliers: int = 0
    outliers_before: int = 0  # global-fit outliers
    outliers_after: int = 0  # after the semantic re-alignment
    segments_realigned: int = 0
    segments_dropped: int = 0
    skipped: str | None = None

    def summary(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "depth"}


def align_view(name: str, camera: Camera, depth: np.ndarray, points: np.ndarray, visible: np.ndarray | None,
               labels: np.ndarray | None, cfg: DenseAlignConfig, rng: np.random.Generator) -> ViewAlignment:
    """Global RANSAC scale/shift, then per-region re-alignment around the outliers (see the module doc)."""
    rows, cols, d, z = view_pairs(camera, depth, points, visible, cfg.edge_rel)
    out = ViewAlignment(name, None, pairs=len(d))
    if len(d) < cfg.min_pairs:
        out.skipped = f"{len(d)} sparse points seen (< {cfg.min_pairs})"
        return out
    fit = ransac_scale_shift(d, z, cfg.inlier_rel, cfg.ransac_iters, rng)
    if fit is None or fit.n_inliers < cfg.min_inlier_ratio * len(d):
        out.skipped = f"no consistent scale/shift ({0 if fit is None else fit.n_inliers} of {len(d)} pairs agree)"
        return out
    out.scale, out.shift, out.inliers = fit.scale, fit.shift, fit.n_inliers
    out.outliers_before = len(d) - fit.n_inliers
    valid = np.isfinite(depth) & (depth > 0)
    aligned = np.where(valid, fit.scale * depth + fit.shift, 0.0)
    explained = fit.inliers.copy()
    if cfg.semantic and labels is not None and out.outliers_before:
        seg = segments(labels, cfg.segment_min_pixels)
        pair_seg = seg[rows, cols]
        tol = cfg.inlier_rel * z
        for sid in np.unique(pair_seg[~fit.inliers]):
            if sid < 0:
                continue
            m = np.nonzero(pair_seg == sid)[0]
            global_ok = int(fit.inliers[m].sum())
            region = (seg == sid) & valid
            b = local_shift(d[m], z[m], fit.scale, tol[m]) if len(m) >= cfg.segment_min_pairs else None
            if b is not None:
                local_inl = np.abs(fit.scale * d[m] + b - z[m]) < tol[m]
                if local_inl.sum() >= global_ok + cfg.segment_margin and local_inl.sum() >= 0.5 * len(m):
                    aligned[region] = fit.scale * depth[region] + b
                    explained[m] = local_inl
                    out.segments_realigned += 1
                    continue
            if cfg.drop_bad_segments and len(m) >= 3 and global_ok < 0.5 * len(m):
                aligned[region] = 0.0
                out.segments_dropped += 1
    out.outliers_after = int(len(d) - explained.sum())
    aligned[aligned <= 0] = 0.0
    out.depth = aligned.astype(np.float32)
    return out


def unproject(camera: Camera, depth: np.ndarray, image: np.ndarray | None, stride: int):
    d = depth[::stride, ::stride]
    v, u = np.nonzero(d > 0)
    zz = d[v, u].astype(np.float64)
    uu, vv = u * stride, v * stride
    pc = np.stack([(uu - camera.K[0, 2]) / camera.K[0, 0] * zz, (vv - camera.K[1, 2]) / camera.K[1, 1] * zz, zz], 1)
    pts = pc @ camera.c2w[:3, :3].T + camera.c2w[:3, 3]
    cols = image[vv, uu] if image is not None else np.full((len(zz), 3), 0.5)
    return pts, cols


def consistent(points: np.ndarray, others: list[tuple[Camera, np.ndarray]], rel: float) -> np.ndarray:
    """Per point: True if some other view's depth map agrees with it within ``rel`` (relative), or if no other view
    has a valid depth where it projects (nothing to check against)."""
    agree = np.zeros(len(points), bool)
    checked = np.zeros(len(points), bool)
    for cam, dep in others:
        uv, z = project(cam, points)
        H, W = dep.shape
        with np.errstate(invalid="ignore"):
            u, v = np.rint(uv[:, 0]), np.rint(uv[:, 1])
            inside = (z > 1e-9) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
        k = np.nonzero(inside)[0]
        dk = dep[v[k].astype(np.int64), u[k].astype(np.int64)]
        has = dk > 0
        checked[k[has]] = True
        agree[k[has]] |= np.abs(dk[has] - z[k[has]]) < rel * z[k[has]]
    return agree | ~checked


@dataclass
class DenseAlignResult:
    points: np.ndarray  # [P,3] float32, the sparse points' frame and units
    colors: np.ndarray  # [P,3] float32 0..1
    views: list[ViewAlignment] = field(default_factory=list)
    inconsistent_dropped: int = 0

    def report(self) -> dict:
        aligned = [v for v in self.views if v.depth is not None]
        return {
            "views_aligned": len(aligned), "views_skipped": {v.name: v.skipped for v in self.views if v.skipped},
            "points": int(len(self.points)),
            "pairs": int(sum(v.pairs for v in aligned)), "inliers": int(sum(v.inliers for v in aligned)),
            "outliers_before": int(sum(v.outliers_before for v in aligned)),
            "outliers_after": int(sum(v.outliers_after for v in aligned)),
            "segments_realigned": int(sum(v.segments_realigned for v in aligned)),
            "segments_dropped": int(sum(v.segments_dropped for v in aligned)),
            "inconsistent_dropped": int(self.inconsistent_dropped),
        }


def align_dense(frames: list[Frame], depths: list[np.ndarray | None], points: np.ndarray,
                observations: dict[str, np.ndarray] | None = None, cfg: DenseAlignConfig | None = None,
                labels: list[np.ndarray | None] | None = None) -> DenseAlignResult:
    """Align each frame's dense ``depths[i]`` (any per-view scale/shift) to the sparse ``points`` and fuse.

    ``observations``: frame name -> indices of the points that frame observes (SfM tracks); a frame missing from it
    (or ``None``) uses every point projecting into it. ``labels`` default to the frames' own labels."""
    cfg = cfg or DenseAlignConfig()
    rng = np.random.default_rng(cfg.seed)
    points = np.asarray(points, np.float64).reshape(-1, 3)
    if len(depths) != len(frames):
        raise ValueError(f"align_dense: {len(frames)} frames but {len(depths)} depth maps")
    labels = labels if labels is not None else [f.labels for f in frames]
    views: list[ViewAlignment] = []
    for f, dep, lab in zip(frames, depths, labels):
        if f.camera is None or dep is None:
            views.append(ViewAlignment(f.name, None, skipped="no camera" if f.camera is None else "no dense depth"))
            continue
        if dep.shape != (f.camera.height, f.camera.width):
            raise ValueError(f"align_dense: depth of {f.name!r} is {dep.shape}, camera is "
                             f"{f.camera.height}x{f.camera.width}")
        vis = observations.get(f.name) if observations is not None else None
        va = align_view(f.name, f.camera, dep, points, vis, lab if cfg.semantic else None, cfg, rng)
        views.append(va)
        if va.depth is None:
            log.info("dense alignment skipped %s: %s", f.name, va.skipped)
    done = [(f, v) for f, v in zip(frames, views) if v.depth is not None]
    centres = np.array([f.camera.center for f, _ in done]).reshape(-1, 3)
    pts, cols, dropped = [], [], 0
    for i, (f, va) in enumerate(done):
        p, c = unproject(f.camera, va.depth, f.image, cfg.stride)
        if cfg.consistency_views > 0 and len(done) > 1 and len(p):
            near = np.argsort(np.linalg.norm(centres - centres[i], axis=1))[1:cfg.consistency_views + 1]
            keep = consistent(p, [(done[j][0].camera, done[j][1].depth) for j in near], cfg.consistency_rel)
            dropped += int((~keep).sum())
            p, c = p[keep], c[keep]
        pts.append(p)
        cols.append(c)
    P = np.concatenate(pts).astype(np.float32) if pts else np.zeros((0, 3), np.float32)
    C = np.concatenate(cols).astype(np.float32) if cols else np.zeros((0, 3), np.float32)
    if len(P) > cfg.max_points:
        keep = rng.choice(len(P), cfg.max_points, replace=False)
        P, C = P[keep], C[keep]
    return DenseAlignResult(P, C, views, dropped)


def densify_scene(scene, frames: list[Frame], priors=None, cfg: DenseAlignConfig | None = None, seed: int = 0):
    """The pipeline's hook: a Scene whose initial points are the dense aligned cloud of ``frames``.

    Dense depth per view: the depth prior when the pipeline computed one (``priors[i].depth``, masked by
    ``depth_valid``), else the frame's sensor depth. Semantic regions: the teacher's labels (``priors[i].labels``),
    else the frame's own labels. Needs the SfM points and tracks (``meta["point_observations"]``,
    set by ``apply_poses``). Without any dense depth, or when no view aligns, the scene is returned unchanged."""
    from dataclasses import replace as dc_replace

    from ..data.types import Scene

    if scene.points is None or len(scene.points) == 0:
        return scene
    depths = []
    for i, f in enumerate(frames):
        p = priors[i] if priors is not None and i < len(priors) else None
        if p is not None and p.depth is not None:
            d = np.asarray(p.depth, np.float32).copy()
            if p.depth_valid is not None:
                d[~p.depth_valid] = 0.0
            depths.append(d)
        else:
            depths.append(f.depth)
    if all(d is None for d in depths):
        log.info("dense init: no dense depth (sensor or prior) for any view; keeping the %d SfM points",
                 len(scene.points))
        return scene
    cfg = cfg or DenseAlignConfig(seed=seed)
    # semantic re-alignment regions come from the semantic teacher's labels (what a photo folder has), falling back to
    # the frame's own label maps only where no teacher ran
    labels = [priors[i].labels if priors is not None and i < len(priors) and priors[i] is not None
              and priors[i].labels is not None else f.labels for i, f in enumerate(frames)]
    res = align_dense(frames, depths, scene.points, scene.meta.get("point_observations"), cfg, labels=labels)
    rep = res.report()
    meta = dict(scene.meta)
    meta["dense_align"] = rep
    if len(res.points) <= len(scene.points):
        log.warning("dense init: alignment gave %d points (<= %d SfM points); keeping the SfM points: %s",
                    len(res.points), len(scene.points), rep)
        return Scene(scene.frames, scene.source, scene.root, scene.has_poses, scene.up, scene.points,
                     scene.point_colors, meta)
    meta["points_source"] = f"{meta.get('points_source', 'sfm')}+dense"
    log.info("dense init: %d aligned points from %d views (%d SfM points)", len(res.points), rep["views_aligned"],
             len(scene.points))
    return dc_replace(scene, points=res.points, point_colors=res.colors, meta=meta)
