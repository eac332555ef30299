"""The committed sample (samples/room): files, formats, and ground truth that agrees with itself.

Checks the sample against its own GT mesh with an independent re-implementation of the conventions:
depth back-projected through transforms.json (OpenCV conversion, K from fl/cx/cy, pixel centres at +0.5)
must land on the mesh, and each pixel's label must be the class of the mesh face it lands on.
No bpy needed.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plyfile import PlyData
from scipy.ndimage import binary_erosion
from scipy.spatial import cKDTree

from aligngs.priors.ade20k import CLASS_NAMES, class_id

ROOT = Path(__file__).resolve().parents[2] / "samples" / "room"
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


@pytest.fixture(scope="module")
def sample():
    if not (ROOT / "transforms.json").is_file():
        pytest.fail(f"bundled sample missing: {ROOT}/transforms.json")
    T = json.loads((ROOT / "transforms.json").read_text())
    scene = json.loads((ROOT / "scene.json").read_text())
    split = json.loads((ROOT / "split.json").read_text())
    return T, scene, split


@pytest.fixture(scope="module")
def mesh():
    ply = PlyData.read(str(ROOT / "gt_mesh.ply"))
    V = np.stack([np.asarray(ply["vertex"][k], np.float64) for k in "xyz"], 1)
    F = np.stack(ply["face"]["vertex_indices"]).astype(np.int64)
    cls = np.asarray(ply["vertex"]["class_id"]).astype(np.int64)
    inst = np.asarray(ply["vertex"]["instance_id"]).astype(np.int64)
    # every triangle lies on one object: its three vertices agree on class and instance
    assert (cls[F] == cls[F[:, :1]]).all() and (inst[F] == inst[F[:, :1]]).all()
    A, B, C = V[F[:, 0]], V[F[:, 1]], V[F[:, 2]]
    # dense surface samples (~2 cm) that remember their triangle: candidates for exact distances
    rng = np.random.default_rng(0)
    area = 0.5 * np.linalg.norm(np.cross(B - A, C - A), axis=1)
    n = np.maximum(1, np.ceil(area / 0.02**2)).astype(int)
    tri = np.repeat(np.arange(len(F)), n)
    r1, r2 = rng.random(len(tri)), rng.random(len(tri))
    s = np.sqrt(r1)
    pts = (1 - s)[:, None] * A[tri] + (s * (1 - r2))[:, None] * B[tri] + (s * r2)[:, None] * C[tri]
    pts = np.concatenate([pts, (A + B + C) / 3])
    tri = np.concatenate([tri, np.arange(len(F))])
    return {"V": V, "F": F, "A": A, "B": B, "C": C, "tri_cls": cls[F[:, 0]], "tri_inst": inst[F[:, 0]],
            "vcls": cls, "vinst": inst, "tree": cKDTree(pts), "tri": tri}


def closest_point_on_triangles(p, a, b, c):
    """Exact closest point on triangle (a, b, c) to p, row-wise (Ericson, Real-Time Collision Detection 5.1.5)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp, cp = p - b, p - c
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    out = np.empty_like(p)
    done = np.zeros(len(p), bool)

    def put(mask, val):
        m = mask & ~done
        out[m] = val[m]
        done[m] = True

    with np.errstate(divide="ignore", invalid="ignore"):
        put((d1 <= 0) & (d2 <= 0), a)
        put((d3 >= 0) & (d4 <= d3), b)
        put((d6 >= 0) & (d5 <= d6), c)
        put((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + (d1 / (d1 - d3))[:, None] * ab)
        put((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + (d2 / (d2 - d6))[:, None] * ac)
        e = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        put((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), b + e[:, None] * (c - b))
        den = 1.0 / (va + vb + vc)
        put(np.ones(len(p), bool), a + ab * (vb * den)[:, None] + ac * (vc * den)[:, None])
    return out


def test_closest_point_reference():
    a, b, c = np.array([[0.0, 0, 0]]), np.array([[1.0, 0, 0]]), np.array([[0.0, 1, 0]])
    cases = {(0.2, 0.2, 0.5): (0.2, 0.2, 0), (-1, -1, 0): (0, 0, 0), (2, -1, 1): (1, 0, 0),
             (0.5, -2, 0): (0.5, 0, 0), (1, 1, 0): (0.5, 0.5, 0), (-3, 0.5, 0): (0, 0.5, 0)}
    for p, q in cases.items():
        got = closest_point_on_triangles(np.array([p], float), a, b, c)[0]
        assert np.allclose(got, q), (p, got, q)


def mesh_distance(mesh, X, k=8):
    """Exact distance to the nearest of the triangles owning the k nearest surface samples (an upper bound on
    the point-to-mesh distance, equal to it for points on or near the surface) and that triangle's id."""
    _, nn = mesh["tree"].query(X, k=k)
    best = np.full(len(X), np.inf)
    best_tri = np.zeros(len(X), np.int64)
    for j in range(k):
        t = mesh["tri"][nn[:, j]]
        q = closest_point_on_triangles(X, mesh["A"][t], mesh["B"][t], mesh["C"][t])
        d = np.linalg.norm(q - X, axis=1)
        better = d < best
        best[better], best_tri[better] = d[better], t[better]
    return best, best_tri


def load_frame(T, fr):
    rgb = Image.open(ROOT / fr["file_path"])
    depth = Image.open(ROOT / fr["depth_file_path"])
    sem = Image.open(ROOT / fr["semantic_file_path"])
    inst = Image.open(ROOT / fr["instance_file_path"])
    return rgb, depth, sem, inst


def backproject(T, fr, depth_png):
    d = depth_png.astype(np.float64) / T["depth_scale"]
    H, W = d.shape
    jj, ii = np.mgrid[0:H, 0:W]
    valid = d > 0
    x = (ii + 0.5 - T["cx"]) / T["fl_x"] * d
    y = (jj + 0.5 - T["cy"]) / T["fl_y"] * d
    Xc = np.stack([x, y, d], -1)[valid]
    c2w = np.asarray(fr["transform_matrix"], np.float64) @ GL_TO_CV
    return Xc @ c2w[:3, :3].T + c2w[:3, 3], valid


def test_transforms_keys_and_files(sample):
    T, scene, split = sample
    assert T["camera_model"] == "OPENCV" and T["depth_scale"] == 1000
    assert T["aligngs_world_up"] == [0, 0, 1] and isinstance(T["aligngs_seed"], int)
    assert T["aligngs_seed"] == scene["seed"]
    W, H = T["w"], T["h"]
    assert (W, H) == (320, 240)
    assert T["cx"] == W / 2 and T["cy"] == H / 2 and T["fl_x"] == T["fl_y"] > 0
    frames = T["frames"]
    assert len(frames) == 32
    names = [Path(f["file_path"]).stem for f in frames]
    assert len(set(names)) == len(names)
    assert split["train"] == [n for n, f in zip(names, frames) if f["split"] == "train"]
    assert split["test"] == [n for n, f in zip(names, frames) if f["split"] == "test"]
    assert (len(split["train"]), len(split["test"])) == (24, 8)
    for fr in frames:
        rgb, depth, sem, inst = load_frame(T, fr)
        assert rgb.size == depth.size == sem.size == inst.size == (W, H)
        assert rgb.mode == "RGB" and sem.mode == "L" and depth.mode in ("I;16", "I") and inst.mode in ("I;16", "I")
        M = np.asarray(fr["transform_matrix"], np.float64)
        assert M.shape == (4, 4) and np.allclose(M[3], [0, 0, 0, 1])
        R = M[:3, :3]
        assert np.allclose(R.T @ R, np.eye(3), atol=1e-6) and np.linalg.det(R) > 0.999
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert total < 12 * 2**20, f"sample is {total / 2**20:.1f} MiB"


def test_cameras_inside_room_and_outside_furniture(sample):
    T, scene, _ = sample
    lo, hi = np.array(scene["room_bbox_min"]), np.array(scene["room_bbox_max"])
    for fr in T["frames"]:
        p = np.asarray(fr["transform_matrix"])[:3, 3]
        assert (p > lo + 0.3).all() and (p < hi - 0.3).all()
        for o in scene["objects"]:
            if o["stuff"]:
                continue
            bl, bh = np.array(o["bbox_min"]), np.array(o["bbox_max"])
            assert not ((p > bl).all() and (p < bh).all()), (fr["file_path"], o["name"])


def test_scene_json_matches_mesh(sample, mesh):
    _, scene, _ = sample
    objs = scene["objects"]
    assert sorted(o["instance_id"] for o in objs) == list(range(1, len(objs) + 1))
    counts = {}
    for o in objs:
        assert CLASS_NAMES[o["class_id"]] == o["class_name"]
        counts[o["class_name"]] = counts.get(o["class_name"], 0) + 1
        sel = mesh["vinst"] == o["instance_id"]
        assert sel.any(), o["name"]
        assert (mesh["vcls"][sel] == o["class_id"]).all()
        assert np.allclose(mesh["V"][sel].min(0), o["bbox_min"], atol=1e-4)
        assert np.allclose(mesh["V"][sel].max(0), o["bbox_max"], atol=1e-4)
    for name in ("wall", "floor", "ceiling", "bed", "cabinet", "table", "sofa", "shelf", "lamp", "windowpane", "door"):
        assert counts.get(name, 0) >= 1, name
    assert counts["chair"] >= 2


def test_depth_backprojects_onto_gt_mesh(sample, mesh):
    T, _, _ = sample
    all_d = []
    for fr in T["frames"][::3]:
        depth = np.asarray(Image.open(ROOT / fr["depth_file_path"]))
        X, valid = backproject(T, fr, depth)
        assert valid.mean() > 0.99, fr["depth_file_path"]  # closed room: every ray hits something
        d, _ = mesh_distance(mesh, X)
        all_d.append(d)
    d = np.concatenate(all_d)
    # 1 mm depth quantisation allows 0.5 mm along the ray; a half-pixel convention error gives ~5 mm median
    assert np.median(d) < 0.001, f"median point-to-mesh distance {np.median(d) * 1000:.2f} mm"
    assert np.percentile(d, 95) < 0.002
    assert np.percentile(d, 99.5) < 0.01


def test_labels_match_the_mesh_faces_the_depth_lands_on(sample, mesh):
    T, scene, _ = sample
    inst_cls = {o["instance_id"]: o["class_id"] for o in scene["objects"]}
    seen_chairs: set[int] = set()
    agree_sem, agree_inst = [], []
    for fr in T["frames"][1::3]:
        depth = np.asarray(Image.open(ROOT / fr["depth_file_path"]))
        sem = np.asarray(Image.open(ROOT / fr["semantic_file_path"])).astype(np.int64)
        inst = np.asarray(Image.open(ROOT / fr["instance_file_path"])).astype(np.int64)
        # semantic map == class of the instance map, pixel for pixel (0 only where instance is 0)
        lut = np.zeros(inst.max() + 1, np.int64)
        for k, c in inst_cls.items():
            if k < len(lut):
                lut[k] = c + 1
        assert np.array_equal(sem, lut[inst]), fr["semantic_file_path"]
        X, valid = backproject(T, fr, depth)
        _, t = mesh_distance(mesh, X)
        # away from label edges (2 px), the face a pixel lands on has the pixel's class and instance
        edge = np.zeros_like(valid)
        edge[:, :-1] |= inst[:, :-1] != inst[:, 1:]
        edge[:-1, :] |= inst[:-1, :] != inst[1:, :]
        interior = binary_erosion(~edge, iterations=2)[valid]
        agree_sem.append((mesh["tri_cls"][t] + 1 == sem[valid])[interior])
        agree_inst.append((mesh["tri_inst"][t] == inst[valid])[interior])
    assert np.concatenate(agree_sem).mean() > 0.99
    assert np.concatenate(agree_inst).mean() > 0.99
    for fr in T["frames"]:
        inst = np.asarray(Image.open(ROOT / fr["instance_file_path"]))
        seen_chairs |= {int(k) for k in np.unique(inst) if inst_cls.get(int(k)) == class_id("chair")}
    assert len(seen_chairs) >= 2  # instances matter: two chairs are seen


def test_rgb_is_textured_and_exposed(sample):
    T, _, _ = sample
    for fr in T["frames"][::4]:
        rgb = np.asarray(Image.open(ROOT / fr["file_path"])).astype(np.float64)
        lum = rgb.mean(-1)
        assert 60 < lum.mean() < 200, fr["file_path"]
        assert (lum >= 254).mean() < 0.05  # little clipping
        # texture everywhere: local 5x5 std above ~2 levels on most of the image
        from scipy.ndimage import uniform_filter
        m = uniform_filter(lum, 5)
        sd = np.sqrt(np.maximum(uniform_filter(lum**2, 5) - m**2, 0))
        assert (sd > 2.0).mean() > 0.6, f"{fr['file_path']}: too many flat areas"
