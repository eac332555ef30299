"""The add-on's bpy-free modules (address, inputs, geometry, result format, job store), under the backend venv."""
from __future__ import annotations

import json

import numpy as np
import pytest

from blender_addon._vendor import wire as resultfmt
from blender_addon.core import address, geometry as geo, inputs, jobstore
from addon_testlib import make_image_folder, write_png


# ------------------------------------------------------------------------------------------------ address

@pytest.mark.parametrize("text,expected", [
    ("localhost:5555", "localhost:5555"),
    ("  tcp://127.0.0.1:6000/ ", "127.0.0.1:6000"),
    ("http://gpu-box.lan", "gpu-box.lan:5555"),
    ("HTTPS://Host :7 ", "Host:7"),
    ("[::1]:5556", "[::1]:5556"),
    ("tcp://[::1]", "[::1]:5555"),
])
def test_normalize_address(text, expected):
    assert address.normalize_address(text) == expected


@pytest.mark.parametrize("text,fragment", [
    ("", "empty"), ("host:0", "port must be"), ("host:70000", "port must be"), ("host:abc", "port must be"),
    ("a/b:5", "without a path"), ("::1:5555", "[addr]:port"), ("bad_host!:5", "not a host name"),
])
def test_bad_addresses(text, fragment):
    with pytest.raises(address.AddressError, match=None) as e:
        address.normalize_address(text)
    assert fragment in str(e.value)


def test_local_addresses_and_online_access():
    assert address.is_local("localhost:1") and address.is_local("127.3.2.1:5") and address.is_local("[::1]:5")
    assert not address.is_local("10.0.0.2:5555") and not address.is_local("example.org")
    assert address.online_block_reason("127.0.0.1:5555", False) is None
    assert address.online_block_reason("example.org:5555", True) is None
    assert "Online access is off" in address.online_block_reason("example.org:5555", False)
    assert address.endpoint(" http://localhost ") == "tcp://localhost:5555"


# ------------------------------------------------------------------------------------------------ inputs

def test_scan_folder(tmp_path):
    make_image_folder(tmp_path / "scan", 3)
    root = tmp_path / "scan"
    (root / "transforms.json").write_text("{}")
    (root / ".hidden.png").write_bytes(b"x")
    (root / "notes.md").write_text("x")
    sub = root / "images" / "a" / "b"
    sub.mkdir(parents=True)
    write_png(sub / "deep.png")
    too_deep = sub / "c"
    too_deep.mkdir()
    write_png(too_deep / "ignored.png")
    scan = inputs.scan_folder(root)
    names = [f.name for f in scan.files]
    assert names == ["frame_0000.png", "frame_0001.png", "frame_0002.png", "images/a/b/deep.png", "transforms.json"]
    assert scan.n_images == 4 and scan.nbytes == sum((root / n).stat().st_size for n in names)


