"""Inputs as users have them: tsdf-fusion's ``camera-intrinsics.txt`` and nerfstudio's split keys."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from aligngs.cli import build_parser, build_config
from aligngs.config import DataConfig
from aligngs.data.errors import DataError
from aligngs.data.loaders import detect_format, load_scene
from aligngs.data.split import split_frames

K_TXT = "615.2 0 298.4\n0 615.2 247.5\n0 0 1\n"


def _rgbd(root, dh, k_name: str | None, n=3, h=12, w=16):
    root.mkdir(parents=True, exist_ok=True)
    if k_name:
        (root / k_name).write_text(K_TXT)
    for i in range(n):
        stem = f"frame-{i:06d}"
        dh.save_rgb(root / f"{stem}.color.png", dh.pattern(h, w, seed=i))
        dh.save_u16(root / f"{stem}.depth.png", np.full((h, w), 1000 + i))
        np.savetxt(root / f"{stem}.pose.txt", dh.rigid(i))
    return root


def test_rgbd_accepts_tsdf_fusion_intrinsics_name(tmp_path, dh):
    root = _rgbd(tmp_path, dh, "camera-intrinsics.txt")
    assert detect_format(root) == "rgbd"
    scene = load_scene(root)
    assert len(scene.frames) == 3
    np.testing.assert_allclose(scene.frames[0].camera.K, [[615.2, 0, 298.4], [0, 615.2, 247.5], [0, 0, 1]])


def test_rgbd_missing_intrinsics_names_every_accepted_file(tmp_path, dh):
    root = _rgbd(tmp_path, dh, None)
    with pytest.raises(DataError) as ei:
        load_scene(root)
    assert "camera-intrinsics.txt" in str(ei.value) and "intrinsics.K.txt" in str(ei.value)


def _transforms(tmp_path, dh, n=6, top=None, per_frame=None, missing=()):
    frames = []
    for i in range(n):
        name = f"images/f{i}.png"
        if i not in missing:
            dh.save_rgb(tmp_path / name, dh.pattern(12, 16, seed=i))
        fr = {"file_path": name, "transform_matrix": dh.rigid(i).tolist()}
        if per_frame:
            fr.update(per_frame(i))
        frames.append(fr)
    meta = {"fl_x": 20.0, "fl_y": 20.0, "w": 16, "h": 12, "frames": frames}
    meta.update(top or {})
    dh.write_json(tmp_path / "transforms.json", meta)
    return tmp_path


def _names(frames):
    return [f.name for f in frames]


def test_nerfstudio_test_filenames_define_the_split(tmp_path, dh):
    root = _transforms(tmp_path, dh, top={"train_filenames": ["images/f0.png", "images/f2.png", "images/f3.png"],
                                           "val_filenames": ["images/f5.png"],
                                           "test_filenames": ["images/f1.png", "./images/f4.png"]})
    scene = load_scene(root)
    train, test = split_frames(scene, DataConfig())
    assert _names(test) == ["images/f1.png", "images/f4.png"]  # test wins over val
    assert _names(train) == ["images/f0.png", "images/f2.png", "images/f3.png"]  # f5 is val only: not trained on
    # 'every' ignores the file's split; explicit names still win over everything
    train, test = split_frames(scene, DataConfig(split="every", test_every=3))
    assert _names(test) == ["images/f0.png", "images/f3.png"]
    _, test = split_frames(scene, DataConfig(test_names=["f2.png"]))
    assert _names(test) == ["images/f2.png"]


def test_nerfstudio_val_filenames_when_no_test_list_and_missing_images(tmp_path, dh, caplog):
    root = _transforms(tmp_path, dh, missing=(5,), top={"val_filenames": ["images/f2.png", "images/f5.png"]})
    with caplog.at_level(logging.WARNING, logger="aligngs.data"):
        scene = load_scene(root)
    assert any("val_filenames" in r.getMessage() and "f5.png" in r.getMessage() for r in caplog.records)
    train, test = split_frames(scene, DataConfig())
    assert _names(test) == ["images/f2.png"]
    assert _names(train) == ["images/f0.png", "images/f1.png", "images/f3.png", "images/f4.png"]


def test_per_frame_split_keys_and_split_errors(tmp_path, dh):
    root = _transforms(tmp_path, dh, per_frame=lambda i: {"split": "test" if i % 3 == 0 else "train"})
    train, test = split_frames(load_scene(root), DataConfig(split="scene"))
    assert _names(test) == ["images/f0.png", "images/f3.png"] and len(train) == 4


def test_split_scene_without_a_declared_split_is_an_error(tmp_path, dh):
    scene = load_scene(_transforms(tmp_path, dh))
    with pytest.raises(DataError, match="declares no train/test split"):
        split_frames(scene, DataConfig(split="scene"))
    _, test = split_frames(scene, DataConfig())  # auto falls back to test_every (8): frame 0
    assert _names(test) == ["images/f0.png"]


@pytest.mark.parametrize("top, match", [
    ({"test_filenames": "images/f1.png"}, "list of file paths"),
    ({"test_filenames": ["images/f1.png"], "train_filenames": ["images/f1.png"]}, "share 1 frame"),
])
def test_bad_split_keys_name_the_field(tmp_path, dh, top, match):
    root = _transforms(tmp_path, dh, top=top)
    with pytest.raises(DataError, match=match) as ei:
        load_scene(root)
    assert ei.value.path == root / "transforms.json"


def test_bad_per_frame_split_value(tmp_path, dh):
    root = _transforms(tmp_path, dh, per_frame=lambda i: {"split": "holdout"})
    with pytest.raises(DataError, match=r"frames\[0\]\.split"):
        load_scene(root)


def test_cli_split_flags(tmp_path):
    parser = build_parser()
    args = parser.parse_args(["reconstruct", str(tmp_path), "--out", str(tmp_path / "o")])
    assert build_config(args).data.split == "auto"
    args = parser.parse_args(["reconstruct", str(tmp_path), "--out", str(tmp_path / "o"), "--test-every", "0"])
    cfg = build_config(args)
    assert cfg.data.split == "every" and cfg.data.test_every == 0
    args = parser.parse_args(["reconstruct", str(tmp_path), "--out", str(tmp_path / "o"), "--split", "scene"])
    assert build_config(args).data.split == "scene"
