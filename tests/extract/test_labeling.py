"""Labelling Gaussians, mesh vertices (view voting with a depth test) and points (nearest Gaussians)."""
import math

import numpy as np
import pytest
import torch

from aligngs.data.types import Camera
from aligngs.priors.ade20k import PALETTE
from aligngs.extract.labeling import (
    SemanticPoints,
    as_semantic_points,
    gaussian_classes,
    fill_unseen_by_gaussians,
    label_points_by_gaussians,
    label_vertices_by_views,
    semantic_point_cloud,
)

K5 = np.array([[10.0, 0.0, 2.0], [0.0, 10.0, 2.0], [0.0, 0.0, 1.0]])


def test_gaussian_classes_hand():
    logits = np.array([[0.0, math.log(3.0)], [math.log(4.0), 0.0]])
    cid, conf = gaussian_classes(logits)
    assert cid.dtype == np.int32 and conf.dtype == np.float32
    assert cid.tolist() == [1, 0]
    assert np.allclose(conf, [0.75, 0.8])
    cid_t, conf_t = gaussian_classes(torch.from_numpy(logits), chunk=1)
    assert np.array_equal(cid_t, cid) and np.allclose(conf_t, conf)


def _two_cameras():
    """cam1 at the origin looking +z; cam2 at (10,0,6) looking along -x (OpenCV axes)."""
    cam1 = Camera(np.eye(4), K5, 5, 5)
    c2w = np.eye(4)
    c2w[:3, 0] = [0.0, 0.0, 1.0]  # x_cam
    c2w[:3, 1] = [0.0, 1.0, 0.0]  # y_cam
    c2w[:3, 2] = [-1.0, 0.0, 0.0]  # z_cam
    c2w[:3, 3] = [10.0, 0.0, 6.0]
    cam2 = Camera(c2w, K5, 5, 5)
    return cam1, cam2


def test_voting_rejects_the_occluded_view():
    cam1, cam2 = _two_cameras()
    # v0 = (0,0,4): cam1 pixel (2,2) z=4; cam2 pixel (col 0,row 2) z=10.
    # v1 = (0,0,6): cam1 pixel (2,2) z=6 but the surface there is at 4 -> occluded; cam2 pixel (2,2) z=10.
    # v2 = (0,0,-5): behind cam1, outside cam2's image -> unseen.
    verts = np.array([[0.0, 0.0, 4.0], [0.0, 0.0, 6.0], [0.0, 0.0, -5.0]])
    lab1 = np.full((5, 5), 3)
    dep1 = np.full((5, 5), 4.0)
    lab2 = np.full((5, 5), -1)
    lab2[:, 0] = 3
    lab2[:, 2] = 7
    dep2 = np.full((5, 5), 10.0)
    cid, conf = label_vertices_by_views(verts, [cam1, cam2], [lab1, lab2], [dep1, dep2], None, 0.1)
    assert cid.tolist() == [3, 7, -1]
    assert np.allclose(conf, [1.0, 1.0, 0.0])
    # without the depth test (huge tolerance) cam1 would vote 3 for v1 too: a 1:1 tie -> lowest id 3
    cid_nt, conf_nt = label_vertices_by_views(verts, [cam1, cam2], [lab1, lab2], [dep1, dep2], None, 100.0)
    assert cid_nt.tolist() == [3, 3, -1] and conf_nt[1] == pytest.approx(0.5)
    # nothing rendered (depth 0) at the pixel -> no vote
    cid0, _ = label_vertices_by_views(verts, [cam1], [lab1], [np.zeros((5, 5))], None, 100.0)
    assert cid0.tolist() == [-1, -1, -1]


def test_voting_confidence_weights():
    cam1, cam2 = _two_cameras()
    verts = np.array([[0.0, 0.0, 4.0]])
    lab1, dep1 = np.full((5, 5), 3), np.full((5, 5), 4.0)
    lab2, dep2 = np.full((5, 5), 7), np.full((5, 5), 10.0)
    c1, c2 = np.full((5, 5), 0.75), np.full((5, 5), 0.25)
    cid, conf = label_vertices_by_views(verts, [cam1, cam2], [lab1, lab2], [dep1, dep2], [c1, c2], 0.1)
    assert cid.tolist() == [3] and conf[0] == pytest.approx(0.75)
    cid, conf = label_vertices_by_views(verts, [cam1, cam2], [lab1, lab2], [dep1, dep2], [c2, c1], 0.1)
    assert cid.tolist() == [7] and conf[0] == pytest.approx(0.75)


def _brute_force(verts, cams, labs, deps, tol, C):
    out_c, out_w = [], []
    for x in verts:
        votes = np.zeros(C)
        for cam, lab, dep in zip(cams, labs, deps):
            p = cam.w2c[:3, :3] @ x + cam.w2c[:3, 3]
            if p[2] <= 0:
                continue
            u = cam.K[0, 0] * p[0] / p[2] + cam.K[0, 2]
            v = cam.K[1, 1] * p[1] / p[2] + cam.K[1, 2]
            c, r = int(math.floor(u + 0.5)), int(math.floor(v + 0.5))
            if not (0 <= c < cam.width and 0 <= r < cam.height):
                continue
            if dep[r, c] > 0 and abs(p[2] - dep[r, c]) <= tol and lab[r, c] >= 0:
                votes[lab[r, c]] += 1
        if votes.sum() == 0:
            out_c.append(-1)
            out_w.append(0.0)
        else:
            out_c.append(int(votes.argmax()))
            out_w.append(votes.max() / votes.sum())
    return np.array(out_c), np.array(out_w)


