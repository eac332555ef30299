"""RGB-D folders, plain image folders and train/test splits on tmp files."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from aligngs.config import DataConfig
from aligngs.data.errors import DataError
from aligngs.data.loaders import detect_format, load_scene
from aligngs.data.split import evenly_spaced, split_frames
from aligngs.data.types import Frame, Scene

K_TXT = "615.2 0 298.4\n0 615.2 247.5\n0 0 1\n"


def _rgbd(root, dh, n=3, h=12, w=16):
    root.mkdir(parents=True, exist_ok=True)
    (root / "intrinsics.K.txt").write_text(K_TXT)
    for i in range(n):
        stem = f"frame-{i * 2 + 15:06d}"
        dh.save_rgb(root / f"{stem}.color.png", dh.pattern(h, w, seed=i))
        dh.save_u16(root / f"{stem}.depth.png", (np.arange(h * w).reshape(h, w) * 11 + i) % 5000)
        np.savetxt(root / f"{stem}.pose.txt", dh.rigid(i))
    return root


def test_rgbd_loads_depth_in_metres_and_poses(tmp_path, dh):
    root = _rgbd(tmp_path, dh)
    assert detect_format(root) == "rgbd"
    scene = load_scene(root)
    assert scene.source == "rgbd" and scene.names() == ["frame-000015", "frame-000017", "frame-000019"]
    for i, f in enumerate(scene.frames):
        np.testing.assert_allclose(f.depth, ((np.arange(12 * 16).reshape(12, 16) * 11 + i) % 5000) / 1000.0, rtol=1e-6)
        np.testing.assert_allclose(f.camera.c2w, dh.rigid(i), atol=1e-9)
        np.testing.assert_allclose(f.camera.K, [[615.2, 0, 298.4], [0, 615.2, 247.5], [0, 0, 1]])
        assert (f.camera.width, f.camera.height) == (16, 12)


@pytest.mark.parametrize("case", ["pose_shape", "pose_nan", "pose_inf", "non_rigid", "reflection", "no_intrinsics",
                                  "bad_K", "depth_size", "depth_8bit", "no_pose"])
def test_rgbd_bad_input(tmp_path, dh, case):
    root = _rgbd(tmp_path, dh)
    pose = root / "frame-000017.pose.txt"
    culprit = pose
    if case == "pose_shape":
        np.savetxt(pose, np.eye(3))
        expect = "4x4"
    elif case in ("pose_nan", "pose_inf"):
        m = dh.rigid(1)
        m[1, 3] = np.nan if case == "pose_nan" else -np.inf
        np.savetxt(pose, m)
        expect = "NaN or inf"
    elif case == "non_rigid":
        m = dh.rigid(1)
        m[:3, 0] *= 1.1
        np.savetxt(pose, m)
        expect = "not rigid"
    elif case == "reflection":
        np.savetxt(pose, np.diag([1.0, 1.0, -1.0, 1.0]))
        expect = "not rigid"
    elif case == "no_intrinsics":
        (root / "intrinsics.K.txt").unlink()
        culprit, expect = root / "intrinsics.K.txt", "missing intrinsics"
    elif case == "bad_K":
        (root / "intrinsics.K.txt").write_text("615 0 298\n0 615\n0 0 1\n")
        culprit, expect = root / "intrinsics.K.txt", "numeric matrix"
    elif case == "depth_size":
        dh.save_u16(root / "frame-000019.depth.png", np.ones((6, 8)))
        culprit, expect = root / "frame-000019.depth.png", "differs from its colour image"
    elif case == "depth_8bit":
        dh.save_u8(root / "frame-000019.depth.png", np.ones((12, 16)))
        culprit, expect = root / "frame-000019.depth.png", "16-bit"
    elif case == "no_pose":
        pose.unlink()
        expect = "missing pose"
    with pytest.raises(DataError) as ei:
        load_scene(root)
    assert expect in str(ei.value) and ei.value.path == culprit


def test_image_folder_natural_order_case_and_non_images(tmp_path, dh, caplog):
    for i, name in enumerate(["img10.jpg", "img2.PNG", "img1.JPEG", "IMG3.png"]):
        dh.save_rgb(tmp_path / name, dh.pattern(12, 16, seed=i), **({"format": "PNG"} if "PNG" in name or "png" in name else {}))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "sub").mkdir()
    assert detect_format(tmp_path) == "images"
    with caplog.at_level(logging.WARNING, logger="aligngs.data"):
        scene = load_scene(tmp_path)
    assert scene.names() == ["img1.JPEG", "img2.PNG", "IMG3.png", "img10.jpg"]
    assert not scene.has_poses and scene.source == "images"
    assert all(f.camera is None for f in scene.frames)
    assert [r for r in caplog.records if "notes.txt" in r.getMessage()]
    assert not [r for r in caplog.records if ".DS_Store" in r.getMessage()]
    np.testing.assert_allclose(scene.frames[1].image, dh.pattern(12, 16, seed=1) / 255.0, atol=1e-7)


def test_dataset_root_with_images_subfolder(tmp_path, dh):
    for i in range(2):
        dh.save_rgb(tmp_path / "images" / f"{i}.png", dh.pattern(12, 16, seed=i))
    (tmp_path / "readme.txt").write_text("x")
    scene = load_scene(tmp_path)
    assert scene.names() == ["0.png", "1.png"] and scene.root == tmp_path / "images"


def test_exif_orientation_applied(tmp_path, dh):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:5, :5] = [255, 0, 0]  # red block in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(arr).save(tmp_path / "r.png", exif=exif)
    f = load_scene(tmp_path).frames[0]
    assert f.image.shape == (40, 20, 3)
    np.testing.assert_allclose(f.image, np.rot90(arr, k=-1) / 255.0)  # red block now top-right


def test_image_folder_errors_and_size_policy(tmp_path, dh, caplog):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="empty") as ei:
        load_scene(empty)
    assert ei.value.path == empty
    only_txt = tmp_path / "txt"
    only_txt.mkdir()
    (only_txt / "a.txt").write_text("x")
    with pytest.raises(DataError, match="no images"):
        load_scene(only_txt)
    bad = tmp_path / "bad"
    dh.save_rgb(bad / "a.png", dh.pattern(12, 16))
    (bad / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match="corrupt") as ei:
        load_scene(bad)
    assert ei.value.path == bad / "b.jpg"
    mixed = tmp_path / "mixed"
    for i in range(3):
        dh.save_rgb(mixed / f"{i}.png", dh.pattern(12, 16, seed=i))
    dh.save_rgb(mixed / "3.png", dh.pattern(24, 30, seed=3))
    with pytest.raises(DataError, match="30x24 but 16x12") as ei:
        load_scene(mixed, DataConfig(size_mismatch="error"))
    assert ei.value.path == mixed / "3.png"
    with caplog.at_level(logging.WARNING, logger="aligngs.data"):
        scene = load_scene(mixed, DataConfig(size_mismatch="resize"))
    assert all(f.image.shape == (12, 16, 3) for f in scene.frames)
    assert [r for r in caplog.records if "3.png" in r.getMessage()]


def test_explicit_non_image_is_an_error(tmp_path, dh):
    from aligngs.data.images import load_images

    dh.save_rgb(tmp_path / "a.png", dh.pattern(12, 16))
    (tmp_path / "b.txt").write_text("x")
    with pytest.raises(DataError, match="not an image") as ei:
        load_images([tmp_path / "a.png", tmp_path / "b.txt"])
    assert ei.value.path == tmp_path / "b.txt"


def _named_scene(n: int) -> Scene:
    return Scene(frames=[Frame(name=f"img{i}.png", camera=None) for i in range(n)], source="images")


def test_split_every_kth_and_sparse_subsampling():
    s = _named_scene(10)
    train, test = split_frames(s, DataConfig(test_every=3))
    assert [f.name for f in test] == ["img0.png", "img3.png", "img6.png", "img9.png"]
    assert [f.name for f in train] == ["img1.png", "img2.png", "img4.png", "img5.png", "img7.png", "img8.png"]
    train, _ = split_frames(s, DataConfig(test_every=3, max_train_views=3))
    # evenly spaced over the 6 remaining views: positions 0, 2.5 -> 2 (round half to even), 5
    assert [f.name for f in train] == ["img1.png", "img4.png", "img8.png"]
    train, test = split_frames(s, DataConfig(test_every=0, max_train_views=4))
    assert test == [] and [f.name for f in train] == ["img0.png", "img3.png", "img6.png", "img9.png"]
    assert evenly_spaced(5, 10) == [0, 1, 2, 3, 4]


def test_split_explicit_names():
    s = _named_scene(5)
    train, test = split_frames(s, DataConfig(test_names=["img4.png", "img1"]))
    assert [f.name for f in test] == ["img1.png", "img4.png"]
    assert [f.name for f in train] == ["img0.png", "img2.png", "img3.png"]
    with pytest.raises(DataError, match="img7"):
        split_frames(s, DataConfig(test_names=["img7.png"]))
    with pytest.raises(DataError, match="no training views"):
        split_frames(_named_scene(1), DataConfig(test_every=1))
