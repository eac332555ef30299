"""SSR-2D virtual views: the sampler never puts a camera inside geometry or behind the scene; the ground-truth mesh
teacher reproduces the provided label maps at the training cameras."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aligngs.config import DataConfig
from aligngs.data.loaders import load_scene
from aligngs.data.split import split_frames
from aligngs.data.types import Camera
from aligngs.train.virtual_views import (
    FreeSpace, MeshLabelTeacher, camera_neighbour_pairs, raycast_mesh, sample_virtual_cameras,
)

ROOM = Path(__file__).resolve().parents[2] / "samples" / "room"


@pytest.fixture(scope="module")
def room():
    scene = load_scene(ROOM, DataConfig(resolution=96))
    train, _ = split_frames(scene, DataConfig(resolution=96))
    return scene, train, MeshLabelTeacher.from_ply(ROOM / "gt_mesh.ply")


def _visible_from_some_camera(teacher, p, cams, margin):
    """True when the straight segment from some training camera centre to p crosses no ground-truth surface."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(teacher.vertices), o3d.core.Tensor(teacher.faces.astype(np.uint32)))
    rays, lens = [], []
    for c in cams:
        d = p - c.center
        L = float(np.linalg.norm(d))
        rays.append(np.r_[c.center, d / L])
        lens.append(L)
    t = scene.cast_rays(o3d.core.Tensor(np.asarray(rays, np.float32)))["t_hit"].numpy()
    return bool(np.any(t > np.asarray(lens) + margin))


def test_sampler_never_inside_geometry_or_behind_the_scene(room):
    scene, train, teacher = room
    cams = [f.camera for f in train]
    fs = FreeSpace(cams, [f.depth for f in train])
    rng = np.random.default_rng(0)
    virt = sample_virtual_cameras(cams, 40, rng, free_space=fs, max_shift=0.5, max_rotation_deg=15)
    assert len(virt) >= 30
    import json

    meta = json.loads((ROOM / "scene.json").read_text())
    lo, hi = np.array(meta["room_bbox_min"]), np.array(meta["room_bbox_max"])
    dist_all = []
    for v in virt:
        c = v.center
        assert np.all(c > lo) and np.all(c < hi), f"virtual camera outside the room: {c}"
        # not inside any object: some training camera sees the centre with nothing in between
        assert _visible_from_some_camera(teacher, c, cams, margin=0.0), f"virtual camera inside geometry: {c}"
        _, depth = raycast_mesh(teacher.vertices, teacher.faces, v.scaled(24, 18))
        assert (depth > 0).mean() > 0.95  # it looks at the scene, not out of it
        dist_all.append(np.median(depth[depth > 0]))
    assert min(dist_all) > 0.2  # never pressed against a surface
    # the sampler's own test rejects points behind the training depth: a point behind a wall, inside the bed
    behind_wall = np.array([[0.0, meta["room_bbox_min"][1] - 0.3, 1.2]])
    assert not fs.free(behind_wall).any()
    bed = next(o for o in meta["objects"] if o["name"] == "bed")
    inside_bed = (np.array(bed["bbox_min"]) + np.array(bed["bbox_max"])) / 2
    inside_bed[2] = bed["bbox_min"][2] + 0.5 * (bed["bbox_max"][2] - bed["bbox_min"][2]) * 0.5
    assert not fs.free(inside_bed[None]).any()
    # and it accepts the training camera centres themselves (free space by definition)
    assert fs.free(np.stack([c.center for c in cams])).mean() > 0.8


def test_sampler_interpolates_between_neighbours(room):
    _, train, _ = room
    cams = [f.camera for f in train]
    pairs = camera_neighbour_pairs(cams)
    assert pairs and all(i < j for i, j in pairs)
    virt = sample_virtual_cameras(cams, 10, np.random.default_rng(1), interpolate_share=1.0, max_shift=0.0,
                                  max_rotation_deg=0.0)
    C = np.stack([c.center for c in cams])
    for v in virt:
        # on a segment between a neighbour pair, strictly inside it (t in [0.2, 0.8])
        ok = False
        for i, j in pairs:
            d = C[j] - C[i]
            t = float((v.center - C[i]) @ d / (d @ d))
            if 0.19 < t < 0.81 and np.linalg.norm(C[i] + t * d - v.center) < 1e-6:
                ok = True
        assert ok
        assert np.allclose(v.c2w[:3, :3] @ v.c2w[:3, :3].T, np.eye(3), atol=1e-6)


