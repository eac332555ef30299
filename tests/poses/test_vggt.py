"""The VGGT adapter on synthetic outputs of the documented shapes (pose_enc [S,9], depth [S,h,w,1],
depth_conf [S,h,w], images [S,3,h,w]) and the pose-method chain without the optional package."""
import numpy as np
import pytest

from aligngs.data.errors import DataError
from aligngs.data.types import Frame, Scene
from aligngs.poses import MethodUnavailable, estimate_poses
from aligngs.poses.align import Sim3
from aligngs.poses.sfm import PoseResult
from aligngs.poses.vggt import (VGGTConfig, adapt_outputs, expected_memory_gb, frames_that_fit, merge_chunks,
                                plan_chunks, pose_encoding_to_extri_intri, preprocess, run_vggt)

H, W = 28, 42
S2 = np.sqrt(0.5)


def _enc(T, quat_xyzw, fx=30.0, fy=20.0):
    return np.array([*T, *quat_xyzw, 2 * np.arctan((H / 2) / fy), 2 * np.arctan((W / 2) / fx)])


def test_pose_encoding_gives_known_extrinsics_and_intrinsics():
    enc = np.stack([_enc([1, 2, 3], [0, 0, S2, S2]), _enc([0, 0, 0], [0, 0, 0, 1])])
    extri, K = pose_encoding_to_extri_intri(enc, (H, W))
    Rz90 = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    np.testing.assert_allclose(extri[0], np.concatenate([Rz90, [[1], [2], [3]]], 1), atol=1e-12)
    np.testing.assert_allclose(extri[1], np.eye(3, 4), atol=1e-12)
    np.testing.assert_allclose(K[0], [[30, 0, W / 2], [0, 20, H / 2], [0, 0, 1]], atol=1e-9)


def _outputs(S=2, seed=0):
    rng = np.random.default_rng(seed)
    enc = np.stack([_enc([0, 0, 0], [0, 0, 0, 1]), _enc([0.5, 0, 0], [0, 0, S2, S2])][:S])
    depth = rng.uniform(1, 3, (S, H, W, 1))
    conf = rng.uniform(0, 10, (S, H, W))
    images = rng.uniform(0, 1, (S, 3, H, W)).astype(np.float32)
    return enc, depth, conf, images


def _frames(S, h, w):
    return [Frame(f"f{i}", None, np.zeros((h, w, 3), np.float32)) for i in range(S)]


