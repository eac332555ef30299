"""Numpy-only parts of the generator: geometry primitives, PLY I/O, layout and camera loop (no bpy)."""

import math

import numpy as np
import pytest
from plyfile import PlyData

from aligngs.priors.ade20k import class_id
from tools.synth.camera import camera_loop, intrinsics, look_c2w
from tools.synth.geometry import box, cylinder, merge, quad, wall_with_hole
from tools.synth.layout import make_room
from tools.synth.ply import PlyFormatError, read_labeled_ply, write_labeled_ply


def signed_volume(m):
    v = m.vertices[m.faces]
    return float(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0)


def test_box_is_closed_with_outward_normals():
    m = box((1.0, -2.0, 0.5), (0.4, 0.6, 1.0), yaw=0.7)
    assert signed_volume(m) == pytest.approx(0.4 * 0.6 * 1.0, rel=1e-9)
    assert m.area() == pytest.approx(2 * (0.24 + 0.4 + 0.6), rel=1e-9)
    centre = np.array([1.0, -2.0, 0.5])
    fc = m.vertices[m.faces].mean(1)
    assert (np.einsum("ij,ij->i", m.face_normals(), fc - centre) > 0).all()
    # metric UVs: each face's UV-space area equals its 3-D area
    uv = m.uvs
    uv_area = 0.5 * np.abs((uv[:, 1, 0] - uv[:, 0, 0]) * (uv[:, 2, 1] - uv[:, 0, 1])
                           - (uv[:, 2, 0] - uv[:, 0, 0]) * (uv[:, 1, 1] - uv[:, 0, 1]))
    assert uv_area.sum() == pytest.approx(m.area(), rel=1e-9)
    # an open face removes exactly that face's area
    assert box((0, 0, 0), (0.4, 0.6, 1.0), open_faces=("-z",)).area() == pytest.approx(m.area() - 0.24)


def test_cylinder_volume_and_normals():
    n, r, h = 64, 0.3, 1.2
    m = cylinder((0.5, 0.5, 0.0), r, h, n)
    poly_area = 0.5 * n * r * r * math.sin(2 * math.pi / n)
    assert signed_volume(m) == pytest.approx(poly_area * h, rel=1e-9)


def test_wall_with_hole_area_and_facing():
    L, H, hole, depth = 4.0, 2.5, (1.0, 2.2, 0.9, 2.1), 0.16
    m = wall_with_hole((0, 0, 0), (1, 0, 0), (0, -1, 0), L, H, hole=hole, depth=depth)
    hw, hh = hole[1] - hole[0], hole[3] - hole[2]
    assert m.area() == pytest.approx(L * H - hw * hh + 2 * (hw + hh) * depth, rel=1e-9)
    n = m.face_normals()
    fc = m.vertices[m.faces].mean(1)
    front = np.abs(fc[:, 1]) < 1e-9
    assert np.allclose(n[front], [0, -1, 0])  # the wall face looks into the room (-y here)
    reveal = ~front
    # reveal faces point towards the hole's axis
    axis = np.array([(hole[0] + hole[1]) / 2, 0.0, (hole[2] + hole[3]) / 2])
    to_axis = axis - fc[reveal]
    to_axis[:, 1] = 0
    assert (np.einsum("ij,ij->i", n[reveal], to_axis) > 0).all()
    with pytest.raises(ValueError, match="inward"):
        wall_with_hole((0, 0, 0), (1, 0, 0), (0, 1, 0), L, H)
    with pytest.raises(ValueError, match="outside wall"):
        wall_with_hole((0, 0, 0), (1, 0, 0), (0, -1, 0), L, H, hole=(3.5, 4.5, 1, 2))


def test_ply_round_trip_matches_plyfile(tmp_path):
    m = merge([box((0, 0, 0), (1, 2, 3)), quad((5, 5, 5), (1, 0, 0), (0, 1, 0))])
    cls = np.arange(len(m.vertices), dtype=np.int32) % 150
    inst = (np.arange(len(m.vertices), dtype=np.int32) * 7) - 3
    p = tmp_path / "m.ply"
    write_labeled_ply(p, m.vertices, m.faces, {"class_id": cls, "instance_id": inst})
    v, f, ints = read_labeled_ply(p)
    assert np.array_equal(v, m.vertices.astype(np.float32)) and np.array_equal(f, m.faces)
    assert np.array_equal(ints["class_id"], cls) and np.array_equal(ints["instance_id"], inst)
    ply = PlyData.read(str(p))  # an independent reader
    assert np.array_equal(np.asarray(ply["vertex"]["class_id"]), cls)
    assert np.array_equal(np.asarray(ply["vertex"]["z"]), m.vertices[:, 2].astype(np.float32))
    assert np.array_equal(np.stack(ply["face"]["vertex_indices"]), m.faces)
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(PlyFormatError, match="bytes"):
        read_labeled_ply(p)
    with pytest.raises(ValueError, match="out of range"):
        write_labeled_ply(tmp_path / "bad.ply", m.vertices, m.faces + 1000, {})


