"""Initial rotations from the init points' local surface normals (TrainConfig.init_orientation = "normals")."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from aligngs.model.gaussians import GaussianModel, knn_normals, quats_x_to
from aligngs.train.losses.normal_maps import gaussian_normals_world, quat_to_rotmat


def _box_faces(rng, n=400):
    """Points on three faces of a rotated unit box: x = 0, y = 0 and z = 0 planes (normals = the frame's axes)."""
    R = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    faces = []
    for axis in range(3):
        p = rng.uniform(0.1, 1.0, (n, 3))
        p[:, axis] = 0.0
        faces.append(p)
    return (np.concatenate(faces) @ R.T).astype(np.float32), R, np.repeat(np.arange(3), n)


def test_knn_normals_find_each_face_normal():
    pts, R, axis = _box_faces(np.random.default_rng(0))
    n = knn_normals(pts)
    cos = np.abs((n * R[:, axis].T).sum(1))
    assert np.median(cos) > 0.999 and np.mean(cos > 0.99) > 0.9  # all but points near the shared edges
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5) and (n[:, 0] >= 0).all()


def test_quats_take_the_x_axis_to_the_normal():
    rng = np.random.default_rng(1)
    n = rng.normal(size=(100, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    n[:, 0] = np.abs(n[:, 0])
    n[0] = [0.0, 0.0, 1.0]  # x component 0: the largest rotation allowed (a quarter turn)
    R = quat_to_rotmat(torch.from_numpy(quats_x_to(n.astype(np.float32))))
    np.testing.assert_allclose(R[:, :, 0].numpy(), n, atol=1e-6)


def test_from_points_orients_the_tied_first_axis_and_renders_the_same_covariance():
    pts, R, axis = _box_faces(np.random.default_rng(2))
    cols = np.full_like(pts, 0.5)
    ident = GaussianModel.from_points(pts, cols, sh_degree=0)
    normal = GaussianModel.from_points(pts, cols, sh_degree=0, orientation="normals")
    # what the AlignGS terms call the normal while the scales tie: world x before, the surface normal now
    g0 = gaussian_normals_world(ident.params["quats"].detach(), ident.params["scales"].detach()).numpy()
    g1 = gaussian_normals_world(normal.params["quats"].detach(), normal.params["scales"].detach()).numpy()
    assert np.allclose(np.abs(g0[:, 0]), 1.0)
    assert np.median(np.abs((g1 * R[:, axis].T).sum(1))) > 0.999
    # isotropic scales: the same covariance (so the same renders) either way
    def cov(m):
        Rm = quat_to_rotmat(m.params["quats"].detach())
        return Rm @ torch.diag_embed(torch.exp(2 * m.params["scales"].detach())) @ Rm.transpose(1, 2)

    torch.testing.assert_close(cov(normal), cov(ident), atol=1e-9, rtol=1e-5)
    with pytest.raises(ValueError, match="orientation must be"):
        GaussianModel.from_points(pts, cols, orientation="random")
