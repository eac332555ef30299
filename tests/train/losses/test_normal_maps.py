"""Gaussian normals, camera-space orientation and depth normals share one convention (facing the camera)."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from aligngs.train.losses.normal_maps import (
    camera_space_normals,
    depth_to_normals,
    gaussian_normals_world,
    quat_to_rotmat,
)


def test_quat_to_rotmat_matches_scipy():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(20, 4))
    R = quat_to_rotmat(torch.from_numpy(q)).numpy()
    ref = Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_matrix()  # scipy is (x, y, z, w)
    assert np.allclose(R, ref, atol=1e-12)


def test_smallest_axis_hand_cases():
    q = torch.tensor([[1.0, 0, 0, 0], [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)]])
    s = torch.tensor([[1.0, 2.0, 0.1], [0.1, 1.0, 1.0]])
    n = gaussian_normals_world(q, s)
    assert torch.allclose(n[0].abs(), torch.tensor([0.0, 0.0, 1.0]), atol=1e-7)
    # 90 deg about z maps the x axis to y
    assert torch.allclose(n[1], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)


def test_smallest_axis_random_and_gradcheck():
    rng = np.random.default_rng(1)
    q = torch.from_numpy(rng.normal(size=(10, 4)))
    s = torch.from_numpy(rng.uniform(0.1, 1.0, size=(10, 3)))
    n = gaussian_normals_world(q, s).numpy()
    R = Rotation.from_quat(q.numpy()[:, [1, 2, 3, 0]]).as_matrix()
    k = s.numpy().argmin(1)
    assert np.allclose(n, R[np.arange(10), :, k], atol=1e-12)
    qg = q.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: gaussian_normals_world(x, s), (qg,))


def _look_at(eye, target, up=(0.0, -1.0, 0.0)):
    """OpenCV c2w looking from eye to target (y down)."""
    eye, target, up = (np.asarray(v, float) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(-np.asarray(up), z)  # right
    if np.linalg.norm(x) < 1e-9:
        x = np.cross([1.0, 0.0, 0.0], z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w


def test_camera_space_normals_face_the_camera():
    # identity camera: a Gaussian at z=5 whose normal points away gets flipped
    V = torch.eye(4, dtype=torch.float64)
    means = torch.tensor([[0.0, 0.0, 5.0], [0.0, 0.0, 5.0]], dtype=torch.float64)
    nw = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]], dtype=torch.float64)
    nc = camera_space_normals(nw, means, V)
    assert torch.allclose(nc, torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]], dtype=torch.float64))
    # general camera: n_cam = +-R n_world and <n_cam, p_cam> <= 0
    rng = np.random.default_rng(2)
    c2w = _look_at([1.0, -2.0, 0.5], [0.0, 0.0, 4.0])
    w2c = np.linalg.inv(c2w)
    means = torch.from_numpy(rng.uniform(-1, 1, (50, 3)) + [0, 0, 4])
    nw = torch.nn.functional.normalize(torch.from_numpy(rng.normal(size=(50, 3))), dim=1)
    nc = camera_space_normals(nw, means, w2c)  # numpy viewmat accepted
    rot = nw @ torch.from_numpy(w2c[:3, :3]).T
    assert torch.allclose(nc.abs(), rot.abs(), atol=1e-12)
    p_cam = means @ torch.from_numpy(w2c[:3, :3]).T + torch.from_numpy(w2c[:3, 3])
    assert ((nc * p_cam).sum(1) <= 1e-12).all()
    # equivalently in world space: n . (mean - camera centre) <= 0
    nw_out = nc @ torch.from_numpy(w2c[:3, :3])
    assert ((nw_out * (means - torch.from_numpy(c2w[:3, 3]))).sum(1) <= 1e-12).all()
    nwg = nw.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: camera_space_normals(x, means, w2c), (nwg,))


def _plane_depth(n0, d, K, H, W):
    """z-depth of the plane {P : n0.P = d} (camera space) seen through pixel centres."""
    u, v = np.meshgrid(np.arange(W, dtype=float), np.arange(H, dtype=float))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    return d / (rays @ n0)


K = np.array([[20.0, 0.0, 4.5], [0.0, 22.0, 3.5], [0.0, 0.0, 1.0]])


def test_depth_normals_of_a_tilted_plane():
    n0 = np.array([0.3, -0.2, -1.0])
    n0 /= np.linalg.norm(n0)
    depth = torch.from_numpy(_plane_depth(n0, -3.0, K, 8, 10))
    assert (depth > 0).all()
    n = depth_to_normals(depth, K)
    assert torch.allclose(n[1:-1, 1:-1], torch.from_numpy(n0).expand(6, 8, 3), atol=1e-9)
    # reference border: zero frame
    assert torch.all(n[0] == 0) and torch.all(n[-1] == 0) and torch.all(n[:, 0] == 0) and torch.all(n[:, -1] == 0)
    nr = depth_to_normals(depth, torch.from_numpy(K), border="replicate")
    assert torch.allclose(nr, torch.from_numpy(n0).expand(8, 10, 3), atol=1e-9)


def test_depth_normals_agree_with_gaussian_normals():
    """A Gaussian lying on the plane (flat axis along the plane normal) gets the same camera normal."""
    c2w = _look_at([0.5, -0.3, -1.0], [0.0, 0.0, 3.0])
    w2c = np.linalg.inv(c2w)
    n_world = np.array([0.1, 0.2, -1.0])
    n_world /= np.linalg.norm(n_world)
    p_world = np.array([0.0, 0.0, 3.0])
    # plane in camera space: n_c . P = n_c . p_c
    n_c, p_c = w2c[:3, :3] @ n_world, w2c[:3, :3] @ p_world + w2c[:3, 3]
    depth = torch.from_numpy(_plane_depth(n_c, float(n_c @ p_c), K, 8, 10))
    nd = depth_to_normals(depth, K)[4, 5]
    # Gaussian: identity rotation scaled flat along a rotated axis -> quaternion taking z to +-n_world
    rot, _ = Rotation.align_vectors([-n_world], [[0.0, 0.0, 1.0]])
    xyzw = rot.as_quat()
    q = torch.tensor([[xyzw[3], xyzw[0], xyzw[1], xyzw[2]]], dtype=torch.float64)
    ng = gaussian_normals_world(q, torch.tensor([[1.0, 1.0, 0.01]], dtype=torch.float64))
    nc = camera_space_normals(ng, torch.from_numpy(p_world)[None], w2c)[0]
    assert torch.allclose(nd, nc, atol=1e-9)
    assert nd[2] < 0  # faces the camera


def test_depth_normals_alpha_zero_depth_and_gradcheck():
    depth = torch.from_numpy(_plane_depth(np.array([0.0, 0.0, -1.0]), -2.0, K, 6, 7)).requires_grad_(True)
    alpha = torch.full((6, 7), 0.5, dtype=torch.float64, requires_grad=True)
    n = depth_to_normals(depth, K, alpha=alpha)
    assert torch.allclose(n[2, 3], torch.tensor([0.0, 0.0, -0.5], dtype=torch.float64))
    n.sum().backward()
    assert alpha.grad is None and depth.grad is not None  # alpha is detached
    z = torch.zeros(5, 5, requires_grad=True)
    nz = depth_to_normals(z, K)
    nz.sum().backward()
    assert torch.all(nz == 0) and torch.isfinite(z.grad).all()
    g = torch.Generator().manual_seed(0)
    d = (2.0 + 0.3 * torch.rand(5, 6, generator=g, dtype=torch.float64)).requires_grad_(True)
    for border in ("zero", "replicate"):
        assert torch.autograd.gradcheck(lambda x: depth_to_normals(x, K, border=border), (d,))


def test_depth_normals_bad_input():
    with pytest.raises(ValueError, match="border"):
        depth_to_normals(torch.ones(3, 3), K, border="mirror")
    with pytest.raises(ValueError, match="3x3"):
        depth_to_normals(torch.ones(3, 3), np.eye(4))