def test_voting_matches_brute_force_with_chunks():
    rng = np.random.default_rng(0)
    C = 5
    K = np.array([[8.0, 0.0, 5.5], [0.0, 8.0, 4.5], [0.0, 0.0, 1.0]])
    cams, labs, deps = [], [], []
    for i in range(4):
        c2w = np.eye(4)
        a = 0.3 * i
        c2w[:3, :3] = [[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]]
        c2w[:3, 3] = [0.2 * i, 0.0, -0.1 * i]
        cams.append(Camera(c2w, K, 12, 10))
        labs.append(rng.integers(-1, C, (10, 12)))
        deps.append(rng.uniform(2.0, 4.0, (10, 12)) * (rng.random((10, 12)) > 0.1))
    verts = rng.uniform([-2, -2, 1], [2, 2, 5], (300, 3))
    cid, conf = label_vertices_by_views(verts, cams, labs, deps, None, 0.5, num_classes=C, chunk=37)
    ref_c, ref_w = _brute_force(verts, cams, labs, deps, 0.5, C)
    assert (ref_c >= 0).sum() > 50  # the test exercises real votes
    assert np.array_equal(cid, ref_c) and np.allclose(conf, ref_w)


def test_voting_bad_inputs():
    cam1, _ = _two_cameras()
    with pytest.raises(ValueError, match="one label/depth"):
        label_vertices_by_views(np.zeros((1, 3)), [cam1], [], [], None, 0.1)
    with pytest.raises(ValueError, match="camera's size"):
        label_vertices_by_views(np.zeros((1, 3)), [cam1], [np.zeros((4, 5), int)], [np.zeros((5, 5))], None, 0.1)
    with pytest.raises(ValueError, match="-1..149"):
        label_vertices_by_views(np.zeros((1, 3)), [cam1], [np.full((5, 5), 150)], [np.zeros((5, 5))], None, 0.1)


def test_nearest_gaussian_labels():
    means = np.array([[0.0, 0, 0], [0.1, 0, 0], [0.2, 0, 0], [5.0, 0, 0], [0.05, 0.01, 0]])
    cls = np.array([1, 1, 2, 4, -1])  # the unknown Gaussian never votes
    conf = np.array([1.0, 1.0, 3.0, 1.0, 9.0])
    pts = np.array([[0.05, 0, 0], [5.0, 0, 0], [100.0, 0, 0]])
    c, w = label_points_by_gaussians(pts, means, cls, conf, k=4, max_dist=1.0)
    # point 0: neighbours {4 (unknown), 0, 1, 2}: class 1 weight 2, class 2 weight 3
    assert c.tolist() == [2, 4, -1]
    assert np.allclose(w, [0.6, 1.0, 0.0])
    c, w = label_points_by_gaussians(pts, means, cls, None, k=4, max_dist=1.0)
    assert c.tolist() == [1, 4, -1] and np.allclose(w, [2 / 3, 1.0, 0.0])
    # tie (one vote each): the class of the nearest voter wins
    c, _ = label_points_by_gaussians(np.array([[0.16, 0, 0]]), means[:3], np.array([1, 3, 2]), k=2)
    assert c.tolist() == [2]


def test_semantic_point_cloud():
    pos = np.zeros((4, 3))
    col = np.array([[0.0, 0.5, 1.0]] * 4)
    logits = np.array([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 0.1], [0, 0, 5.0]])
    sp = semantic_point_cloud(pos, col, sem_logits=logits, opacities=np.array([0.9, 0.9, 0.9, 0.01]),
                              min_opacity=0.05, min_confidence=0.5)
    assert len(sp) == 3
    assert sp.colors.dtype == np.uint8 and sp.colors[0].tolist() == [0, 128, 255]
    assert sp.class_id.tolist() == [0, 1, -1]  # the third is below min_confidence
    assert sp.class_colors[1].tolist() == list(PALETTE[1]) and sp.class_colors[2].tolist() == [0, 0, 0]
    sp2 = semantic_point_cloud(pos, (col * 255).astype(np.uint8), class_id=np.array([3, 3, 4, 5]))
    assert sp2.confidence.tolist() == [1.0] * 4 and sp2.class_id.dtype == np.int32
    with pytest.raises(ValueError, match="exactly one"):
        semantic_point_cloud(pos, col)


def test_as_semantic_points_from_mapping():
    d = {"positions": np.zeros((2, 3)), "colors": np.zeros((2, 3), np.uint8), "class_id": np.array([1, 2])}
    sp = as_semantic_points(d)
    assert isinstance(sp, SemanticPoints) and sp.class_id.tolist() == [1, 2] and sp.confidence.tolist() == [0, 0]
    assert as_semantic_points(sp) is sp
    with pytest.raises(ValueError, match="positions"):
        as_semantic_points({"colors": np.zeros((2, 3))})


def test_fill_unseen_by_gaussians():
    verts = np.array([[0.0, 0, 0], [1.0, 0, 0], [9.0, 0, 0]])
    cid, conf = fill_unseen_by_gaussians(verts, np.array([4, -1, -1]), np.array([0.5, 0.0, 0.0]),
                                         np.array([[1.1, 0, 0], [0.0, 0, 0]]), np.array([6, 8]), k=1, max_dist=1.0)
    assert cid.tolist() == [4, 6, -1] and np.allclose(conf, [0.5, 1.0, 0.0])
