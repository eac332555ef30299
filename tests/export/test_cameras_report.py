"""cameras.json (ours + nerfstudio fields) and atomic report JSON."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from aligngs.data.types import Camera, Frame
from aligngs.export.cameras import read_cameras_json, write_cameras_json
from aligngs.export.report import read_json, to_jsonable, write_json_atomic


def _rot(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def _cam(seed, w=640, h=480):
    rng = np.random.default_rng(seed)
    c2w = np.eye(4)
    c2w[:3, :3] = _rot(rng.normal(size=3), rng.uniform(0, np.pi))
    c2w[:3, 3] = rng.normal(size=3)
    K = np.array([[rng.uniform(300, 700), 0, w / 2 + rng.normal()], [0, rng.uniform(300, 700), h / 2 + rng.normal()], [0, 0, 1]])
    return Camera(c2w, K, w, h)


def test_cameras_round_trip_exact(tmp_path):
    cams = [_cam(i, 640 - 8 * i, 480) for i in range(4)]
    names = [f"view_{i:03d}" for i in range(4)]
    write_cameras_json(tmp_path / "cameras.json", cams, names)
    got_names, got = read_cameras_json(tmp_path / "cameras.json")
    assert got_names == names
    for a, b in zip(cams, got):
        np.testing.assert_array_equal(a.c2w, b.c2w)
        np.testing.assert_array_equal(a.K, b.K)
        assert (a.width, a.height) == (b.width, b.height)


def test_frames_and_opengl_transform(tmp_path):
    cam = _cam(7)
    frames = [Frame("a", cam), Frame("b", _cam(8))]
    write_cameras_json(tmp_path / "c.json", frames)
    doc = json.loads((tmp_path / "c.json").read_text())
    fr = doc["frames"][0]
    assert fr["name"] == "a" and fr["file_path"] == "a"
    gl = np.asarray(fr["transform_matrix"])
    # OpenGL axes: x same, y and z flipped; same position
    np.testing.assert_allclose(gl[:3, 0], cam.c2w[:3, 0])
    np.testing.assert_allclose(gl[:3, 1], -cam.c2w[:3, 1])
    np.testing.assert_allclose(gl[:3, 2], -cam.c2w[:3, 2])
    np.testing.assert_allclose(gl[:3, 3], cam.c2w[:3, 3])
    assert (fr["fl_x"], fr["fl_y"], fr["cx"], fr["cy"], fr["w"], fr["h"]) == (
        cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2], cam.width, cam.height)
    # a plain nerfstudio transforms.json (no K / c2w_opencv, top-level intrinsics) reads to the same camera
    ns = {"fl_x": fr["fl_x"], "fl_y": fr["fl_y"], "cx": fr["cx"], "cy": fr["cy"], "w": fr["w"], "h": fr["h"],
          "frames": [{"file_path": "images/a.png", "transform_matrix": fr["transform_matrix"]}]}
    (tmp_path / "transforms.json").write_text(json.dumps(ns))
    names, cams = read_cameras_json(tmp_path / "transforms.json")
    assert names == ["images/a.png"]
    np.testing.assert_allclose(cams[0].c2w, cam.c2w, atol=1e-12)
    np.testing.assert_array_equal(cams[0].K, cam.K)


def test_cameras_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="names are required"):
        write_cameras_json(tmp_path / "c.json", [_cam(0)])
    with pytest.raises(ValueError, match="has no camera"):
        write_cameras_json(tmp_path / "c.json", [Frame("x", None)])
    with pytest.raises(ValueError, match="duplicate view name 'a'"):
        write_cameras_json(tmp_path / "c.json", [_cam(0), _cam(1)], ["a", "a"])
    (tmp_path / "bad.json").write_text(json.dumps({"frames": [{"name": "a", "transform_matrix": np.eye(4).tolist()}]}))
    with pytest.raises(ValueError, match=r"frames\[0\]: missing field 'fl_x'"):
        read_cameras_json(tmp_path / "bad.json")


@dataclasses.dataclass
class _Stats:
    psnr: float
    counts: tuple


def test_write_json_atomic_converts_and_replaces(tmp_path):
    obj = {
        "f32": np.float32(0.5), "i64": np.int64(3), "b": np.bool_(True), "arr": np.arange(4).reshape(2, 2),
        "nan": float("nan"), "inf_arr": np.array([1.0, np.inf]), "path": Path("/x/y"), "tup": (1, 2),
        "dc": _Stats(31.5, (1, np.int32(2))), 7: "int key",
    }
    p = write_json_atomic(tmp_path / "sub" / "report.json", obj)
    text = p.read_text()
    back = json.loads(text)  # strict JSON (no NaN tokens)
    assert "NaN" not in text and "Infinity" not in text
    assert back == {
        "f32": 0.5, "i64": 3, "b": True, "arr": [[0, 1], [2, 3]], "nan": None, "inf_arr": [1.0, None],
        "path": "/x/y", "tup": [1, 2], "dc": {"psnr": 31.5, "counts": [1, 2]}, "7": "int key",
    }
    assert read_json(p) == back
    write_json_atomic(p, {"v": 2})
    assert read_json(p) == {"v": 2}
    assert [q.name for q in p.parent.iterdir()] == ["report.json"]  # no temporary left over


def test_write_json_atomic_failure_keeps_old_file(tmp_path):
    p = write_json_atomic(tmp_path / "r.json", {"ok": 1})
    with pytest.raises(TypeError, match=r"value at \$.a\[1\] is a object"):
        write_json_atomic(p, {"a": [1, object()]})
    assert read_json(p) == {"ok": 1}
    assert [q.name for q in tmp_path.iterdir()] == ["r.json"]
    assert to_jsonable(np.float64(math.pi)) == math.pi
