"""TSDF fusion: hand-computed helpers, analytic spheres, and the real shelf RGB-D capture."""
from __future__ import annotations

import logging

import numpy as np
import open3d as o3d
import pytest
from scipy.spatial import cKDTree

from aligngs.config import MeshConfig
from aligngs.data.types import Camera, TriMesh
from aligngs.extract.extent import scene_extent
from aligngs.extract.tsdf import (
    EmptyMeshError,
    depth_to_points,
    fuse_tsdf,
    largest_component,
    resolve_tsdf_params,
    tsdf_params,
)


# ---------------------------------------------------------------- helpers (analytic scenes)

def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenCV c2w looking from eye to target (x right, y down, z forward)."""
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([x, y, z], axis=1)
    c2w[:3, 3] = eye
    return c2w


def ring_cameras(target, dist, n, width=160, height=120, f=140.0, elev=0.35):
    K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])
    cams = []
    for k in range(n):
        a = 2 * np.pi * k / n
        eye = np.asarray(target) + dist * np.array([np.cos(a) * np.cos(elev), np.sin(a) * np.cos(elev), np.sin(elev)])
        cams.append(Camera(look_at(eye, target), K, width, height))
    return cams


def render_spheres(cam: Camera, spheres):
    """Planar depth + colour of spheres [(centre, radius, rgb_top, rgb_bottom)] by exact ray casting."""
    v, u = np.mgrid[0 : cam.height, 0 : cam.width].astype(np.float64)
    d_cam = np.stack([(u - cam.K[0, 2]) / cam.K[0, 0], (v - cam.K[1, 2]) / cam.K[1, 1], np.ones_like(u)], -1)
    d = d_cam @ cam.c2w[:3, :3].T  # world direction with camera-z component 1 -> the ray parameter is the depth
    o = cam.center
    depth = np.zeros((cam.height, cam.width))
    color = np.zeros((cam.height, cam.width, 3))
    for centre, r, top, bottom in spheres:
        oc = o - np.asarray(centre)
        a = (d * d).sum(-1)
        b = 2 * (d @ oc)
        c = oc @ oc - r * r
        disc = b * b - 4 * a * c
        hit = disc > 0
        t = np.where(hit, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), 0.0)
        hit &= t > 0
        closer = hit & ((depth == 0) | (t < depth))
        depth[closer] = t[closer]
        pz = o[2] + t * d[..., 2]
        col = np.where((pz > centre[2])[..., None], np.asarray(top, float), np.asarray(bottom, float))
        color[closer] = col[closer]
    return depth.astype(np.float32), color.astype(np.float32)


RED, BLUE = (0.9, 0.1, 0.1), (0.1, 0.2, 0.9)


# ---------------------------------------------------------------- small pieces, hand-computed

def test_depth_to_points_hand_computed():
    K = np.array([[2.0, 0, 1.0], [0, 4.0, 0.5], [0, 0, 1]])
    c2w = np.eye(4)
    c2w[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]  # 90 deg about z
    c2w[:3, 3] = [10, 20, 30]
    cam = Camera(c2w, K, 3, 2)
    depth = np.array([[2.0, 0.0, np.nan], [1.0, -1.0, 4.0]], dtype=np.float32)
    pts, idx = depth_to_points(depth, cam, return_index=True)
    # pixel (u=0,v=0) z=2: cam (2*(0-1)/2, 2*(0-0.5)/4, 2) = (-1, -0.25, 2) -> world R@p + t = (10.25, 19, 32)
    # pixel (u=0,v=1) z=1: cam (-0.5, 0.125, 1) -> (10 - 0.125, 20 - 0.5, 31)
    # pixel (u=2,v=1) z=4: cam (2, 0.5, 4) -> (9.5, 22, 34)
    np.testing.assert_allclose(pts, [[10.25, 19, 32], [9.875, 19.5, 31], [9.5, 22, 34]], atol=1e-5)
    np.testing.assert_array_equal(idx, [0, 3, 5])
    assert pts.dtype == np.float32
    assert depth_to_points(depth, cam, stride=2).shape == (1, 3)  # rows 0, cols 0 and 2: only (0,0) valid
    with pytest.raises(ValueError, match="depth shape"):
        depth_to_points(depth.T, cam)


def test_depth_to_points_lands_on_rendered_sphere():
    centre, r = np.array([0.1, -0.2, 0.3]), 0.4
    cam = ring_cameras(centre, 1.5, 1)[0]
    depth, _ = render_spheres(cam, [(centre, r, RED, BLUE)])
    pts = depth_to_points(depth, cam)
    assert len(pts) > 1000
    np.testing.assert_allclose(np.linalg.norm(pts - centre, axis=1), r, atol=1e-5)


def test_scene_extent_hand_computed():
    K = np.eye(3)
    moved = np.eye(4)
    moved[0, 3] = 2.0
    cams = [Camera(np.eye(4), K, 4, 4), Camera(moved, K, 4, 4)]
    assert cams[1].center.tolist() == [2, 0, 0]
    assert scene_extent(cams) == pytest.approx(1.1)  # mean (1,0,0), max distance 1
    pts = np.array([[1.0, 3.0, 0.0]] * 200 + [[1.0, 0.0, 100.0]])  # one far outlier beyond the 99th percentile
    assert scene_extent(cams, pts) == pytest.approx(3.3)
    with pytest.raises(ValueError, match="zero extent"):
        scene_extent([cams[0], cams[0]])
    with pytest.raises(ValueError, match="points must be"):
        scene_extent(cams, np.zeros((3, 2)))


def test_tsdf_params_derived_and_explicit():
    p = tsdf_params(MeshConfig(), 2.56)
    assert (p.voxel_size, p.sdf_trunc, p.depth_trunc, p.weight_threshold) == pytest.approx((0.01, 0.04, 5.12, 1.0))
    p = tsdf_params(MeshConfig(voxel_size=0.02, sdf_trunc=0.05, depth_trunc=3.0, weight_threshold=3.0), None)
    assert (p.voxel_size, p.sdf_trunc, p.depth_trunc, p.weight_threshold) == (0.02, 0.05, 3.0, 3.0)
    assert tsdf_params(MeshConfig(voxel_size=0.02), 1.0).sdf_trunc == pytest.approx(0.08)
    with pytest.raises(ValueError, match="voxel_size is None"):
        tsdf_params(MeshConfig(), None)
    with pytest.raises(ValueError, match="sdf_trunc"):
        tsdf_params(MeshConfig(voxel_size=0.02, sdf_trunc=0.01, depth_trunc=1.0), None)


def test_largest_component_keeps_attrs_and_reindexes():
    # two triangles sharing an edge (component A, 2 faces) and one separate triangle (component B)
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [5, 5, 5], [6, 5, 5], [5, 6, 5]], dtype=np.float32)
    mesh = TriMesh(
        vertices=v[[4, 5, 6, 0, 1, 2, 3]],  # component B first so indices must be remapped
        faces=np.array([[0, 1, 2], [3, 4, 5], [4, 6, 5]], dtype=np.int32),
        colors=np.arange(21, dtype=np.uint8).reshape(7, 3),
        vertex_attrs={"class_id": np.arange(7, dtype=np.int32)},
    )
    out = largest_component(mesh)
    np.testing.assert_array_equal(out.vertices, v[[0, 1, 2, 3]])
    np.testing.assert_array_equal(out.faces, [[0, 1, 2], [1, 3, 2]])
    np.testing.assert_array_equal(out.vertex_attrs["class_id"], [3, 4, 5, 6])
    np.testing.assert_array_equal(out.colors, mesh.colors[3:])


# ---------------------------------------------------------------- analytic fusion

@pytest.fixture(scope="module")
def sphere_views():
    centre, r = np.array([0.1, -0.2, 0.3]), 0.4
    hi = dict(width=320, height=240, f=280.0)  # pixel footprint at the sphere ~4 mm, below the 1 cm voxel
    cams = ring_cameras(centre, 1.5, 6, **hi) + ring_cameras(centre, 1.5, 3, elev=-0.6, **hi)
    views = [render_spheres(c, [(centre, r, RED, BLUE)]) for c in cams]
    return centre, r, cams, [v[0] for v in views], [v[1] for v in views]


def test_fused_sphere_lies_on_true_surface(sphere_views):
    centre, r, cams, depths, colors = sphere_views
    voxel = 0.01
    calls = []
    mesh = fuse_tsdf(depths, colors, cams, MeshConfig(voxel_size=voxel), progress=calls.append)
    assert mesh.vertices.dtype == np.float32 and mesh.faces.dtype == np.int32 and mesh.colors.dtype == np.uint8
    assert mesh.faces.min() >= 0 and mesh.faces.max() < len(mesh.vertices)
    radial = np.linalg.norm(mesh.vertices - centre, axis=1) - r
    assert np.abs(radial).max() < voxel, np.abs(radial).max()
    assert np.median(np.abs(radial)) < 0.2 * voxel
    # the mesh covers the sphere: every direction within ~10 deg has a vertex (the far poles are seen obliquely)
    dirs = (mesh.vertices - centre) / np.linalg.norm(mesh.vertices - centre, axis=1, keepdims=True)
    probe = np.random.default_rng(0).normal(size=(500, 3))
    probe /= np.linalg.norm(probe, axis=1, keepdims=True)
    probe = probe[np.abs(probe[:, 2]) < 0.8]
    gap, _ = cKDTree(dirs).query(probe)
    assert gap.max() < 0.17
    # colours: red above the equator, blue below (away from the seam)
    z = mesh.vertices[:, 2] - centre[2]
    top, bottom = mesh.colors[z > 0.05].astype(float) / 255, mesh.colors[z < -0.05].astype(float) / 255
    np.testing.assert_allclose(np.median(top, axis=0), RED, atol=0.02)
    np.testing.assert_allclose(np.median(bottom, axis=0), BLUE, atol=0.02)
    # progress: one call per view, then the final one
    assert [p.stage for p in calls] == ["mesh"] * (len(cams) + 1)
    assert np.all(np.diff([p.fraction for p in calls]) > 0) and calls[-1].fraction == 1.0


def test_derived_parameters_and_depth_only(sphere_views):
    centre, r, cams, depths, _ = sphere_views
    mesh = fuse_tsdf(depths, None, cams, MeshConfig())  # everything derived from the depth maps
    assert mesh.colors is None
    extent = scene_extent(cams, np.concatenate([depth_to_points(d, c) for d, c in zip(depths, cams)]))
    voxel = extent / 256
    radial = np.abs(np.linalg.norm(mesh.vertices - centre, axis=1) - r)
    assert np.abs(radial).max() < voxel
    # finer voxels -> more vertices (a check that voxel_size is really the derived one: ~ (1.1*1.5/256)^-2)
    assert 0.6 < len(mesh.vertices) * (voxel / 0.01) ** 2 / len(fuse_tsdf(depths, None, cams, MeshConfig(voxel_size=0.01)).vertices) < 1.6


def test_largest_component_filter_on_two_spheres():
    big, small = (np.array([0.0, 0.0, 0.0]), 0.4), (np.array([1.2, 0.0, 0.0]), 0.2)
    cams = ring_cameras((0.6, 0, 0), 2.5, 6)
    views = [render_spheres(c, [(big[0], big[1], RED, RED), (small[0], small[1], BLUE, BLUE)]) for c in cams]
    depths = [v[0] for v in views]
    cfg = dict(voxel_size=0.015)
    both = fuse_tsdf(depths, None, cams, MeshConfig(largest_component=False, **cfg))
    one = fuse_tsdf(depths, None, cams, MeshConfig(largest_component=True, **cfg))
    near_small = lambda m: np.linalg.norm(m.vertices - small[0], axis=1) < small[1] + 0.05
    assert near_small(both).sum() > 100
    assert near_small(one).sum() == 0
    # all that is left is the big sphere (2 voxels: low-res views with occlusion edges)
    assert np.abs(np.linalg.norm(one.vertices - big[0], axis=1) - big[1]).max() < 2 * cfg["voxel_size"]


def test_empty_and_bad_inputs(sphere_views):
    centre, r, cams, depths, colors = sphere_views
    with pytest.raises(ValueError, match="all 2 depth maps are empty"):
        fuse_tsdf([np.zeros_like(depths[0])] * 2, None, cams[:2], MeshConfig(voxel_size=0.01))
    with pytest.raises(EmptyMeshError, match="empty mesh"):  # every depth beyond depth_trunc
        fuse_tsdf(depths[:2], None, cams[:2], MeshConfig(voxel_size=0.01, depth_trunc=0.5))
    with pytest.raises(ValueError, match="3 depth maps but 2 cameras"):
        fuse_tsdf(depths[:3], None, cams[:2], MeshConfig(voxel_size=0.01))
    with pytest.raises(ValueError, match=r"depths\[1\] has shape"):
        fuse_tsdf([depths[0], depths[1][:10]], None, cams[:2], MeshConfig(voxel_size=0.01))
    with pytest.raises(ValueError, match=r"colors\[0\] is uint8"):
        fuse_tsdf(depths[:1], [(colors[0] * 255).astype(np.uint8)], cams[:1], MeshConfig(voxel_size=0.01))
    with pytest.raises(ValueError, match="unknown device"):
        fuse_tsdf(depths[:1], None, cams[:1], MeshConfig(voxel_size=0.01), device="tpu")


@pytest.mark.skipif(o3d.core.cuda.is_available(), reason="checks the CPU fallback")
def test_cuda_request_falls_back_to_cpu_with_warning(sphere_views, caplog):
    _, _, cams, depths, _ = sphere_views
    with caplog.at_level(logging.WARNING, logger="aligngs.extract.tsdf"):
        mesh = fuse_tsdf(depths[:3], None, cams[:3], MeshConfig(voxel_size=0.02), device="cuda")
    assert len(mesh.faces) > 0
    assert any("no CUDA device" in rec.getMessage() for rec in caplog.records)


@pytest.mark.cuda
@pytest.mark.skipif(not o3d.core.cuda.is_available(), reason="open3d has no CUDA device here")
def test_cuda_matches_cpu(sphere_views):
    centre, r, cams, depths, colors = sphere_views
    cfg = MeshConfig(voxel_size=0.01)
    gpu = fuse_tsdf(depths, colors, cams, cfg, device="cuda:0")
    cpu = fuse_tsdf(depths, colors, cams, cfg, device="cpu")
    assert abs(len(gpu.vertices) - len(cpu.vertices)) <= 0.01 * len(cpu.vertices)
    assert np.abs(np.linalg.norm(gpu.vertices - centre, axis=1) - r).max() < 0.01


# ---------------------------------------------------------------- real RGB-D capture

@pytest.mark.slow
def test_shelf_rgbd_fusion_matches_held_out_depth(shelf):
    depths, colors, cameras = shelf
    held = 25
    keep = [i for i in range(len(cameras)) if i != held]
    mesh = fuse_tsdf(
        [depths[i] for i in keep], [colors[i] for i in keep], [cameras[i] for i in keep],
        MeshConfig(largest_component=False),
    )
    assert len(mesh.faces) > 20_000
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(mesh.vertices), o3d.core.Tensor(mesh.faces.astype(np.uint32)))
    # 1) the held-out view's depth (not fused) lies on the mesh
    held_pts = depth_to_points(depths[held], cameras[held], stride=2)
    d_held = scene.compute_distance(o3d.core.Tensor(held_pts)).numpy()
    assert np.median(d_held) < 0.01, np.median(d_held)
    assert np.percentile(d_held, 90) < 0.02
    # 2) the mesh vertices lie on the fused depth surfaces
    fused_pts = np.concatenate([depth_to_points(depths[i], cameras[i], stride=4) for i in keep])
    d_vert, _ = cKDTree(fused_pts).query(mesh.vertices)
    assert np.median(d_vert) < 0.003, np.median(d_vert)
    # 3) vertex colours match the held-out photo where the vertex is visible in it
    K, w2c = cameras[held].K, cameras[held].w2c
    pc = mesh.vertices @ w2c[:3, :3].T + w2c[:3, 3]
    u = np.rint(pc[:, 0] / pc[:, 2] * K[0, 0] + K[0, 2]).astype(int)
    v = np.rint(pc[:, 1] / pc[:, 2] * K[1, 1] + K[1, 2]).astype(int)
    ok = (pc[:, 2] > 0) & (u >= 0) & (u < cameras[held].width) & (v >= 0) & (v < cameras[held].height)
    idx = np.flatnonzero(ok)
    vis = np.abs(depths[held][v[idx], u[idx]] - pc[idx, 2]) < 0.005
    idx = idx[vis]
    assert len(idx) > 1000
    err = np.abs(mesh.colors[idx] / 255.0 - colors[held][v[idx], u[idx]]).mean(axis=1)
    assert np.median(err) < 0.05


def test_nothing_passes_weight_threshold(sphere_views):
    _, _, cams, depths, _ = sphere_views
    with pytest.raises(EmptyMeshError, match="weight threshold 50"):
        fuse_tsdf(depths[:2], None, cams[:2], MeshConfig(voxel_size=0.02, weight_threshold=50.0))


def test_cancel_stops_fusion(sphere_views):
    from aligngs.progress import Cancelled

    _, _, cams, depths, _ = sphere_views
    polls = []

    def cancel_after_two():
        polls.append(1)
        return len(polls) > 2

    with pytest.raises(Cancelled):
        fuse_tsdf(depths, None, cams, MeshConfig(voxel_size=0.02), should_cancel=cancel_after_two)
    assert len(polls) == 3


def test_given_extent_is_a_floor(sphere_views):
    """A too-small caller extent (camera radius 0 of a single view) must not cut the depth away."""
    centre, r, cams, depths, _ = sphere_views
    cfg = MeshConfig(largest_component=False, weight_threshold=0.0)  # one view: keep single-view surface
    one = fuse_tsdf(depths[:1], None, cams[:1], cfg, extent=0.05)
    # 2 x 0.05 m would truncate everything (the sphere is 1.1 m away); derived from depth it fuses
    assert len(one.faces) > 1000
    p = resolve_tsdf_params(depths[:1], cams[:1], cfg, extent=0.05)
    assert p.extent == pytest.approx(scene_extent(cams[:1], depth_to_points(depths[0], cams[0])), rel=0.02)
    assert p.depth_trunc == pytest.approx(2 * p.extent) and p.voxel_size == pytest.approx(p.extent / 256)
    assert resolve_tsdf_params(depths[:1], cams[:1], cfg, extent=100.0).extent == 100.0  # larger: kept
    assert np.abs(np.linalg.norm(one.vertices - centre, axis=1) - r).max() < 0.02


def test_weight_threshold_counts_views_strictly(sphere_views):
    """open3d keeps weight > threshold: threshold 1 needs two views, 0 keeps what one view saw."""
    _, _, cams, depths, _ = sphere_views
    cfg = dict(voxel_size=0.02, largest_component=False)
    with pytest.raises(EmptyMeshError, match="more views than that"):
        fuse_tsdf(depths[:1], None, cams[:1], MeshConfig(weight_threshold=1.0, **cfg))
    single = fuse_tsdf(depths[:1], None, cams[:1], MeshConfig(weight_threshold=0.0, **cfg))
    two = fuse_tsdf(depths[:2], None, cams[:2], MeshConfig(weight_threshold=1.0, **cfg))  # only the overlap
    two_all = fuse_tsdf(depths[:2], None, cams[:2], MeshConfig(weight_threshold=0.0, **cfg))
    assert 0 < len(two.faces) < len(single.faces) < len(two_all.faces)
