"""The importer inside real Blender (bpy 5.0 as a module), through the installed extension zip."""
from __future__ import annotations

import numpy as np
import pytest

from addon_testlib import run_driver

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def facts(addon_zip):
    return run_driver("import_synthetic", zip_path=addon_zip)


@pytest.fixture(scope="module")
def facts_y_down(addon_zip):
    return run_driver("import_synthetic", "--up", "0,-1,0", zip_path=addon_zip)


def test_collection_tree(facts):
    t = facts["tree"]
    assert facts["root"] == "AlignGS · synthetic" and facts["root_linked"]
    assert t["objects"] == ["Mesh", "Semantic Points"]
    assert set(t["children"]) == {"Classes", "Cameras"}
    assert sorted(t["children"]["Classes"]["children"]) == ["bed", "ceiling", "floor", "wall", "window"]
    assert t["children"]["Cameras"]["objects"] == [f"frame_{i:04d}" for i in range(6)]


def test_mesh_attributes(facts):
    m = facts["mesh"]
    assert m["type"] == "MESH" and m["n_faces"] == facts["n_faces"] == 5832
    assert m["attrs"]["Col"] == {"type": "FLOAT_COLOR", "domain": "POINT", "len": m["n_verts"]}
    assert m["attrs"]["class_id"] == {"type": "INT", "domain": "POINT", "len": m["n_verts"]}
    assert m["faces_match"] and m["class_id_match"] and m["matrix_identity"]
    assert m["material"] == ["AlignGS Colors"]
    assert m["color_node"] == [["ShaderNodeVertexColor", "Col"]] and m["color_node_linked"]


def test_points_native_pointcloud_and_attributes(facts):
    p = facts["points"]
    n = facts["n_points"]
    assert n == 30_000
    if facts["blender"] >= [5, 0, 0]:
        assert p["type"] == "POINTCLOUD"
    for name, kind in (("Col", "FLOAT_COLOR"), ("class_id", "INT"), ("confidence", "FLOAT"), ("radius", "FLOAT")):
        assert p["attrs"][name] == {"type": kind, "domain": "POINT", "len": n}, name
    assert p["class_id_match"] and p["confidence_match"]
    assert p["color_max_err"] < 0.51  # sRGB u8 -> linear float -> sRGB round trip
    np.testing.assert_allclose(p["positions"], p["src_positions"], atol=1e-6)  # up = +Z: no rotation


def test_up_vector_rotated_to_z(facts_y_down):
    p = facts_y_down["points"]
    src = np.asarray(p["src_positions"])
    # minimal rotation taking -Y to +Z is -90 deg about X: (x, y, z) -> (x, z, -y)
    np.testing.assert_allclose(p["positions"], np.stack([src[:, 0], src[:, 2], -src[:, 1]], 1), atol=1e-5)
    assert facts_y_down["camera_max_px_err"] < 1e-3


def test_cameras_project_like_opencv(facts):
    # K (fx=500, cx=330, cy=235 on 640x480: off-centre principal point) and c2w reproduce OpenCV projections
    assert facts["camera_max_px_err"] < 1e-3
    assert facts["render_size"] == [640, 480]
    assert facts["camera_sensor_fit"] == "HORIZONTAL"


def test_classes_split_into_instances(facts):
    for name, c in facts["classes"].items():
        objs = c["objects"]
        meshes = {k: v for k, v in objs.items() if v["kind"] == "mesh"}
        points = {k: v for k, v in objs.items() if v["kind"] == "points"}
        assert len(meshes) == c["instances"] == len(points), name
        assert sorted(meshes) == [f"{name}.{k:03d}" for k in range(1, c["instances"] + 1)]
        assert sum(v["faces"] for v in meshes.values()) == c["n_faces"]
        assert sum(v["n"] for v in points.values()) == c["n_points"]
        for v in points.values():
            assert v["n"] == v["expected_n"] > 0
    listed = {c["name"]: c for c in facts["class_list"]}
    assert listed["floor"]["instances"] == 2 and listed["floor"]["n_faces"] == facts["classes"]["floor"]["n_faces"]
    np.testing.assert_allclose(listed["floor"]["color"], np.array([180, 120, 120]) / 255, atol=1e-6)


def test_class_toggles_hide_exactly_that_class(facts):
    off = facts["vis_one_off"]
    hidden = [name for name, vis in off.items() if not any(vis)]
    assert hidden == [facts["class_list"][0]["name"]]
    assert all(all(vis) for name, vis in off.items() if name not in hidden)
    assert all(facts["vis_one_off_root"])  # the full mesh / point cloud are not class objects
    assert [k for k, v in facts["vis_one_off_render"].items() if v] == hidden
    iso = facts["vis_isolate"]
    assert [n for n, vis in iso["state"].items() if all(vis)] == [iso["name"]]
    assert not any(any(v) for v in facts["vis_hide_all"].values())
    assert all(all(v) for v in facts["vis_show_all"].values())


def test_result_folder_import_replaces_previous(facts):
    f = facts["folder"]
    assert f["root"] == "AlignGS · from_folder" == f["scene_root"]
    assert f["roots_in_scene"] == ["AlignGS · from_folder"]  # the first import was removed
    assert f["objects_after"] == f["objects_before"]
    assert (f["n_points"], f["n_faces"]) == (facts["n_points"], facts["n_faces"])


def test_bad_result_folders_give_readable_errors(facts):
    e = facts["folder_errors"]
    assert "does not exist" in e["missing"]
    assert "no result manifest" in e["empty"] and "manifest.json" in e["empty"]
    assert "faces indexes vertex 5, expected 0..2" in e["bad_index"]
    assert "Traceback" not in "".join(e.values())
    assert facts["objects_after_errors"] == facts["folder"]["objects_after"]  # nothing half-imported
