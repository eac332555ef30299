"""The objects benchmark's panoptic quality against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from benchmarks.objects import evaluate_split


def test_panoptic_quality_hand_computed():
    # ground truth: 10 points of instance 1 (class 7) at x = 0..9, 10 of instance 2 (class 7) at x = 20..29
    gt_pts = np.c_[np.r_[np.arange(10), np.arange(20, 30)], np.zeros((20, 2))].astype(float)
    gt_inst = np.r_[np.full(10, 1), np.full(10, 2)]
    tree = cKDTree(gt_pts)
    cls = {1: 7, 2: 7}
    # prediction A: one merged instance over both objects (what components do with touching objects)
    merged = [(7, gt_pts.copy(), np.zeros(20, np.int64))]
    q = evaluate_split(merged, tree, gt_inst, cls, tol=0.1)
    # IoU with each gt = 10/20 = 0.5, not > 0.5: no match -> TP 0, FP 1, FN 2 -> PQ 0
    assert q["per_class"][7]["tp"] == 0 and q["per_class"][7]["fp"] == 1 and q["per_class"][7]["fn"] == 2
    assert q["pq"] == 0.0
    # prediction B: two instances, the second also takes 2 points of the first object
    inst = np.r_[np.zeros(8), np.ones(12)].astype(np.int64)
    q = evaluate_split([(7, gt_pts.copy(), inst)], tree, gt_inst, cls, tol=0.1)
    iou_a, iou_b = 8 / 10, 10 / 12
    assert q["per_class"][7]["tp"] == 2
    assert q["pq"] == pytest.approx((iou_a + iou_b) / 2)
    assert q["sq"] == pytest.approx((iou_a + iou_b) / 2) and q["rq"] == pytest.approx(1.0)
    # elements far from any ground truth are void: they change nothing
    far = np.r_[gt_pts, [[100.0, 0, 0]]]
    q2 = evaluate_split([(7, far, np.r_[inst, 1])], tree, gt_inst, cls, tol=0.1)
    assert q2["pq"] == pytest.approx(q["pq"])
    # 3 more elements on object 1 predicted as another class: class 9 has no ground truth (not in the mean, listed
    # with its FP), and object 1's ground-truth segment grows to 13 elements: IoU 8/13
    q3 = evaluate_split([(7, gt_pts.copy(), inst), (9, gt_pts[:3] + 0.01, np.zeros(3, np.int64))], tree, gt_inst,
                        cls, tol=0.1)
    assert q3["pq"] == pytest.approx((8 / 13 + 10 / 12) / 2) and q3["per_class"][9]["fp"] == 1
