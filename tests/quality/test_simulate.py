"""The simulated teachers: errors of the documented kinds, consistent across views where they must be."""
from __future__ import annotations

import numpy as np
import pytest

from aligngs.priors.ade20k import class_id
from aligngs.priors.simulate import (DepthPriorModel, TeacherModel, TeacherPlan, depth_prior_stats, plan_misplaced,
                                     plan_teacher, simulate_depth_prior, simulate_teacher_labels)

CHAIR, ARMCHAIR, STOOL, WALL, FLOOR, CLOCK = (class_id(n) for n in ("chair", "armchair", "stool", "wall", "floor",
                                                                    "clock"))


def _views(n=4, H=64, W=80, seed=0):
    """Synthetic views: wall (instance 1) above floor (2), a chair (3) moving across, a tiny clock (4) on the wall."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        lab = np.full((H, W), WALL, np.int32)
        inst = np.ones((H, W), np.int32)
        lab[H // 2:] = FLOOR
        inst[H // 2:] = 2
        x0 = 10 + 8 * k
        lab[20:50, x0:x0 + 20] = CHAIR
        inst[20:50, x0:x0 + 20] = 3
        lab[5:7, 60:62] = CLOCK  # 4 px of 5120: below the small-object threshold
        inst[5:7, 60:62] = 4
        depth = np.where(np.arange(H)[:, None] < H // 2, 4.0, 2.0 + 0.02 * np.arange(H)[:, None]) * np.ones((1, W))
        depth[inst == 3] = 2.5 + 0.01 * rng.standard_normal((inst == 3).sum())
        out.append((lab, inst, depth.astype(np.float32)))
    return out


def test_teacher_confuses_the_same_object_the_same_way_in_every_view():
    views = _views()
    labels, insts = [v[0] for v in views], [v[1] for v in views]
    plan = TeacherPlan(relabel={3: ARMCHAIR}, missed=set(), block_frac=0.0)
    for lab, inst in zip(labels, insts):
        out = simulate_teacher_labels(lab, inst, plan)
        assert (out[inst == 3] == ARMCHAIR).all()
        assert (out[inst != 3] == lab[inst != 3]).all()
    # the planner: chairs get a look-alike, never wall / floor; decisions are per instance (one per scene)
    hits = 0
    for s in range(40):
        p = plan_teacher(labels, insts, np.random.default_rng(s), TeacherModel(strength=1.0, confuse_prob=0.5))
        assert set(p.relabel) <= {3}
        if 3 in p.relabel:
            hits += 1
            assert p.relabel[3] in (ARMCHAIR, STOOL)
    assert 8 < hits < 32  # about half of the draws at confuse_prob 0.5


def test_teacher_misses_small_objects_everywhere_and_fills_with_the_surroundings():
    views = _views()
    plan = plan_teacher([v[0] for v in views], [v[1] for v in views], np.random.default_rng(0),
                        TeacherModel(strength=1.0, confuse_prob=0.0))
    assert plan.missed == {4}
    for lab, inst, _ in views:
        out = simulate_teacher_labels(lab, inst, plan)
        assert not (out == CLOCK).any()
        assert (out[inst == 4] == WALL).all()
    none = plan_teacher([v[0] for v in views], [v[1] for v in views], np.random.default_rng(0),
                        TeacherModel(strength=0.0))
    assert none.missed == set() and none.relabel == {} and none.block_frac == 0.0


def test_teacher_boundaries_are_blocky_at_the_cell_size():
    lab, inst, _ = _views(1)[0]
    plan = TeacherPlan(block_frac=8 / 80)  # 8 px cells at 80 px
    out = simulate_teacher_labels(lab, inst, plan)
    cells = out.reshape(8, 8, 10, 8).transpose(0, 2, 1, 3).reshape(8, 10, 64)
    assert (cells == cells[..., :1]).all()  # constant on every 8x8 cell
    # the majority rule: a cell of 5 chair columns of 8 is chair, one of 3 is not
    assert (out != lab).any() and 0.8 < (out == lab).mean() < 1.0


def test_unknown_pixels_get_the_nearest_label():
    lab = np.full((10, 10), FLOOR, np.int32)
    lab[:, :5] = WALL
    lab[4:6, 1:3] = -1
    out = simulate_teacher_labels(lab, None, TeacherPlan())
    assert (out >= 0).all() and (out[4:6, 1:3] == WALL).all()


def test_depth_prior_is_affine_ambiguous_and_misplaces_planned_objects_consistently():
    views = _views()
    truths = [v[2] for v in views]
    rng = np.random.default_rng(1)
    # no error but the affine ambiguity: an affine fit recovers the truth exactly, Pearson 1
    clean = DepthPriorModel(strength=0.0)
    sims = [simulate_depth_prior(d, rng, clean) for d in truths]
    st = depth_prior_stats([p for p, _ in sims], truths, [v for _, v in sims])
    assert st["median_rel_error"] < 1e-5 and st["pearson"] == pytest.approx(1.0, abs=1e-6)
    scales = [np.polyfit(d.ravel(), p.ravel(), 1)[0] for d, (p, _) in zip(truths, sims)]
    assert np.ptp(scales) > 0.05  # a different scale per view
    # the chair pushed farther in every view (relative to its surroundings) when the plan says so
    model = DepthPriorModel(strength=1.0, edge_blur=0.0, warp=0.0, noise=0.0, misplace_rel=0.2)
    for d, (_, inst, _) in zip(truths, [(v[0], v[1], v[2]) for v in views]):
        p, valid = simulate_depth_prior(d, rng, model, inst, {3: 0.2})
        a, b = np.polyfit(d[inst != 3], p[inst != 3], 1)  # the view's affine map from the rest of the scene
        ratio = ((p[inst == 3] - b) / a) / d[inst == 3]
        assert np.all(ratio > 1.1) and valid.all()
    full = [simulate_depth_prior(d, np.random.default_rng(5), DepthPriorModel(), v[1], {3: 0.08})
            for d, v in zip(truths, views)]
    st = depth_prior_stats([p for p, _ in full], truths, [v for _, v in full])
    assert 0.005 < st["median_rel_error"] < 0.2 and 0.8 < st["pearson"] < 0.9999


def test_invalid_depth_stays_invalid_and_planning_skips_stuff():
    d = np.full((8, 8), 2.0, np.float32)
    d[0, 0] = 0.0
    p, valid = simulate_depth_prior(d, np.random.default_rng(0))
    assert not valid[0, 0] and p[0, 0] == 0 and valid.sum() == 63 and (p[valid] > 0).all()
    plan = plan_misplaced([0, 1, 2, 3], {1, 2}, np.random.default_rng(0), DepthPriorModel(misplaced_fraction=1.0))
    assert set(plan) == {3}