def test_adapter_filters_by_confidence_and_unprojects_with_predicted_cameras():
    enc, depth, conf, images = _outputs()
    res = adapt_outputs(enc, depth, conf, images, _frames(2, H, W), VGGTConfig(conf_threshold=5.0))
    assert len(res.points) == int((conf >= 5.0).sum())
    assert np.all(res.confidence >= 5.0)
    # frame 0 has the identity pose: a kept pixel (v, u) unprojects to ((u - cx) z / fx, (v - cy) z / fy, z)
    v, u = np.argwhere(conf[0] >= 5.0)[0]
    z = depth[0, v, u, 0]
    np.testing.assert_allclose(res.points[0], [(u - W / 2) * z / 30, (v - H / 2) * z / 20, z], rtol=1e-5)
    np.testing.assert_allclose(res.colors[0], images[0, :, v, u], rtol=1e-6)
    # frame 1: camera-from-world [Rz90 | (0.5,0,0)] -> c2w = inverse
    w2c = np.eye(4)
    w2c[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    w2c[:3, 3] = [0.5, 0, 0]
    np.testing.assert_allclose(res.cameras["f1"].c2w, np.linalg.inv(w2c), atol=1e-12)


def test_adapter_caps_points_at_random():
    enc, depth, conf, images = _outputs()
    res = adapt_outputs(enc, depth, conf, images, _frames(2, H, W), VGGTConfig(conf_threshold=0.0, max_points=100))
    assert len(res.points) == 100 and res.report["points_confident"] == 2 * H * W


def test_adapter_rescales_intrinsics_to_original_resolution_with_centred_principal_point():
    enc, depth, conf, images = _outputs()
    res = adapt_outputs(enc, depth, conf, images, _frames(2, 3 * H, 3 * W), VGGTConfig())
    cam = res.cameras["f0"]
    assert (cam.width, cam.height) == (3 * W, 3 * H)
    np.testing.assert_allclose(cam.K, [[90, 0, 3 * W / 2], [0, 60, 3 * H / 2], [0, 0, 1]], atol=1e-9)


def test_crop_mode_preprocess_and_rescale_use_the_pre_crop_size():
    frames = [Frame("p", None, np.random.default_rng(0).uniform(0, 1, (100, 50, 3)).astype(np.float32))]
    imgs, resized = preprocess(frames, width=28)
    assert imgs.shape == (1, 3, 28, 28)  # 56 px tall after the resize, centre-cropped to 28
    assert resized == [(56, 28)]
    enc = np.array([[0, 0, 0, 0, 0, 0, 1, 2 * np.arctan(14 / 20.0), 2 * np.arctan(14 / 30.0)]])
    res = adapt_outputs(enc, np.ones((1, 28, 28, 1)), np.full((1, 28, 28), 9.0), imgs, frames, VGGTConfig(), resized)
    K = res.cameras["p"].K
    np.testing.assert_allclose([K[0, 0], K[1, 1], K[0, 2], K[1, 2]], [30 * 50 / 28, 20 * 100 / 56, 25, 50])


def test_chunk_plan_and_memory_figures():
    assert plan_chunks(5, 8) == [[0, 1, 2, 3, 4]]
    assert plan_chunks(7, 4, anchors=2) == [[0, 1, 2, 3], [0, 1, 4, 5], [0, 1, 6]]
    assert expected_memory_gb(50) == pytest.approx(11.4)
    assert expected_memory_gb(150) == pytest.approx(21.0 + 50 * (21.0 - 11.4) / 50)
    n = frames_that_fit(16.0)
    assert expected_memory_gb(n) <= 0.85 * 16 < expected_memory_gb(n + 1)


def test_merge_chunks_maps_a_chunk_back_by_its_anchor_similarity(geom):
    rng = np.random.default_rng(4)
    n = 5
    c2ws = [geom.look_at(rng.uniform(-1, 1, 3) + [0, 0, -4], [0, 0, 0], up=(0, -1, 0)) for _ in range(n)]
    K = np.array([[30, 0, W / 2], [0, 20, H / 2], [0, 0, 1.0]])
    depth = rng.uniform(2, 5, (n, H, W))
    conf = np.full((n, H, W), 9.0)
    R = geom.random_rotation(rng)
    if np.linalg.det(R) < 0:
        R[:, 0] *= -1
    sim = Sim3(0.4, R, np.array([1.0, 2.0, -0.5]))  # chunk 1's own frame: world' = sim(world)
    chunks = plan_chunks(n, 3, anchors=1)
    assert chunks == [[0, 1, 2], [0, 3, 4]]
    out = []
    for ci, idx in enumerate(chunks):
        mats = [c2ws[i] if ci == 0 else sim.apply_c2w(c2ws[i]) for i in idx]
        e = np.stack([np.linalg.inv(m)[:3] for m in mats])
        d = np.stack([depth[i] * (1.0 if ci == 0 else sim.s) for i in idx])
        out.append((e, np.stack([K] * len(idx)), d, conf[idx]))
    E, Kall, D, C = merge_chunks(chunks, out, n, 5.0, anchors=1)
    for i in range(n):
        np.testing.assert_allclose(E[i], np.linalg.inv(c2ws[i])[:3], atol=1e-6)
        np.testing.assert_allclose(D[i], depth[i], rtol=1e-5)


def test_run_vggt_without_the_package_says_how_to_install_it():
    try:
        import vggt  # noqa: F401
        pytest.skip("the vggt package is installed here")
    except ImportError:
        pass
    with pytest.raises(MethodUnavailable, match="'vggt' package is not installed.*pip install"):
        run_vggt(_frames(3, H, W))


def _bare_scene(n=4):
    return Scene([Frame(f"f{i}", None, np.zeros((H, W, 3), np.float32)) for i in range(n)], "images", None, False)


def test_chain_falls_back_from_missing_vggt_to_sfm_and_records_it(monkeypatch, geom):
    import aligngs.poses as poses

    calls = []

    def fake_sfm(frames, cfg, should_cancel):
        calls.append(len(frames))
        cams = {f.name: geom.make_camera(geom.look_at([i, 0, 0], [i, 0, 5], up=(0, -1, 0)), W, H)
                for i, f in enumerate(frames[:3])}
        return PoseResult(cams, np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32), np.ones(4, np.float32),
                          "sfm", [frames[3].name], {"registered": 3, "total": 4}, {n: np.arange(2) for n in cams})

    monkeypatch.setattr(poses, "run_sfm", fake_sfm)
    try:
        import vggt  # noqa: F401
        pytest.skip("the vggt package is installed here")
    except ImportError:
        pass
    out = estimate_poses(_bare_scene(), "auto")
    assert calls == [4]
    info = out.meta["poses"]
    assert info["method"] == "sfm" and info["fallbacks"][0].startswith("vggt: the optional 'vggt' package")
    assert info["unregistered"] == ["f3"] and [f.name for f in out.frames] == ["f0", "f1", "f2"]
    assert out.has_poses and "point_observations" in out.meta
    # 'vggt' alone has nothing to fall back to: a DataError that says what to do
    with pytest.raises(DataError, match="no pose method could run.*poses='sfm'"):
        estimate_poses(_bare_scene(), "vggt")
    with pytest.raises(DataError, match="no poses"):
        estimate_poses(_bare_scene(), "known")
    with pytest.raises(ValueError, match="unknown pose method"):
        estimate_poses(_bare_scene(), "magic")