def test_intrinsics_and_look_at():
    it = intrinsics(320, 240, 66.0)
    assert it.cx == 160.0 and it.cy == 120.0 and it.fl_x == it.fl_y
    assert 2 * math.degrees(math.atan(160.0 / it.fl_x)) == pytest.approx(66.0)
    assert it.lens_mm == pytest.approx(it.fl_x / 320 * 36.0)
    c2w = look_c2w((1, 2, 1.5), yaw=math.pi / 2, pitch=-0.3, roll=0.1)
    R = c2w[:3, :3]
    assert np.allclose(R.T @ R, np.eye(3), atol=1e-12) and np.linalg.det(R) == pytest.approx(1.0)
    fwd = -R[:, 2]  # OpenGL camera looks along -z
    assert np.allclose(fwd, [0, math.cos(-0.3), math.sin(-0.3)], atol=1e-12)
    # OpenCV conversion: +z forward, +y down
    cv = c2w @ np.diag([1, -1, -1, 1])
    assert np.allclose(cv[:3, 2], fwd) and cv[2, 1] < 0


REQUIRED = ["wall", "floor", "ceiling", "bed", "cabinet", "table", "chair", "sofa", "shelf", "lamp", "windowpane",
            "door"]


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_layout_has_required_classes_and_is_deterministic(seed):
    a, b = make_room(seed), make_room(seed)
    assert [o.name for o in a.objects] == [o.name for o in b.objects]
    for oa, ob in zip(a.objects, b.objects):
        assert np.array_equal(oa.mesh.vertices, ob.mesh.vertices) and oa.materials == ob.materials
    classes = [o.class_id for o in a.objects]
    for name in REQUIRED:
        assert class_id(name) in classes, name
    assert classes.count(class_id("chair")) >= 2
    assert sorted(o.instance_id for o in a.objects) == list(range(1, len(a.objects) + 1))
    sx, sy, sz = a.size
    for o in a.objects:  # everything inside the room (walls' window reveal goes 16 cm outward)
        lo, hi = o.mesh.bbox
        assert lo[0] > -sx / 2 - 0.2 and hi[0] < sx / 2 + 0.2 and lo[1] > -sy / 2 - 0.2 and hi[1] < sy / 2 + 0.2
        assert lo[2] > -1e-9 and hi[2] < sz + 1e-9
    # furniture footprints do not overlap each other
    fp = [(o.name, o.mesh.bbox) for o in a.objects if o.class_id in
          [class_id(c) for c in ("bed", "sofa", "table", "shelf", "cabinet")]]
    for i in range(len(fp)):
        for j in range(i + 1, len(fp)):
            (na, (la, ha)), (nb, (lb, hb)) = fp[i], fp[j]
            overlap = (la[0] < hb[0]) and (lb[0] < ha[0]) and (la[1] < hb[1]) and (lb[1] < ha[1])
            assert not overlap, (na, nb)


def test_different_seeds_give_different_layouts():
    sizes = {make_room(s).size for s in range(6)}
    assert len(sizes) == 6


def test_camera_loop_is_clear_smooth_and_deterministic():
    layout = make_room(3)
    p1 = camera_loop(layout, 32, np.random.default_rng(5))
    p2 = camera_loop(layout, 32, np.random.default_rng(5))
    assert all(np.array_equal(a, b) for a, b in zip(p1, p2))
    pos = np.array([p[:3, 3] for p in p1])
    sx, sy, sz = layout.size
    assert (np.abs(pos[:, 0]) < sx / 2 - 0.4).all() and (np.abs(pos[:, 1]) < sy / 2 - 0.4).all()
    assert (pos[:, 2] > 1.2).all() and (pos[:, 2] < 1.8).all() and np.ptp(pos[:, 2]) > 0.05
    for o in layout.objects:
        if o.stuff or o.mesh.bbox[1][2] < 0.05:
            continue
        lo, hi = o.mesh.bbox
        inside = (pos[:, 0] > lo[0] - 0.3) & (pos[:, 0] < hi[0] + 0.3) & (pos[:, 1] > lo[1] - 0.3) \
            & (pos[:, 1] < hi[1] + 0.3) & (pos[:, 2] < hi[2] + 0.3)
        assert not inside.any(), o.name
    step = np.linalg.norm(np.diff(np.vstack([pos, pos[:1]]), axis=0), axis=1)
    assert step.max() < 3.0 * np.median(step)  # evenly spaced along one loop, no jumps
    fwd = np.array([-p[:3, 2] for p in p1])
    turn = np.degrees(np.arccos(np.clip((fwd * np.roll(fwd, -1, 0)).sum(1), -1, 1)))
    assert turn.max() < 30.0
    assert (fwd[:, 2] < 0).all()  # pitched down towards the furniture
