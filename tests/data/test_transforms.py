"""transforms.json loader on tmp scenes: conventions, intrinsics, optional maps, scaling, errors."""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from aligngs.config import DataConfig
from aligngs.data.errors import DataError
from aligngs.data.loaders import detect_format, load_scene
from aligngs.data.transforms import load_transforms

GL2CV = np.diag([1.0, -1.0, -1.0, 1.0])


def _scene(tmp_path, dh, n=3, h=24, w=32, extra_top=None, per_frame=None, maps=False):
    frames = []
    for i in range(n):
        name = f"images/f{i}.png"
        dh.save_rgb(tmp_path / name, dh.pattern(h, w, seed=i))
        fr = {"file_path": name, "transform_matrix": dh.rigid(i).tolist()}
        if maps:
            depth = (np.arange(h * w).reshape(h, w) * 7 + i) % 60000
            dh.save_u16(tmp_path / f"depth/f{i}.png", depth)
            sem = (np.arange(h * w).reshape(h, w) + i) % 151
            dh.save_u8(tmp_path / f"sem/f{i}.png", sem)
            inst = (np.arange(h * w).reshape(h, w) * 13) % 3000
            dh.save_u16(tmp_path / f"inst/f{i}.png", inst)
            fr.update(depth_file_path=f"depth/f{i}.png", semantic_file_path=f"sem/f{i}.png",
                      instance_file_path=f"inst/f{i}.png")
        if per_frame:
            fr.update(per_frame(i))
        frames.append(fr)
    top = {"fl_x": 30.0, "fl_y": 31.0, "cx": 15.5, "cy": 11.0, "w": w, "h": h, "frames": frames}
    top.update(extra_top or {})
    dh.write_json(tmp_path / "transforms.json", top)
    return tmp_path


def test_opengl_to_opencv_and_intrinsics(tmp_path, dh):
    root = _scene(tmp_path, dh)
    assert detect_format(root) == "transforms"
    scene = load_scene(root)
    assert scene.source == "transforms" and scene.has_poses and len(scene.frames) == 3
    for i, f in enumerate(scene.frames):
        gl = dh.rigid(i)
        expected = gl.copy()
        expected[:3, 1] *= -1  # y and z camera axes flip; translation unchanged
        expected[:3, 2] *= -1
        np.testing.assert_allclose(f.camera.c2w, expected, atol=1e-12)
        np.testing.assert_allclose(f.camera.c2w, gl @ GL2CV, atol=1e-12)
        np.testing.assert_allclose(f.camera.K, [[30, 0, 15.5], [0, 31, 11], [0, 0, 1]])
        assert (f.camera.width, f.camera.height) == (32, 24)
        np.testing.assert_allclose(f.image, dh.pattern(24, 32, seed=i) / 255.0, atol=1e-7)
        assert f.image.dtype == np.float32 and f.mask is None and f.depth is None
        assert f.name == f"images/f{i}.png"


def test_camera_angle_and_per_frame_intrinsics(tmp_path, dh):
    angle = 0.9
    root = _scene(tmp_path, dh, extra_top={"fl_x": None, "fl_y": None, "cx": None, "cy": None, "camera_angle_x": angle},
                  per_frame=lambda i: {"fl_x": 50.0, "cx": 10.0} if i == 2 else {})
    scene = load_transforms(root / "transforms.json")
    f_expected = 0.5 * 32 / math.tan(0.5 * angle)
    K0 = scene.frames[0].camera.K
    assert K0[0, 0] == pytest.approx(f_expected) and K0[1, 1] == pytest.approx(f_expected)
    assert (K0[0, 2], K0[1, 2]) == (16.0, 12.0)  # image centre by default
    K2 = scene.frames[2].camera.K
    assert K2[0, 0] == 50.0 and K2[1, 1] == 50.0 and K2[0, 2] == 10.0  # per-frame wins; fy follows fx