def test_mesh_teacher_reproduces_provided_labels(room):
    _, train, teacher = room
    f = train[0]
    lab, inst, depth = teacher.labels(f.camera)
    known = f.labels >= 0
    assert np.mean(lab[known] == f.labels[known]) > 0.9
    ok = (f.depth > 0) & (depth > 0)
    assert np.median(np.abs(depth[ok] - f.depth[ok])) < 0.02
    assert inst is not None and np.mean(inst[known] == f.extras["instance"][known]) > 0.9
    scores, valid = teacher(f.camera)
    assert scores.shape == (150, *lab.shape) and (scores.argmax(0)[valid] == lab[valid]).all()
    # a degrading teacher: its function sees the labels and instances of the view
    seen = {}

    def degrade(l, i):
        seen["args"] = (l.copy(), None if i is None else i.copy())
        return np.where(l == 0, 3, l)

    t2 = MeshLabelTeacher(teacher.vertices, teacher.faces, np.zeros(len(teacher.vertices), int), None, degrade)
    s2, v2 = t2(f.camera)
    assert (s2.argmax(0)[v2] == 3).all() and seen["args"][1] is None


def test_consistency_term_trains_semantics_only_and_caches_the_teacher():
    from types import SimpleNamespace

    from aligngs.model.gaussians import GaussianModel
    from aligngs.train.virtual_views import VirtualViewConsistency

    xs, ys = np.meshgrid(np.linspace(-0.5, 0.5, 16), np.linspace(-0.4, 0.4, 12), indexing="ij")
    pts = np.c_[xs.ravel(), ys.ravel(), np.zeros(xs.size)].astype(np.float32)
    model = GaussianModel.from_points(pts, np.full_like(pts, 0.5), sh_degree=0, init_opacity=0.9, semantic_dim=5)
    with torch.no_grad():
        model.params["scales"].fill_(np.log(0.04))
    K = np.array([[40.0, 0, 15.5], [0, 40.0, 11.5], [0, 0, 1]])
    cams = []
    for dz in (-2.0, -3.0):  # one behind the other: the far camera sees the space around the near one
        c2w = np.eye(4)
        c2w[:3, 3] = [0.0, 0, dz]
        cams.append(Camera(c2w, K, 32, 24))
    calls = []

    def teacher(cam, rgb):
        calls.append(cam)
        lab = np.where(np.arange(cam.width)[None].repeat(cam.height, 0) < cam.width // 2, 1, 3)
        s = np.full((5, cam.height, cam.width), -5.0, np.float32)
        np.put_along_axis(s, lab[None], 0.0, axis=0)
        return s, np.ones(lab.shape, bool)

    depths = [np.full((24, 32), 2.0, np.float32), np.full((24, 32), 3.0, np.float32)]
    term = VirtualViewConsistency(cams, teacher, from_step=3, pool_size=3, sensor_depths=depths, seed=0,
                                  sampler={"max_shift": 0.5, "max_rotation_deg": 3.0})
    assert not term.active(2) and term.active(3)
    opt = torch.optim.Adam([model.params["semantics"]], lr=0.1)
    losses = []
    for step in range(3, 15):
        ctx = SimpleNamespace(step=step, model=model, gt=torch.zeros(1), cache={})
        loss = term(ctx)
        opt.zero_grad()
        for p in model.params.values():
            p.grad = None
        loss.backward()
        for k in ("means", "scales", "opacities", "quats"):
            assert model.params[k].grad is None or float(model.params[k].grad.abs().sum()) == 0.0
        assert float(model.params["semantics"].grad.abs().sum()) > 0
        opt.step()
        losses.append(float(loss))
    assert len(term.pool) == 3 and len(calls) == 3  # the teacher ran once per virtual pose
    assert losses[-1] < 0.5 * losses[0]
