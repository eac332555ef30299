"""SPARS3R-style alignment: RANSAC scale/shift, semantic re-alignment, multi-view fusion, the pipeline hook."""
import numpy as np
import pytest

from aligngs.data.types import Frame, Scene
from aligngs.model.dense_init import (DenseAlignConfig, align_dense, align_view, consistent, densify_scene,
                                       ransac_scale_shift, unproject)

W, H = 64, 48


def test_ransac_recovers_scale_and_shift_despite_outliers():
    rng = np.random.default_rng(0)
    d = rng.uniform(1, 5, 200)
    z = 2.0 * d + 0.7
    bad = rng.random(200) < 0.35
    z[bad] *= 1 + rng.choice([-1, 1], bad.sum()) * rng.uniform(0.1, 0.6, bad.sum())  # 10-60% off the line
    fit = ransac_scale_shift(d, z, inlier_rel=0.02, iters=200, rng=rng)
    assert fit.scale == pytest.approx(2.0, rel=1e-9) and fit.shift == pytest.approx(0.7, abs=1e-9)
    np.testing.assert_array_equal(fit.inliers, ~bad)
    # plain least squares is pulled off by the same outliers
    s_ls = np.polyfit(d, z, 1)[0]
    assert abs(s_ls - 2.0) > 0.01


def test_ransac_without_a_usable_pair():
    assert ransac_scale_shift(np.array([1.0]), np.array([2.0])) is None
    assert ransac_scale_shift(np.ones(5), np.arange(1.0, 6.0)) is None  # no spread in d
    with pytest.raises(ValueError, match="differ in length"):
        ransac_scale_shift(np.ones(3), np.ones(4))


def _view(geom, offset_box=0.8, seed=0):
    """One camera (identity pose), a GT depth ramp, a prior = 0.5 * gt + 1.2 except +offset inside a labelled box,
    and sparse points on the GT surface at random pixels (some inside the box)."""
    rng = np.random.default_rng(seed)
    cam = geom.make_camera(np.eye(4), W, H)
    v, u = np.mgrid[0:H, 0:W]
    gt = (2.0 + 3.0 * u / W + 0.5 * v / H).astype(np.float32)
    labels = np.zeros((H, W), np.int32)
    labels[10:30, 40:60] = 7
    prior = 0.5 * gt + 1.2
    prior[labels == 7] += offset_box
    pix = rng.choice(H * W, 120, replace=False)
    pts, _ = unproject(cam, np.where(np.isin(np.arange(H * W), pix).reshape(H, W), gt, 0.0), None, 1)
    return cam, gt, prior.astype(np.float32), labels, pts


def test_semantic_realignment_fixes_a_segment_with_its_own_offset(geom):
    cam, gt, prior, labels, pts = _view(geom)
    box = labels == 7
    cfg = DenseAlignConfig()
    glob = align_view("v", cam, prior, pts, None, None, cfg, np.random.default_rng(0))
    sem = align_view("v", cam, prior, pts, None, labels, cfg, np.random.default_rng(0))
    # global fit: right outside the box (scale 2, shift -2.4 undo the prior), off by 2 x 0.8 inside it
    assert glob.scale == pytest.approx(2.0, rel=1e-6) and glob.shift == pytest.approx(-2.4, abs=1e-5)
    np.testing.assert_allclose(glob.depth[~box], gt[~box], rtol=1e-5)
    np.testing.assert_allclose(glob.depth[box], gt[box] + 1.6, rtol=1e-5)
    assert glob.outliers_before > 0 and glob.outliers_after == glob.outliers_before
    # semantic step: the box gets its own shift
    np.testing.assert_allclose(sem.depth, gt, rtol=1e-5)
    assert sem.segments_realigned == 1 and sem.outliers_after == 0


def test_segment_without_support_is_dropped_not_kept_wrong(geom):
    cam, gt, prior, labels, pts = _view(geom)
    box = labels == 7
    cfg = DenseAlignConfig(segment_min_pairs=10_000)  # no region can have its own fit
    va = align_view("v", cam, prior, pts, None, labels, cfg, np.random.default_rng(0))
    assert va.segments_dropped == 1 and np.all(va.depth[box] == 0)
    np.testing.assert_allclose(va.depth[~box], gt[~box], rtol=1e-5)


def test_align_dense_fuses_views_in_the_sparse_frame(geom):
    rng = np.random.default_rng(1)
    # a wall z = 5 seen by 3 cameras; each view's prior has its own scale/shift
    cams = [geom.make_camera(geom.look_at([x, 0, 0], [x, 0, 5], up=(0, -1, 0)), W, H) for x in (-0.3, 0.0, 0.3)]
    gts = [np.full((H, W), 5.0, np.float32) for _ in cams]
    wall = np.stack([rng.uniform(-2, 2, 300), rng.uniform(-1.5, 1.5, 300), np.full(300, 5.0)], 1)
    # a ramp on the wall so that depth varies: tilt the wall plane z = 5 + 0.3 x
    wall[:, 2] += 0.3 * wall[:, 0]
    for i, c in enumerate(cams):
        v, u = np.mgrid[0:H, 0:W]
        dx = (u - c.K[0, 2]) / c.K[0, 0]
        cx = c.center[0]
        gts[i] = ((5.0 + 0.3 * cx) / (1 - 0.3 * dx)).astype(np.float32)
    priors = [(a * g + b).astype(np.float32) for g, (a, b) in zip(gts, [(0.5, 1.0), (2.0, -3.0), (1.3, 0.2)])]
    frames = [Frame(f"v{i}", c, np.full((H, W, 3), 0.5, np.float32)) for i, c in enumerate(cams)]
    res = align_dense(frames, priors, wall, None, DenseAlignConfig(stride=1))
    assert res.report()["views_aligned"] == 3
    assert len(res.points) == 3 * H * W
    z_plane = 5.0 + 0.3 * res.points[:, 0]
    np.testing.assert_allclose(res.points[:, 2], z_plane, atol=1e-3)


def test_consistency_check_keeps_agreeing_and_unseen_points(geom):
    cam = geom.make_camera(np.eye(4), W, H)
    dep = np.full((H, W), 4.0, np.float32)
    pts = np.array([[0, 0, 4.0], [0, 0, 3.0], [100, 0, 4.0]])  # agrees, disagrees, outside the other view
    np.testing.assert_array_equal(consistent(pts, [(cam, dep)], 0.03), [True, False, True])


def test_densify_scene_uses_sensor_depth_and_leaves_scenes_without_depth_alone(geom):
    cam, gt, prior, labels, pts = _view(geom, offset_box=0.0)
    f = Frame("v", cam, np.full((H, W, 3), 0.5, np.float32), depth=prior)
    scene = Scene([f], "images", None, True, None, pts.astype(np.float32), np.zeros_like(pts, np.float32),
                  {"points_source": "sfm", "point_observations": {"v": np.arange(len(pts))}})
    out = densify_scene(scene, [f])
    assert out.meta["points_source"] == "sfm+dense" and len(out.points) > len(pts)
    assert out.meta["dense_align"]["views_aligned"] == 1
    z = out.points[:, 2]
    assert np.all((z > 1.9) & (z < 5.6))
    bare = Scene([Frame("v", cam, f.image)], "images", None, True, None, scene.points, scene.point_colors,
                 dict(scene.meta))
    assert densify_scene(bare, bare.frames) is bare
