"""Generic PLY, mesh and point-cloud files: exact round trips, raw bytes, and interop with open3d/plyfile."""
from __future__ import annotations

import struct

import numpy as np
import open3d as o3d
import pytest
from plyfile import PlyData

from aligngs.data.types import TriMesh
from aligngs.export.ply import read_mesh_ply, read_ply, write_mesh_ply, write_ply, write_points_ply


def _header_and_body(path):
    raw = path.read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    return raw[:end].decode("ascii").splitlines(), raw[end:]


def test_write_ply_header_and_bytes_by_hand(tmp_path):
    p = write_ply(
        tmp_path / "a.ply",
        {"x": np.array([1.5, -2.0], np.float32), "label": np.array([7, -3], np.int32), "ok": np.array([True, False])},
        faces=np.array([[0, 1, 1]], np.int64),
    )
    header, body = _header_and_body(p)
    assert header == [
        "ply",
        "format binary_little_endian 1.0",
        "element vertex 2",
        "property float x",
        "property int label",
        "property uchar ok",
        "element face 1",
        "property list uchar int vertex_indices",
        "end_header",
    ]
    expected = struct.pack("<fiB", 1.5, 7, 1) + struct.pack("<fiB", -2.0, -3, 0) + struct.pack("<B3i", 3, 0, 1, 1)
    assert body == expected


def test_round_trip_exact_all_dtypes(tmp_path):
    rng = np.random.default_rng(1)
    vertex = {
        "x": rng.normal(size=5).astype(np.float32),
        "d": rng.normal(size=5),  # float64 stays float64
        "u8": np.array([0, 1, 2, 254, 255], np.uint8),
        "i8": np.array([-128, -1, 0, 1, 127], np.int8),
        "u16": np.array([0, 1, 2, 3, 65535], np.uint16),
        "i16": np.array([-32768, 0, 1, 2, 32767], np.int16),
        "u32": np.array([0, 1, 2, 3, 2**32 - 1], np.uint32),
        "i32": np.array([-(2**31), 0, 5, 6, 2**31 - 1], np.int32),
    }
    faces = np.array([[0, 1, 2], [2, 3, 4], [4, 0, 1]], np.int32)
    write_ply(tmp_path / "b.ply", vertex, faces)
    got, got_faces = read_ply(tmp_path / "b.ply")
    assert list(got) == list(vertex)
    for k, v in vertex.items():
        assert got[k].dtype == v.dtype, k
        np.testing.assert_array_equal(got[k], v)
    np.testing.assert_array_equal(got_faces, faces)
    assert got_faces.dtype == np.int32
    # plyfile's own (slow, list-by-list) reader sees the same faces: the fast writer is standard PLY
    ref = PlyData.read(str(tmp_path / "b.ply"), mmap=False)
    np.testing.assert_array_equal(np.stack(ref["face"]["vertex_indices"]), faces)


def test_quads_points_only_and_int64(tmp_path):
    quads = np.array([[0, 1, 2, 3]], np.int32)
    write_ply(tmp_path / "q.ply", {"x": np.zeros(4, np.float32)}, quads)
    _, f = read_ply(tmp_path / "q.ply")
    np.testing.assert_array_equal(f, quads)
    write_ply(tmp_path / "p.ply", {"id": np.array([1, 2], np.int64)})
    v, f = read_ply(tmp_path / "p.ply")
    assert f is None and v["id"].dtype == np.int32 and v["id"].tolist() == [1, 2]


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(ValueError, match="'y' has 3 values, expected 2"):
        write_ply(tmp_path / "x.ply", {"x": np.zeros(2), "y": np.zeros(3)})
    with pytest.raises(ValueError, match=r"face indices must lie in \[0, 2\)"):
        write_ply(tmp_path / "x.ply", {"x": np.zeros(2)}, np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="outside int32"):
        write_ply(tmp_path / "x.ply", {"x": np.array([2**40])})
    with pytest.raises(ValueError, match="not a plain identifier"):
        write_ply(tmp_path / "x.ply", {"bad name": np.zeros(2)})
    with pytest.raises(ValueError, match="cannot store"):
        write_ply(tmp_path / "x.ply", {"c": np.zeros(2, np.complex64)})
    assert not list(tmp_path.iterdir())  # nothing half-written left behind
    (tmp_path / "junk.ply").write_bytes(b"not a ply")
    with pytest.raises(ValueError, match="junk.ply is not a readable PLY"):
        read_ply(tmp_path / "junk.ply")
    with pytest.raises(FileNotFoundError, match="missing.ply"):
        read_ply(tmp_path / "missing.ply")


def test_mesh_round_trip_with_attrs_and_open3d_interop(tmp_path):
    mesh = TriMesh(
        vertices=np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32),
        faces=np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1]], np.int32),
        colors=np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8),
        vertex_attrs={"class_id": np.array([3, 3, -1, 149], np.int32), "confidence": np.array([0.5, 1, 0, 0.25], np.float32)},
    )
    p = write_mesh_ply(tmp_path / "m.ply", mesh)
    header, _ = _header_and_body(p)
    assert header[3:12] == [
        "property float x", "property float y", "property float z",
        "property uchar red", "property uchar green", "property uchar blue",
        "property int class_id", "property float confidence",
        "element face 3",
    ]
    back = read_mesh_ply(p)
    np.testing.assert_array_equal(back.vertices, mesh.vertices)
    np.testing.assert_array_equal(back.faces, mesh.faces)
    np.testing.assert_array_equal(back.colors, mesh.colors)
    assert list(back.vertex_attrs) == ["class_id", "confidence"]
    for k in mesh.vertex_attrs:
        np.testing.assert_array_equal(back.vertex_attrs[k], mesh.vertex_attrs[k])
    o3 = o3d.io.read_triangle_mesh(str(p))
    np.testing.assert_allclose(np.asarray(o3.vertices), mesh.vertices)
    np.testing.assert_array_equal(np.asarray(o3.triangles), mesh.faces)
    np.testing.assert_allclose(np.asarray(o3.vertex_colors) * 255, mesh.colors, atol=1e-4)


def test_points_float_colors_and_multichannel_attrs(tmp_path):
    pos = np.array([[0, 1, 2], [3, 4, 5]], np.float64)
    cols = np.array([[0.0, 0.5, 1.0], [1.2, -0.1, 0.2]], np.float32)  # rounded, clipped to 0..255
    p = write_points_ply(tmp_path / "p.ply", pos, cols, {"class_id": np.array([1, 2], np.int32), "sem": np.eye(2, 3, dtype=np.float32)})
    v, f = read_ply(p)
    assert f is None
    assert list(v) == ["x", "y", "z", "red", "green", "blue", "class_id", "sem_0", "sem_1", "sem_2"]
    assert v["x"].dtype == np.float32 and v["red"].dtype == np.uint8
    assert np.stack([v["red"], v["green"], v["blue"]], 1).tolist() == [[0, 128, 255], [255, 0, 51]]
    np.testing.assert_array_equal(np.stack([v["sem_0"], v["sem_1"], v["sem_2"]], 1), np.eye(2, 3))
    pc = o3d.io.read_point_cloud(str(p))
    np.testing.assert_allclose(np.asarray(pc.points), pos)
    with pytest.raises(ValueError, match="already used"):
        write_points_ply(tmp_path / "q.ply", pos, None, {"x": np.zeros(2)})
    with pytest.raises(ValueError, match="colors must be"):
        write_points_ply(tmp_path / "q.ply", pos, np.zeros((3, 3)))
