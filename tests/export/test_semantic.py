"""Result parts round trip through aligngs.wire; PLY files and classes.json carry what the splits hold."""
import json

import numpy as np
import pytest

from aligngs.data.types import Camera
from aligngs.export.ply import read_mesh_ply, read_ply
from aligngs.wire import read_parts, write_parts
from aligngs.priors.ade20k import PALETTE
from aligngs.export.semantic import export_semantic_files, write_labelled_mesh_ply, write_semantic_points_ply
from aligngs.extract.splits import split_by_class, to_result_parts

CHAIR, WALL = 19, 0  # classes of the `scene` fixture (conftest.py)

MESH_ARRAYS = {"vertices": "float32", "faces": "int32", "colors": "uint8", "class_id": "int32"}
POINT_ARRAYS = {"positions": "float32", "colors": "uint8", "class_id": "int32", "confidence": "float32"}


def test_result_parts_round_trip(scene, tmp_path):
    mesh, pts = scene
    splits = split_by_class(mesh, pts, min_instance_points=50, instance_radius=0.2)
    cams = [Camera(np.eye(4), np.diag([50.0, 50.0, 1.0]), 64, 48)]
    parts = to_result_parts(mesh, pts, splits, cams, ["v0"])
    assert [p.kind for p in parts] == ["mesh", "points", "cameras", "class", "class"]
    write_parts(tmp_path / "result", parts, scene="unit")
    manifest, back = read_parts(tmp_path / "result", mmap=False)
    assert manifest["scene"] == "unit"
    by = {p.name: p for p in back}
    m = by["mesh"]
    assert {k: str(a.dtype) for k, a in m.arrays.items()} == MESH_ARRAYS
    assert np.array_equal(m.arrays["faces"], mesh.faces) and np.array_equal(m.arrays["class_id"], mesh.vertex_attrs["class_id"])
    p = by["semantic_points"]
    assert {k: str(a.dtype) for k, a in p.arrays.items()} == POINT_ARRAYS
    assert np.array_equal(p.arrays["positions"], pts.positions)
    assert by["cameras"].meta["names"] == ["v0"] and by["cameras"].arrays["size"].tolist() == [[64, 48]]
    chair = by["class_019_chair"]
    assert chair.kind == "class"
    assert set(chair.arrays) == {"mesh_vertices", "mesh_faces", "mesh_colors", "mesh_instance",
                                 "points_positions", "points_colors", "points_confidence", "points_instance"}
    assert chair.meta["class_id"] == CHAIR and chair.meta["name"] == "chair"
    assert chair.meta["color"] == list(PALETTE[CHAIR])
    assert sorted((i["n_points"], i["n_faces"]) for i in chair.meta["instances"]) == [(100, 50), (100, 50)]
    src = [s for s in splits if s.class_id == CHAIR][0]
    assert np.array_equal(chair.arrays["points_instance"], src.points_instance)
    assert np.array_equal(chair.arrays["mesh_faces"], src.mesh.faces)
    assert chair.arrays["mesh_instance"].shape == (len(chair.arrays["mesh_vertices"]),)


def test_export_files(scene, tmp_path):
    mesh, pts = scene
    splits = split_by_class(mesh, pts, min_instance_points=50, instance_radius=0.2)
    roles = export_semantic_files(tmp_path, mesh, pts, splits)
    assert roles == {"mesh_semantic": "mesh_semantic.ply", "points_semantic": "points_semantic.ply",
                     "class_files": "classes", "classes": "classes.json"}
    ms = read_mesh_ply(tmp_path / "mesh_semantic.ply")
    assert np.array_equal(ms.vertex_attrs["class_id"], mesh.vertex_attrs["class_id"])
    assert np.array_equal(ms.colors[0], PALETTE[mesh.vertex_attrs["class_id"][0]])  # class colouring
    pv, _ = read_ply(tmp_path / "points_semantic.ply")
    assert np.array_equal(pv["class_id"], pts.class_id) and np.allclose(pv["confidence"], pts.confidence)

    doc = json.loads((tmp_path / "classes.json").read_text())
    assert [c["id"] for c in doc["classes"]] == [WALL, CHAIR]
    chair = doc["classes"][1]
    assert chair["name"] == "chair" and chair["color"] == list(PALETTE[CHAIR])
    assert (chair["n_points"], chair["n_faces"], chair["n_instances"]) == (210, 100, 2)
    total = 0
    for inst in chair["instances"]:
        ip, _ = read_ply(tmp_path / inst["files"]["points"])
        assert len(ip["x"]) == inst["n_points"] and np.all(ip["instance"] == inst["id"])
        im = read_mesh_ply(tmp_path / inst["files"]["mesh"])
        assert len(im.faces) == inst["n_faces"] and np.all(im.vertex_attrs["class_id"] == CHAIR)
        total += inst["n_points"]
    cp, _ = read_ply(tmp_path / chair["files"]["points"])
    assert len(cp["x"]) == 210 and (cp["instance"] == -1).sum() == 210 - total
    cm = read_mesh_ply(tmp_path / chair["files"]["mesh"])
    assert len(cm.faces) == 100 and cm.colors is not None


def test_labelled_writers(scene, tmp_path):
    mesh, pts = scene
    write_labelled_mesh_ply(tmp_path / "m.ply", mesh)  # RGB colouring keeps the mesh's own colours
    back = read_mesh_ply(tmp_path / "m.ply")
    assert np.array_equal(back.colors, mesh.colors) and np.allclose(back.vertex_attrs["confidence"], 1.0)
    write_semantic_points_ply(tmp_path / "p.ply", pts, color_by="class")
    pv, _ = read_ply(tmp_path / "p.ply")
    assert [pv["red"][0], pv["green"][0], pv["blue"][0]] == list(PALETTE[CHAIR])
    with pytest.raises(ValueError, match="color_by"):
        write_semantic_points_ply(tmp_path / "q.ply", pts, color_by="depth")
