"""Objects from identities: two touching objects end in two splits where connected components merge them."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from aligngs.data.types import Camera, TriMesh
from aligngs.extract.instances import (
    filter_mesh_by_instance, highlight_colors, instance_name, objects_of_instances, select_gaussians_by_object,
    split_by_identity,
)
from aligngs.extract.splits import split_by_class
from aligngs.model.gaussians import GaussianModel
from aligngs.model.identity import IdentityClassifier, add_identities
from aligngs.render.view import ViewTensors
from aligngs.train.objects import IdentityGrouping, render_channels

CHAIR, WALL = 19, 0


def _touching_boxes(n=12, step=0.02):
    """Points on two chair-class slabs that touch at x = 0 (object 1: x < 0, object 2: x >= 0) + a wall far away."""
    g = np.stack(np.meshgrid(np.arange(-n, n), np.arange(n), np.arange(3), indexing="ij"), -1).reshape(-1, 3) * step
    obj = np.where(g[:, 0] < 0, 1, 2)
    wall = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2) * step
    wall = np.c_[wall, np.full(len(wall), 3.0)]
    pos = np.concatenate([g, wall]).astype(np.float32)
    cls = np.concatenate([np.full(len(g), CHAIR), np.full(len(wall), WALL)]).astype(np.int32)
    oid = np.concatenate([obj, np.full(len(wall), 3)]).astype(np.int32)
    pts = {"positions": pos, "colors": np.full((len(pos), 3), 128, np.uint8), "class_id": cls,
           "confidence": np.ones(len(pos), np.float32)}
    return pts, oid


def test_identity_split_separates_touching_objects_components_merge_them():
    pts, oid = _touching_boxes()
    comp = split_by_class(None, pts, min_instance_points=20)
    chair_c = next(s for s in comp if s.class_id == CHAIR)
    assert len(chair_c.instances) == 1  # touching -> one component
    ident = split_by_identity(None, pts, None, oid, min_instance_points=20)
    chair = next(s for s in ident if s.class_id == CHAIR)
    assert len(chair.instances) == 2
    assert [i.name for i in chair.instances] == ["chair_0", "chair_1"]
    assert {i.object_id for i in chair.instances} == {1, 2}
    assert all(i.source == "identity" for i in chair.instances)
    # every chair point belongs to the instance of its object
    sel = pts["class_id"] == CHAIR
    for inst in chair.instances:
        assert set(np.unique(oid[sel][chair.points_instance == inst.id])) == {inst.object_id}
    # a few mislabelled / unseen elements join their nearest instance instead of forming fragments
    noisy = oid.copy()
    noisy[np.nonzero(sel)[0][:5]] = 3  # object 3 is the wall's: not a chair object
    noisy[np.nonzero(sel)[0][5:8]] = -1
    chair2 = next(s for s in split_by_identity(None, pts, None, noisy, min_instance_points=20) if s.class_id == CHAIR)
    assert len(chair2.instances) == 2 and (chair2.points_instance >= 0).all()
    assert objects_of_instances(ident, [(CHAIR, 0), (CHAIR, 1)]) == [i.object_id for i in chair.instances]


def test_identity_split_falls_back_to_components_and_handles_mesh():
    pts, oid = _touching_boxes()
    no_ids = np.full(len(oid), -1)
    sp = split_by_identity(None, pts, None, no_ids, min_instance_points=20)
    chair = next(s for s in sp if s.class_id == CHAIR)
    assert len(chair.instances) == 1 and chair.instances[0].source == "components"
    # a mesh: two touching grids of one class; object per vertex by x
    xs, ys = np.meshgrid(np.arange(-5, 5), np.arange(5), indexing="ij")
    V = np.c_[xs.ravel() * 0.1, ys.ravel() * 0.1, np.zeros(xs.size)].astype(np.float32)
    idx = np.arange(V.shape[0]).reshape(10, 5)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel()
    F = np.concatenate([np.c_[a, b, c], np.c_[b, d, c]]).astype(np.int32)
    mesh = TriMesh(V, F, None, {"class_id": np.full(len(V), CHAIR, np.int32)})
    vobj = np.where(V[:, 0] < 0, 4, 7)
    sp = split_by_identity(mesh, None, vobj, None, min_instance_points=5, min_instance_faces=5)
    assert len(sp) == 1 and len(sp[0].instances) == 2
    assert len(split_by_class(mesh, None, min_instance_points=5)[0].instances) == 1
    m0 = filter_mesh_by_instance(sp[0].mesh, sp[0].mesh_instance, [0], "extract")
    m1 = filter_mesh_by_instance(sp[0].mesh, sp[0].mesh_instance, [0], "remove")
    assert m0.faces.shape[0] + m1.faces.shape[0] < F.shape[0]  # faces across the seam go to neither
    assert m0.faces.shape[0] > 0 and m1.faces.shape[0] > 0
    assert "object_id" not in sp[0].mesh.vertex_attrs


def test_instance_editing_helpers():
    p = np.array([[0.9, 0.1, 0.0], [0.5, 0.45, 0.05], [0.1, 0.2, 0.7]])
    assert select_gaussians_by_object(p, [1], threshold=None).tolist() == [False, False, False]
    assert select_gaussians_by_object(p, [1], threshold=0.3).tolist() == [False, True, False]
    assert select_gaussians_by_object(p, [1], threshold=0.3, mode="remove").tolist() == [True, False, True]
    assert select_gaussians_by_object(p, [2, 0], threshold=None).tolist() == [True, True, True]
    with pytest.raises(ValueError):
        select_gaussians_by_object(p, [3])
    h = highlight_colors(np.full((2, 3), 100, np.uint8), np.array([True, False]))
    assert h.tolist() == [[255, 200, 0], [35, 35, 35]]
    assert instance_name("coffee table", 2) == "coffee_table_2"


def _scene():
    """Two touching flat patches of Gaussians (left: object 1, right: object 2) seen by 3 cameras."""
    xs, ys = np.meshgrid(np.linspace(-0.5, 0.5, 24), np.linspace(-0.25, 0.25, 12), indexing="ij")
    pts = np.c_[xs.ravel(), ys.ravel(), np.zeros(xs.size)].astype(np.float32)
    model = GaussianModel.from_points(pts, np.full_like(pts, 0.5), sh_degree=0, init_opacity=0.9)
    with torch.no_grad():
        model.params["scales"].fill_(math.log(0.03))
    obj = np.where(pts[:, 0] < 0, 1, 2)
    cams = []
    for dx in (-0.2, 0.0, 0.2):
        c2w = np.eye(4)
        c2w[:3, 3] = [dx, 0.0, -2.0]
        cams.append(Camera(c2w, np.array([[60.0, 0, 31.5], [0, 60.0, 19.5], [0, 0, 1]]), 64, 40))
    return model, pts, obj, cams


def test_trained_identities_split_two_touching_objects():
    torch.manual_seed(0)
    model, pts, obj, cams = _scene()
    # ground-truth object maps: render the one-hot object of each Gaussian, argmax where covered
    maps = {}
    onehot = torch.nn.functional.one_hot(torch.from_numpy(obj), 3).float()
    for i, cam in enumerate(cams):
        model.params["gt"] = torch.nn.Parameter(onehot, requires_grad=False)
        img = render_channels(model, ViewTensors.of(cam, "cpu"), ["gt"])["gt"]
        del model.params["gt"]
        m = img.argmax(0)
        m[img.sum(0) < 0.5] = 0
        maps[f"v{i}"] = m.numpy()
    assert all(set(np.unique(m)) >= {1, 2} for m in maps.values())
    add_identities(model, 16, seed=0)
    clf = IdentityClassifier(16, 8)
    term = IdentityGrouping(clf, maps, weight=1.0, reg3d_weight=2.0, reg3d_k=5, reg3d_every=5, reg3d_sample=100)
    opt = torch.optim.Adam([{"params": [model.params["identities"]], "lr": 0.05},
                            {"params": clf.parameters(), "lr": 0.01}])
    first = None
    for step in range(80):
        i = step % len(cams)
        ctx = SimpleNamespace(step=step, frame=SimpleNamespace(name=f"v{i}"), view=ViewTensors.of(cams[i], "cpu"),
                              model=model, gt=torch.zeros(1), cache={}, workers=None)  # StepContext's fields
        loss = term(ctx)
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        # only identities (and the classifier) learn: geometry gets no gradient from the detached pass
        assert model.params["means"].grad is None or model.params["means"].grad.abs().sum() == 0
        opt.step()
    assert float(loss) < 0.5 * first
    oid, _ = clf.object_ids(model.params["identities"].detach())
    agree = max(np.mean((oid == 1) == (obj == 1)), np.mean((oid == 2) == (obj == 2)))
    assert agree > 0.95
    points = {"positions": pts, "colors": np.full((len(pts), 3), 128, np.uint8),
              "class_id": np.full(len(pts), CHAIR, np.int32), "confidence": np.ones(len(pts), np.float32)}
    comp = split_by_class(None, points, min_instance_points=20)
    ident = split_by_identity(None, points, None, oid, min_instance_points=20)
    assert len(comp[0].instances) == 1
    assert len(ident[0].instances) == 2
    # each identity instance is one of the two objects
    for inst in ident[0].instances:
        members = obj[ident[0].points_instance == inst.id]
        assert np.mean(members == np.bincount(members).argmax()) > 0.95
