"""COLMAP round trips: tiny models written by hand in text AND binary, read back through load_scene."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from aligngs.config import DataConfig
from aligngs.data.colmap import find_colmap_model, load_colmap
from aligngs.data.errors import DataError
from aligngs.data.loaders import detect_format, load_scene

H, W = 24, 32
CAMERAS = [
    (1, "PINHOLE", W, H, [30.0, 31.0, 15.5, 11.5]),
    (2, "SIMPLE_PINHOLE", W, H, [28.0, 16.0, 12.0]),
    (3, "OPENCV", W, H, [30.0, 30.5, 15.0, 12.5, -0.1, 0.02, 0.001, -0.002]),
]
POINTS_XYZ = np.array([[0.1, 0.2, 3.0], [-1.0, 0.5, 4.0], [0.0, 0.0, 5.5], [2.0, -1.0, 6.0]])
POINTS_RGB = np.array([[255, 0, 0], [0, 128, 255], [10, 20, 30], [200, 200, 200]], dtype=np.uint8)


def _write(root, dh, binary: bool, layout: str = "sparse/0"):
    images = []
    for i, cid in enumerate([1, 2, 3, 1]):
        name = f"img{[10, 2, 3, 1][i]}.png"  # natural order: img1, img2, img3, img10
        dh.save_rgb(root / "images" / name, dh.pattern(H, W, seed=i))
        images.append((i + 1, np.linalg.inv(dh.rigid(i)), cid, name))
    points = [(pid + 1, POINTS_XYZ[pid], POINTS_RGB[pid], 0.5, [(1 + pid % 4, 0), (1 + (pid + 1) % 4, 0)])
              for pid in range(len(POINTS_XYZ))]
    dh.write_colmap(root / layout, CAMERAS, images, points, binary=binary)
    return images


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_round_trip(tmp_path, dh, binary):
    images = _write(tmp_path, dh, binary)
    assert detect_format(tmp_path) == "colmap"
    scene = load_scene(tmp_path)
    assert scene.source == "colmap" and scene.has_poses
    assert scene.names() == ["img1.png", "img2.png", "img3.png", "img10.png"]
    by_name = {im[3]: im for im in images}
    for f in scene.frames:
        iid, w2c, cid, name = by_name[f.name]
        np.testing.assert_allclose(f.camera.c2w, np.linalg.inv(w2c), atol=1e-9)
        params = CAMERAS[cid - 1][4]
        if cid == 2:
            K = [[params[0], 0, params[1]], [0, params[0], params[2]], [0, 0, 1]]
        else:
            K = [[params[0], 0, params[2]], [0, params[1], params[3]], [0, 0, 1]]
        np.testing.assert_allclose(f.camera.K, K)
        assert (f.camera.width, f.camera.height) == (W, H)
        raw = dh.pattern(H, W, seed=iid - 1) / 255.0
        if cid == 3:  # OPENCV: undistorted, so it differs from the raw pixels but keeps K
            assert not np.allclose(f.image, raw, atol=1e-3)
        else:
            np.testing.assert_allclose(f.image, raw, atol=1e-7)
    np.testing.assert_allclose(scene.points, POINTS_XYZ, atol=1e-6)
    np.testing.assert_allclose(scene.point_colors, POINTS_RGB / 255.0, atol=1e-7)
    assert scene.points.dtype == np.float32 and scene.point_colors.dtype == np.float32


def test_text_and_binary_agree(tmp_path, dh):
    _write(tmp_path / "t", dh, binary=False)
    _write(tmp_path / "b", dh, binary=True)
    a, b = load_scene(tmp_path / "t"), load_scene(tmp_path / "b")
    for fa, fb in zip(a.frames, b.frames):
        assert fa.name == fb.name
        np.testing.assert_allclose(fa.camera.c2w, fb.camera.c2w, atol=1e-12)
        np.testing.assert_array_equal(fa.image, fb.image)


def test_opencv_undistortion_matches_analytic_pattern(tmp_path, dh):
    h, w, fx, fy, cx, cy = 60, 80, 70.0, 71.0, 39.0, 30.5
    d = {"k1": 0.12, "k2": -0.03, "p1": -0.003, "p2": 0.002}
    img = dh.render_distorted(dh.analytic, h, w, fx, fy, cx, cy, d)
    dh.save_rgb(tmp_path / "images" / "a.png", np.round(img * 255).astype(np.uint8))
    dh.write_colmap(tmp_path / "sparse" / "0", [(1, "OPENCV", w, h, [fx, fy, cx, cy, d["k1"], d["k2"], d["p1"], d["p2"]])],
                    [(1, np.eye(4), 1, "a.png")], [(1, [0, 0, 1], [1, 2, 3], 0.1, [(1, 0)])], binary=True)
    f = load_colmap(tmp_path).frames[0]
    v, u = np.mgrid[0:h, 0:w]
    ideal = dh.analytic((u - cx) / fx, (v - cy) / fy)
    valid = np.ones((h, w), bool) if f.mask is None else f.mask
    assert valid.mean() > 0.8
    err = np.abs(f.image - ideal)[valid].mean()
    assert err < 0.01 and np.abs(img - ideal)[valid].mean() > 5 * err


def test_layouts_and_scaling(tmp_path, dh):
    _write(tmp_path, dh, binary=False, layout="sparse")
    model, images = find_colmap_model(tmp_path)
    assert model == tmp_path / "sparse" and images == tmp_path / "images"
    # pointing at the model folder itself finds the images two levels up
    _write(tmp_path / "x", dh, binary=True)
    assert find_colmap_model(tmp_path / "x" / "sparse" / "0") == (tmp_path / "x/sparse/0", tmp_path / "x/images")
    s = load_scene(tmp_path / "x" / "sparse" / "0", DataConfig(resolution=16))
    assert s.frames[0].image.shape == (12, 16, 3)
    np.testing.assert_allclose(s.frames[0].camera.K[0, 0], 15.0)


def test_missing_image_skipped(tmp_path, dh, caplog):
    _write(tmp_path, dh, binary=True)
    (tmp_path / "images" / "img3.png").unlink()
    with caplog.at_level(logging.WARNING, logger="aligngs.data"):
        scene = load_scene(tmp_path)
    assert scene.names() == ["img1.png", "img2.png", "img10.png"]
    assert any("img3.png" in r.getMessage() for r in caplog.records)


def test_bad_models(tmp_path, dh):
    _write(tmp_path, dh, binary=False)
    (tmp_path / "sparse/0/points3D.txt").unlink()
    with pytest.raises(DataError, match="missing points3D"):
        load_colmap(tmp_path)
    dh.write_colmap(tmp_path / "sparse/0", [(1, "PINHOLE", W, H, [30.0, 31.0, 15.5, 11.5])],
                    [(1, np.eye(4), 1, "img1.png")], [], binary=False)
    (tmp_path / "sparse/0/cameras.txt").write_text("1 PINHOLE 32 24 30\n")  # too few parameters
    with pytest.raises(DataError, match="cannot read the COLMAP model") as ei:
        load_colmap(tmp_path)
    assert ei.value.path == tmp_path / "sparse/0"
    (tmp_path / "sparse/0/cameras.txt").write_text("1 FOV 32 24 30 30 16 12 0.1\n")
    with pytest.raises(DataError, match="unsupported camera model"):
        load_colmap(tmp_path)
