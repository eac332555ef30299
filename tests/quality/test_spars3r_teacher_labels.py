"""SPARS3R's semantic re-alignment in the pipeline hook reads the TEACHER's labels (a photo folder has no others).
Whether it then improves the dense cloud is measured by ``python -m benchmarks spars3r`` (errors injected by
instance, independently of the teacher's label errors)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aligngs.config import DataConfig
from aligngs.data.loaders import load_scene
from aligngs.data.split import split_frames
from aligngs.model.dense_init import densify_scene
from aligngs.model.init import backproject_frames
from aligngs.priors.cache import Priors
from aligngs.priors.simulate import (DepthPriorModel, TeacherModel, plan_teacher, simulate_depth_prior,
                                     simulate_teacher_labels)

ROOM = Path(__file__).resolve().parents[2] / "samples" / "room"


@pytest.fixture(scope="module")
def views():
    scene = load_scene(ROOM, DataConfig(resolution=64))
    train, _ = split_frames(scene, DataConfig(max_train_views=6))
    rng = np.random.default_rng(0)
    pts, cols = backproject_frames(train, stride=4)  # stands in for sparse SfM points (accurate, sparse)
    keep = rng.choice(len(pts), 600, replace=False)
    # the prior misplaces two large objects (bed, sofa) by instance id; everything else is exact up to scale/shift
    misplaced = {9: 0.15, 11: -0.15}
    model = DepthPriorModel(strength=1.0, edge_blur=0.0, warp=0.0, noise=0.0, misplace_rel=1.0)
    priors_depth = [simulate_depth_prior(f.depth, rng, model, f.extras["instance"], misplaced)[0] for f in train]
    plan = plan_teacher([f.labels for f in train], [f.extras["instance"] for f in train], np.random.default_rng(3),
                        TeacherModel(strength=0.5))
    teacher = [simulate_teacher_labels(f.labels, f.extras["instance"], plan) for f in train]
    photo_frames = [replace(f, labels=None, depth=None) for f in train]  # a photo folder: no labels, no depth
    sc = replace(scene, frames=photo_frames, points=pts[keep], point_colors=cols[keep], meta={})
    return sc, photo_frames, priors_depth, teacher, train


def _priors(depths, labels):
    return [Priors(depth=d, depth_valid=d > 0, labels=lab) for d, lab in zip(depths, labels)]


def test_the_pipeline_hook_realigns_on_the_teacher_labels(views):
    sc, frames, depths, teacher, train = views
    with_teacher = densify_scene(sc, frames, _priors(depths, teacher), seed=0)
    without = densify_scene(sc, frames, _priors(depths, [None] * len(depths)), seed=0)
    a, b = with_teacher.meta["dense_align"], without.meta["dense_align"]
    assert b["segments_realigned"] == 0  # no labels anywhere: global alignment only
    assert a["segments_realigned"] > 0  # the teacher's labels were used although frame.labels is None
    assert a["outliers_after"] < b["outliers_after"]  # the re-aligned regions explain their sparse points