def test_missing_images_are_skipped_with_a_warning(tmp_path, dh, caplog):
    root = _scene(tmp_path, dh, n=4)
    (root / "images/f1.png").unlink()
    with caplog.at_level(logging.WARNING, logger="aligngs.data"):
        scene = load_scene(root)
    assert scene.names() == ["images/f0.png", "images/f2.png", "images/f3.png"]
    assert scene.meta["skipped"] == ["images/f1.png"]
    assert any("f1.png" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_generator_maps_depth_semantics_instances_up(tmp_path, dh):
    root = _scene(tmp_path, dh, n=2, maps=True, extra_top={"depth_scale": 500.0, "aligngs_world_up": [0, 0, 2]})
    scene = load_scene(root)
    np.testing.assert_allclose(scene.up, [0, 0, 1])
    h, w = 24, 32
    for i, f in enumerate(scene.frames):
        raw = (np.arange(h * w).reshape(h, w) * 7 + i) % 60000
        np.testing.assert_allclose(f.depth, raw / 500.0, rtol=1e-6)
        assert f.depth.dtype == np.float32
        sem = (np.arange(h * w).reshape(h, w) + i) % 151
        np.testing.assert_array_equal(f.labels, sem - 1)
        assert f.labels.dtype == np.int32 and f.labels.min() == -1
        np.testing.assert_array_equal(f.extras["instance"], (np.arange(h * w).reshape(h, w) * 13) % 3000)
        assert f.extras["instance"].dtype == np.int32


def test_resolution_scales_images_K_and_maps_nearest(tmp_path, dh):
    root = _scene(tmp_path, dh, n=2, maps=True)
    full = load_scene(root)
    half = load_scene(root, DataConfig(resolution=16))
    for f, g in zip(full.frames, half.frames):
        assert g.image.shape == (12, 16, 3)
        assert (g.camera.width, g.camera.height) == (16, 12)
        np.testing.assert_allclose(g.camera.K, f.camera.scaled(16, 12).K)
        np.testing.assert_allclose(g.camera.K[0], [15.0, 0, (15.5 + 0.5) / 2 - 0.5])
        # nearest with pixel-centre sampling at a factor of 2 picks the odd rows / columns
        np.testing.assert_array_equal(g.depth, f.depth[1::2, 1::2])
        np.testing.assert_array_equal(g.labels, f.labels[1::2, 1::2])
        np.testing.assert_array_equal(g.extras["instance"], f.extras["instance"][1::2, 1::2])
        # colour is a proper (anti-aliased) downscale: close to the 2x2 box mean, far from plain decimation
        box = f.image.reshape(12, 2, 16, 2, 3).mean((1, 3))
        assert np.abs(g.image - box).mean() < np.abs(f.image[::2, ::2] - box).mean()
    big = load_scene(root, DataConfig(resolution=1000))  # never upscales
    assert big.frames[0].image.shape == (24, 32, 3)


def test_undistortion_recovers_the_pinhole_image(tmp_path, dh):
    """A distorted rendering of an analytic pattern loads as the undistorted pattern (K kept)."""
    h, w, fx, fy, cx, cy = 60, 80, 70.0, 72.0, 40.2, 29.6
    d = {"k1": -0.15, "k2": 0.05, "p1": 0.004, "p2": -0.003}
    distorted = dh.render_distorted(lambda x, y: dh.analytic(x, y), h, w, fx, fy, cx, cy, d)
    dh.save_rgb(tmp_path / "img.png", np.round(distorted * 255).astype(np.uint8))
    dh.write_json(tmp_path / "transforms.json", {
        "fl_x": fx, "fl_y": fy, "cx": cx, "cy": cy, "w": w, "h": h, **d,
        "frames": [{"file_path": "img.png", "transform_matrix": np.eye(4).tolist()}]})
    f = load_scene(tmp_path).frames[0]
    np.testing.assert_allclose(f.camera.K, [[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    v, u = np.mgrid[0:h, 0:w]
    ideal = dh.analytic((u - cx) / fx, (v - cy) / fy)
    valid = np.ones((h, w), bool) if f.mask is None else f.mask
    err = np.abs(f.image - ideal)[valid].mean()
    raw_err = np.abs(distorted - ideal)[valid].mean()
    assert err < 0.01 and raw_err > 5 * err


@pytest.mark.parametrize("case", ["depth_size", "rotation", "nan", "shape", "no_intrinsics", "non_image", "corrupt",
                                  "depth_missing", "bad_json"])
def test_bad_input_raises_data_error_naming_the_file(tmp_path, dh, case):
    root = _scene(tmp_path, dh, n=2)
    meta = __import__("json").loads((root / "transforms.json").read_text())
    culprit = "transforms.json"
    if case == "depth_size":
        dh.save_u16(root / "d.png", np.ones((10, 10)))
        meta["frames"][1]["depth_file_path"] = "d.png"
        culprit, expect = "d.png", "differs from its colour image"
    elif case == "rotation":
        m = np.array(meta["frames"][0]["transform_matrix"])
        m[:3, :3] *= 1.5
        meta["frames"][0]["transform_matrix"] = m.tolist()
        expect = "not rigid"
    elif case == "nan":
        meta["frames"][0]["transform_matrix"][0][3] = float("nan")
        expect = "NaN"
    elif case == "shape":
        meta["frames"][0]["transform_matrix"] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        expect = "4x4"
    elif case == "no_intrinsics":
        for k in ("fl_x", "fl_y"):
            del meta[k]
        expect = "missing intrinsics"
    elif case == "non_image":
        (root / "notes.txt").write_text("hello")
        meta["frames"][0]["file_path"] = "notes.txt"
        culprit, expect = "notes.txt", "not an image"
    elif case == "corrupt":
        (root / "images/f0.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        culprit, expect = "f0.png", "corrupt"
    elif case == "depth_missing":
        meta["frames"][0]["depth_file_path"] = "nope.png"
        culprit, expect = "nope.png", "does not exist"
    elif case == "bad_json":
        (root / "transforms.json").write_text("{not json")
        meta = None
        expect = "JSON"
    if meta is not None:
        dh.write_json(root / "transforms.json", meta)
    with pytest.raises(DataError) as ei:
        load_scene(root)
    assert expect in str(ei.value)
    assert ei.value.path is not None and ei.value.path.name == culprit


def test_image_size_different_from_declared(tmp_path, dh, caplog):
    root = _scene(tmp_path, dh, n=2)
    dh.save_rgb(root / "images/f1.png", dh.pattern(12, 16, seed=9))  # half size
    with pytest.raises(DataError, match="16x12 but 32x24"):
        load_scene(root, DataConfig(size_mismatch="error"))
    with caplog.at_level(logging.WARNING, logger="aligngs.data"):
        scene = load_scene(root, DataConfig(size_mismatch="resize"))
    assert scene.frames[1].image.shape == (24, 32, 3)
    assert any("resizing" in r.getMessage() for r in caplog.records)
