"""Mesh metrics and mIoU against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from aligngs.data.types import TriMesh
from aligngs.metrics.mesh import mesh_metrics, sample_mesh
from aligngs.metrics.semantic import confusion_matrix, miou, miou_from_confusion


def _grid(z: float, n: int = 21) -> np.ndarray:
    u = np.linspace(0, 1, n)
    x, y = np.meshgrid(u, u)
    return np.stack([x.ravel(), y.ravel(), np.full(x.size, z)], 1)


def test_two_planes_one_cm_apart():
    m = mesh_metrics(_grid(0.01), _grid(0.0), threshold=0.05)
    for k in ("accuracy", "completion", "chamfer"):
        assert m[k] == pytest.approx(0.01, abs=1e-12)
    assert m["precision"] == m["recall"] == m["fscore"] == 1.0
    m = mesh_metrics(_grid(0.01), _grid(0.0), threshold=0.005)
    assert m["precision"] == m["recall"] == m["fscore"] == 0.0


def test_shifted_points_hand_values():
    gt = np.array([[0, 0, 0], [1, 0, 0]], float)
    pred = np.array([[0, 0, 0.02], [1, 0, 0.1], [4, 0, 0]], float)
    m = mesh_metrics(pred, gt, threshold=0.05)
    assert m["accuracy"] == pytest.approx((0.02 + 0.1 + 3.0) / 3)  # pred -> gt
    assert m["completion"] == pytest.approx((0.02 + 0.1) / 2)  # gt -> pred
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["recall"] == pytest.approx(1 / 2)
    assert m["fscore"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert m["chamfer"] == pytest.approx(((0.02 + 0.1 + 3.0) / 3 + 0.06) / 2)
    with pytest.raises(ValueError, match="pred_points"):
        mesh_metrics(np.zeros((0, 3)), gt)


def _two_part_mesh() -> TriMesh:
    """Unit square at z=0 (area 1) plus a triangle of area 2 at z=5."""
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 5], [2, 0, 5], [0, 2, 5]], np.float32)
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6]], np.int32)
    return TriMesh(v, f)


def test_sample_mesh_area_weighted_and_seeded():
    mesh = _two_part_mesh()
    p = sample_mesh(mesh, 30_000, seed=3)
    assert p.shape == (30_000, 3)
    on_tri = p[:, 2] > 2.5
    assert np.all(np.isclose(p[:, 2], 0) | np.isclose(p[:, 2], 5))
    assert on_tri.mean() == pytest.approx(2 / 3, abs=0.01)  # area 2 of 3
    sq = p[~on_tri]
    assert sq[:, :2].min() >= 0 and sq[:, :2].max() <= 1
    assert (sq[:, 0] < 0.5).mean() == pytest.approx(0.5, abs=0.02)  # uniform over the square
    assert (sq[:, 0] > sq[:, 1]).mean() == pytest.approx(0.5, abs=0.02)  # both triangles of the square equally
    tri = p[on_tri]
    assert (tri[:, 0] + tri[:, 1] <= 2 + 1e-9).all() and (tri[:, :2] >= -1e-9).all()
    assert (tri[:, 0] + tri[:, 1] < 2 * np.sqrt(0.5)).mean() == pytest.approx(0.5, abs=0.02)  # uniform in the triangle
    np.testing.assert_array_equal(p, sample_mesh(mesh, 30_000, seed=3))
    assert not np.array_equal(p, sample_mesh(mesh, 30_000, seed=4))


def test_sample_open3d_mesh():
    o3d = pytest.importorskip("open3d")
    mesh = _two_part_mesh()
    om = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(mesh.vertices.astype(np.float64)),
                                   o3d.utility.Vector3iVector(mesh.faces))
    np.testing.assert_allclose(sample_mesh(om, 1000, seed=0), sample_mesh(mesh, 1000, seed=0), atol=1e-6)


def test_miou_hand_values():
    gt = np.array([0, 1, 2, 2, 2, -1, -1])
    pred = np.array([0, 1, 1, 2, -1, 3, 0])  # -1 at a labelled pixel = no prediction; gt -1 pixels are ignored
    m, per = miou(pred, gt, num_classes=5)
    # class 0: TP 1, union 1; class 1: TP 1, FP 1 -> 1/2; class 2: TP 1, FN 2 -> 1/3; classes 3, 4 absent
    assert per == pytest.approx({0: 1.0, 1: 0.5, 2: 1 / 3})
    assert m == pytest.approx((1 + 0.5 + 1 / 3) / 3)


def test_miou_counts_classes_only_predicted():
    gt = np.array([[0, 0], [1, 1]])
    pred = np.array([[0, 3], [1, 1]])
    m, per = miou(pred, gt, num_classes=4)
    assert per == pytest.approx({0: 0.5, 1: 1.0, 3: 0.0})
    assert m == pytest.approx(0.5)
    # accumulation over frames equals one call on the concatenation
    cm1, miss1 = confusion_matrix(pred, gt, 4)
    cm2, miss2 = confusion_matrix(gt, gt, 4)
    acc_m, acc_per = miou_from_confusion(cm1 + cm2, miss1 + miss2)
    one_m, one_per = miou(np.concatenate([pred.ravel(), gt.ravel()]), np.concatenate([gt.ravel(), gt.ravel()]), 4)
    assert acc_per == pytest.approx({0: 0.75, 1: 1.0, 3: 0.0}) and one_per == pytest.approx(acc_per)
    assert acc_m == pytest.approx(one_m)
    with pytest.raises(ValueError, match="outside"):
        miou(np.array([7]), np.array([0]), 4)
    with pytest.raises(ValueError, match="undefined"):
        miou(np.array([0]), np.array([-1]), 4)
