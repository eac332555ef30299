"""The loaders on the real captures in ../shared/data (skipped when that folder is absent)."""
from __future__ import annotations

import json
import logging

import numpy as np

from aligngs.config import DataConfig
from aligngs.data.loaders import detect_format, load_scene


def closest_point_to_axes(centers: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Least-squares point nearest to all lines c + t d."""
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for c, d in zip(centers, dirs):
        d = d / np.linalg.norm(d)
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ c
    return np.linalg.solve(A, b)


def test_shelf_rgbd(dh):
    root = dh.shared_dataset("shelf-rgbd")
    assert detect_format(root) == "rgbd"
    scene = load_scene(root)
    assert len(scene.frames) == 50 and scene.has_poses
    f0 = scene.frames[0]
    assert f0.name == "frame-000015"
    np.testing.assert_allclose(f0.camera.c2w, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(f0.camera.K[[0, 1, 0, 1], [0, 1, 2, 2]], [615.2, 615.2, 298.4, 247.5], atol=0.1)
    assert f0.image.shape == (480, 640, 3) and f0.depth.shape == (480, 640)
    valid = np.concatenate([f.depth[f.depth > 0] for f in scene.frames])
    assert 0.35 < float(np.median(valid)) < 0.45  # README: about 0.41 m
    invalid = np.mean([(f.depth == 0).mean() for f in scene.frames])
    assert 0.5 < invalid < 0.8  # "about two thirds of the pixels are 0"
    travel = np.linalg.norm(scene.frames[-1].camera.center - f0.camera.center)
    assert 0.1 < travel < 1.0


def test_fox_transforms(dh, caplog):
    root = dh.shared_dataset("fox")
    n_listed = len(json.loads((root / "transforms.json").read_text())["frames"])
    assert n_listed == 67
    with caplog.at_level(logging.WARNING, logger="aligngs.data"):
        scene = load_scene(root, DataConfig(resolution=160))
    assert len(scene.frames) == 50 and len(scene.meta["skipped"]) == 17
    assert any("loaded 50 of 67" in r.getMessage() for r in caplog.records)
    f = scene.frames[0]
    assert f.image.shape == (160, 90, 3)  # 1080x1920 portrait, longest side 160
    assert (f.camera.width, f.camera.height) == (90, 160)
    np.testing.assert_allclose(f.camera.K[0, 0], 1375.52 * 90 / 1080, rtol=1e-6)
    assert scene.meta["undistorted"]

    # OpenCV axes: +z looks forward, so the object the cameras circle is in front of (nearly) all of them
    centers = np.array([fr.camera.center for fr in scene.frames])
    forward = np.array([fr.camera.c2w[:3, 2] for fr in scene.frames])
    target = closest_point_to_axes(centers, forward)
    z_cam = np.array([(fr.camera.w2c @ np.append(target, 1.0))[2] for fr in scene.frames])
    assert (z_cam > 0).mean() > 0.9
    # the unconverted OpenGL matrices (same optical axes) would put it behind them: the check discriminates
    gl = [fr.camera.c2w @ np.diag([1.0, -1.0, -1.0, 1.0]) for fr in scene.frames]
    z_gl = np.array([(np.linalg.inv(m) @ np.append(target, 1.0))[2] for m in gl])
    assert (z_gl < 0).mean() > 0.9