def test_scan_folder_errors(tmp_path):
    with pytest.raises(inputs.InputError, match="no image folder chosen"):
        inputs.scan_folder("  ")
    with pytest.raises(inputs.InputError, match="does not exist"):
        inputs.scan_folder(tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(inputs.InputError, match="is not a folder"):
        inputs.scan_folder(tmp_path / "f.txt")
    with pytest.raises(inputs.InputError, match="no images in"):
        inputs.scan_folder(tmp_path)


def test_image_count_cache_rescans_on_change(tmp_path):
    cache = inputs.ImageCountCache()
    d = tmp_path / "c"
    d.mkdir()
    assert "no images" in cache.count(str(d))
    write_png(d / "a.png")
    assert cache.count(str(d)) == 1


# ------------------------------------------------------------------------------------------------ geometry

def test_rotation_to_z_hand_values():
    np.testing.assert_allclose(geo.rotation_to_z([0, 0, 2]), np.eye(3))
    np.testing.assert_allclose(geo.rotation_to_z([0, -1, 0]), [[1, 0, 0], [0, 0, 1], [0, -1, 0]], atol=1e-12)
    np.testing.assert_allclose(geo.rotation_to_z([0, 1, 0]), [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)
    np.testing.assert_allclose(geo.rotation_to_z([0, 0, -1]), np.diag([1, -1, -1]))
    rng = np.random.default_rng(1)
    for _ in range(20):
        u = rng.normal(size=3)
        R = geo.rotation_to_z(u)
        np.testing.assert_allclose(R @ (u / np.linalg.norm(u)), [0, 0, 1], atol=1e-9)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
        assert np.isclose(np.linalg.det(R), 1)
        # minimal: the rotation axis is perpendicular to both u and z (so vectors along u x z stay fixed)
        axis = np.cross(u, [0, 0, 1])
        if np.linalg.norm(axis) > 1e-6:
            np.testing.assert_allclose(R @ axis, axis, atol=1e-9)
    with pytest.raises(ValueError, match="non-zero"):
        geo.rotation_to_z([0, 0, 0])


def test_srgb_to_linear():
    c = np.array([[0, 10, 255], [128, 188, 64]], np.uint8)
    out = geo.srgb8_to_linear_rgba(c).reshape(2, 4)
    s = c / 255.0
    ref = np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(out[:, :3], ref, rtol=1e-6)
    np.testing.assert_array_equal(out[:, 3], 1.0)
    assert abs(out[1, 0] - 0.2158605) < 1e-6  # sRGB 128 -> 0.2158605 linear (standard table value)


def test_camera_params_hand_values():
    K = np.array([[500.0, 0, 330], [0, 510, 235], [0, 0, 1]])
    p = geo.camera_params(K, (640, 480))
    assert p.lens == pytest.approx(500 / 640 * 36)
    assert p.shift_x == pytest.approx((320 - 330) / 640)
    assert p.shift_y == pytest.approx((235 - 240) / 640)
    with pytest.raises(ValueError, match="fx > 0"):
        geo.camera_params(np.zeros((3, 3)), (4, 4))


def test_camera_matrix_world_axes():
    c2w = np.eye(4)
    c2w[:3, 3] = [1, 2, 3]
    m = geo.camera_matrix_world(c2w, np.eye(3))
    # OpenCV looks down +z with y down; a Blender camera looks down its -z with y up
    np.testing.assert_allclose(m[:3, 2], [0, 0, -1])
    np.testing.assert_allclose(m[:3, 1], [0, -1, 0])
    np.testing.assert_allclose(m[:3, 3], [1, 2, 3])


def test_split_mesh_matches_brute_force():
    rng = np.random.default_rng(0)
    nv, nf = 200, 500
    verts = rng.normal(size=(nv, 3)).astype(np.float32)
    faces = rng.integers(0, nv, (nf, 3)).astype(np.int32)
    labels = rng.integers(-1, 4, nv).astype(np.int32)
    pieces = geo.split_mesh(verts, faces, labels)
    assert [p.label for p in pieces] == sorted({int(labels[f[0]]) for f in faces})
    total = 0
    for p in pieces:
        ref = [tuple(verts[f].ravel()) for f in faces if labels[f[0]] == p.label]
        got = [tuple(p.vertices[f].ravel()) for f in p.faces]
        assert got == ref
        assert np.array_equal(p.vertices, verts[p.vertex_index])
        assert len(np.unique(p.vertex_index)) == len(p.vertex_index)  # each used vertex once
        total += len(p.faces)
    assert total == nf


def test_split_indices():
    lab = np.array([2, -1, 2, 0, -1])
    out = geo.split_indices(lab)
    assert [(k, v.tolist()) for k, v in out] == [(-1, [1, 4]), (0, [3]), (2, [0, 2])]


def test_auto_point_radius_scales_with_density():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, (10_000, 3))
    r1, r4 = geo.auto_point_radius(p), geo.auto_point_radius(p[:2500])
    assert r4 == pytest.approx(2 * r1, rel=0.05)  # 4x fewer points on the same area: 2x the spacing


# ------------------------------------------------------------------------------------------------ result format

def _parts():
    from aligngs.wire import ResultPart

    rng = np.random.default_rng(0)
    return [
        ResultPart("mesh", "mesh", {"vertices": rng.normal(size=(5, 3)).astype(np.float32),
                                    "faces": np.array([[0, 1, 2], [2, 3, 4]], np.int32),
                                    "colors": rng.integers(0, 256, (5, 3)).astype(np.uint8)}),
        ResultPart("cameras", "cameras", {"c2w": np.tile(np.eye(4, dtype=np.float32), (2, 1, 1)),
                                          "K": np.tile(np.eye(3, dtype=np.float32), (2, 1, 1)),
                                          "size": np.array([[4, 3], [4, 3]], np.int32)}, {"names": ["a", "b"]}),
        ResultPart("file", "file", {"data": np.frombuffer(b"ply", np.uint8)}, {"filename": "x.ply"}),
    ]


def test_read_result_folder_round_trip(tmp_path):
    from aligngs.wire import write_parts

    parts = _parts()
    write_parts(tmp_path / "job" / "result", parts, scene="kitchen", up=(0, -1, 0))
    manifest, got = resultfmt.read_parts(tmp_path / "job")  # a job folder holding result/ works too
    assert manifest["scene"] == "kitchen" and manifest["up"] == [0.0, -1.0, 0.0]
    assert [(p.name, p.kind) for p in got] == [(p.name, p.kind) for p in parts]
    for a, b in zip(parts, got):
        assert a.meta == b.meta and set(a.arrays) == set(b.arrays)
        for k in a.arrays:
            np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
    checked = resultfmt.check_part(got[0])
    assert checked["faces"].dtype == np.int32 and checked["colors"].dtype == np.uint8


def test_result_format_errors(tmp_path):
    P = resultfmt.ResultPart
    with pytest.raises(resultfmt.ResultFormatError, match=r"array 'vertices' has shape \[4, 2\], expected \[N,3\]"):
        resultfmt.check_part(P("m", "mesh", {"vertices": np.zeros((4, 2)), "faces": np.zeros((0, 3), int)}))
    with pytest.raises(resultfmt.ResultFormatError, match="missing array 'faces'"):
        resultfmt.check_part(P("m", "mesh", {"vertices": np.zeros((4, 3))}))
    with pytest.raises(resultfmt.ResultFormatError, match="non-finite"):
        resultfmt.check_part(P("p", "points", {"positions": np.full((2, 3), np.nan)}))
    with pytest.raises(resultfmt.ResultFormatError, match="'class_id' has shape"):
        resultfmt.check_part(P("p", "points", {"positions": np.zeros((2, 3)), "class_id": np.zeros(3, int)}))
    with pytest.raises(resultfmt.ResultFormatError, match="meta 'names' must be 1 strings"):
        resultfmt.check_part(P("c", "cameras", {"c2w": np.zeros((1, 4, 4)), "K": np.zeros((1, 3, 3)),
                                                "size": np.ones((1, 2), int)}, {"names": ["a", "b"]}))
    with pytest.raises(resultfmt.ResultFormatError, match="meta is missing 'name'"):
        resultfmt.check_part(P("k", "class", {}, {"class_id": 3}))
    with pytest.raises(resultfmt.ResultFormatError, match="version 2 is not supported"):
        resultfmt.check_manifest({"version": 2})
    d = tmp_path / "r"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"version": 1, "parts": [{"kind": "mesh",
                                                                         "arrays": {"v": "../x.npy"}}]}))
    with pytest.raises(resultfmt.ResultFormatError, match="points outside the folder"):
        resultfmt.read_parts(d)
    np.save(d / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (d / "manifest.json").write_text(json.dumps({"version": 1, "parts": [{"kind": "mesh",
                                                                         "arrays": {"v": "obj.npy"}}]}))
    with pytest.raises(resultfmt.ResultFormatError, match="not a plain .npy"):
        resultfmt.read_parts(d, mmap=False)


# ------------------------------------------------------------------------------------------------ job store

def test_jobstore_round_trip(tmp_path):
    store = jobstore.JobStore(tmp_path / "cfg" / "jobs.json")
    assert store.load() == []
    store.add(jobstore.JobEntry("job_aaaaaaaa", "localhost:5555", "room", "Scene"))
    store.add(jobstore.JobEntry("job_bbbbbbbb", "localhost:5555", "kitchen", "Scene"))
    store.update("job_aaaaaaaa", state="done")
    got = store.load()
    assert [e.job for e in got] == ["job_bbbbbbbb", "job_aaaaaaaa"]  # newest first
    assert got[1].state == "done" and got[1].created > 0
    store.remove("job_bbbbbbbb")
    assert [e.job for e in store.load()] == ["job_aaaaaaaa"]
    (tmp_path / "cfg" / "jobs.json").write_text("{not json")
    assert store.load() == []  # a damaged file reads as empty ...
    store.add(jobstore.JobEntry("job_cccccccc", "h:1"))
    assert [e.job for e in store.load()] == ["job_cccccccc"]  # ... and is replaced


# ------------------------------------------------------------------------------------------------ settings schema

def test_settings_schema_from_welcome():
    from blender_addon.core import settings as cs

    defaults = {"mode": "aligngs", "data": {"resolution": 320, "names": None},
                "train": {"iterations": 3000, "background": [0.0, 0.0, 0.0],
                          "loss": {"depth_pearson": 0.5, "w": 1, "on": True}}}
    presets = {"fast": {"train": {"iterations": 600, "loss": {"w": 0.5}}}, "balanced": {}}
    sch = {s.path: s for s in cs.schema(defaults, presets, "fast")}
    assert list(sch) == ["mode", "data.resolution", "data.names", "train.iterations", "train.background",
                         "train.loss.depth_pearson", "train.loss.w", "train.loss.on"]
    assert sch["train.iterations"].default == 600 and sch["train.iterations"].kind == "int"
    assert sch["train.loss.w"].kind == "float"  # an int default, but a preset gives it a float
    assert (sch["data.names"].kind, sch["data.names"].default) == ("json", "")
    assert (sch["train.background"].kind, sch["train.background"].default) == ("json", "[0.0,0.0,0.0]")
    assert sch["train.loss.depth_pearson"].group == "train.loss" and sch["mode"].group == "general"
    assert cs.nest({"a.b.c": 1, "a.d": 2, "e": None}) == {"a": {"b": {"c": 1}, "d": 2}, "e": None}
    assert cs.same("float", 0.10000000149011612, 0.1) and not cs.same("float", 0.123, 0.1)
    assert cs.same("json", "[0, 0,0]", "[0,0,0]") and not cs.same("int", 3, cs.UNKNOWN)
    assert cs.wire_value("float", 0.12300000339746475, "x") == 0.123 and cs.wire_value("json", "", "x") is None
    assert cs.from_text("sfm", "x") == "sfm" and cs.from_text("[1, 2]", "x") == [1, 2]
    with pytest.raises(ValueError, match="setting train.background"):
        cs.from_text("[1, 2", "train.background")


def test_wanted_parts_and_saving_a_file_part(tmp_path):
    from blender_addon._vendor.wire import PART_KINDS, ResultPart
    from blender_addon.core import fileparts

    assert fileparts.wanted_parts(True) is None
    assert fileparts.wanted_parts(False) == [k for k in PART_KINDS if k != "file"] and "mesh" in PART_KINDS
    part = ResultPart("gaussians.ply", "file", {"data": np.frombuffer(b"ply\nxyz", np.uint8)},
                      {"filename": "../gaussians.ply"})
    path = fileparts.save_file_part(part, tmp_path / "out")
    assert path == tmp_path / "out" / "gaussians.ply" and path.read_bytes() == b"ply\nxyz"


def test_choices_from_welcome():
    from blender_addon.core.settings import choices_from_welcome

    got = choices_from_welcome({"config.data.poses": ["auto", "sfm"], ".mode": ["aligngs", "3dgs"], "x": [1]},
                               {"semantic": ["auto", "none"], "depth": ["dpt"]})
    assert got == {"data.poses": ["auto", "sfm"], "mode": ["aligngs", "3dgs"],
                   "train.semantics.teacher": ["auto", "none"], "train.semantics.depth_teacher": ["dpt"]}
    assert choices_from_welcome(None, None) == {}


def test_inbox_reassembles_a_result_stream_and_names_the_job_of_a_broken_one():
    import queue
    import types

    from aligngs.wire import ResultPart, encode_header, encode_result_stream, message
    from blender_addon.core import client
    from blender_addon.core.inbox import Inbox

    conn = types.SimpleNamespace(events=queue.Queue(), info=None, address="x:1")
    inbox = Inbox(conn)
    rng = np.random.default_rng(0)
    parts = [ResultPart("points", "points", {"positions": rng.normal(size=(900, 3)).astype(np.float32)}),
             ResultPart("cameras", "cameras", {"size": np.array([[4, 3]], np.int32)}, {"names": ["a"]})]
    msgs = [[bytes(f) for f in m] for m in encode_result_stream("J" * 22, 4, parts, scene="room", up=[0.0, 0.0, 1.0],
                                                                 version=1, chunk_bytes=4000)]
    for frames in msgs + [[encode_header(message("done", 4, job="J" * 22, summary={"ok": 1}))]]:
        inbox.on_message(frames)
    got = [conn.events.get_nowait() for _ in range(conn.events.qsize())]
    kinds = [type(m).__name__ for m in got]
    assert kinds[0] == "ResultStarted" and kinds[-1] == "Done" and kinds.count("PartReceived") == 2
    assert "Error" not in kinds
    pts = next(m for m in got if isinstance(m, client.PartReceived) and m.name == "points")
    assert np.array_equal(pts.arrays["positions"], parts[0].arrays["positions"]) and (pts.index, pts.count) == (0, 2)
    assert got[-1].summary == {"ok": 1} and got[-1].manifest["scene"] == "room"

    for frames in msgs[:2]:  # result + part 0, then a chunk with the wrong offset
        inbox.on_message(frames)
    bad = json.loads(msgs[2][0])
    inbox.on_message([json.dumps(dict(bad, offset=8)).encode(), msgs[2][1]])
    last = [conn.events.get_nowait() for _ in range(conn.events.qsize())][-1]
    assert isinstance(last, client.Error) and last.code == "protocol"
    assert (last.job, last.re) == ("J" * 22, 4) and "does not fit" in last.message
