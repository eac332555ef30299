import numpy as np
import pytest

from aligngs.poses.align import Sim3, path_extent, pose_errors, rotation_angle_deg, umeyama


def test_umeyama_recovers_known_similarity(geom):
    rng = np.random.default_rng(1)
    R = geom.random_rotation(rng)
    if np.linalg.det(R) < 0:
        R[:, 0] *= -1
    src = rng.standard_normal((40, 3))
    dst = 2.5 * src @ R.T + np.array([1.0, -2.0, 0.5])
    sim = umeyama(src, dst)
    assert sim.s == pytest.approx(2.5, rel=1e-9)
    np.testing.assert_allclose(sim.R, R, atol=1e-9)
    np.testing.assert_allclose(sim.t, [1.0, -2.0, 0.5], atol=1e-9)
    np.testing.assert_allclose(sim.apply(src), dst, atol=1e-9)


def test_umeyama_never_returns_a_reflection():
    rng = np.random.default_rng(2)
    src = rng.standard_normal((20, 3))
    dst = src * np.array([1.0, 1.0, -1.0])  # a mirror image: the best proper rotation is not the mirror
    sim = umeyama(src, dst)
    assert np.linalg.det(sim.R) == pytest.approx(1.0)


def test_umeyama_rejects_degenerate_input():
    with pytest.raises(ValueError, match="at least 3"):
        umeyama(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="identical"):
        umeyama(np.ones((5, 3)), np.zeros((5, 3)))


def _ring(geom, n=8):
    look_at, make_camera = geom.look_at, geom.make_camera
    return {f"v{i}": make_camera(look_at([3 * np.cos(a), 3 * np.sin(a), 1.0], [0, 0, 1.0]))
            for i, a in enumerate(np.linspace(0, 2 * np.pi, n, endpoint=False))}


def test_pose_errors_zero_after_a_similarity_and_known_when_perturbed(geom):
    make_camera = geom.make_camera
    ref = _ring(geom)
    rng = np.random.default_rng(3)
    R = geom.random_rotation(rng)
    if np.linalg.det(R) < 0:
        R[:, 0] *= -1
    sim = Sim3(0.3, R, np.array([5.0, 1.0, -1.0]))
    inv = Sim3(1 / 0.3, R.T, -(R.T @ sim.t) / 0.3)
    est = {n: make_camera(inv.apply_c2w(c.c2w)) for n, c in ref.items()}
    e = pose_errors(est, ref)
    assert e.ate < 1e-9 and e.rot_err_deg < 1e-5
    np.testing.assert_allclose(e.sim3.s, 1 / inv.s, rtol=1e-9)
    # one rotation off by 10 degrees around its optical axis: mean error 10/8, centres untouched
    c = ref["v0"].c2w.copy()
    a = np.radians(10)
    c[:3, :3] = c[:3, :3] @ np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    est2 = dict(ref, v0=make_camera(c))
    e2 = pose_errors(est2, ref)
    assert e2.ate < 1e-9
    assert e2.rot_err_deg == pytest.approx(10 / 8, rel=1e-6)
    # a centre moved by d: the Sim3 absorbs part of it, ATE > 0 and below d; relative ATE divides by the extent
    c = ref["v1"].c2w.copy()
    c[:3, 3] += [0, 0, 0.5]
    e3 = pose_errors(dict(ref, v1=make_camera(c)), ref)
    assert 0 < e3.ate < 0.5
    ext = path_extent(np.array([r.center for r in ref.values()]))
    assert e3.ate_rel == pytest.approx(e3.ate / ext)


def test_rotation_angle():
    a = np.radians(30)
    Rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    assert rotation_angle_deg(np.eye(3), Rz) == pytest.approx(30)
