"""Depth teachers on tiny random checkpoints: library post-processing agreement, padding crop, disparity
conversion, sensor passthrough, factory."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aligngs.data.types import Frame
from aligngs.priors.depth import (
    DISPARITY_FLOOR,
    DepthAnythingTeacher,
    DptDepthTeacher,
    SensorDepthTeacher,
    disparity_to_depth,
    make_depth_teacher,
)


def _u8(img):
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def test_depth_anything_raw_output_matches_library(tiny_checkpoints, make_image, rng):
    folder = str(tiny_checkpoints["depth_anything"])
    raw = make_depth_teacher("depth_anything", folder, "cpu", output_kind="depth")
    img = make_image(rng, 45, 70)  # aspect-kept resize to multiples of 14: no padding involved
    ours = raw.predict(img)
    assert ours.shape == (45, 70) and ours.dtype == np.float32 and np.isfinite(ours).all()
    inputs = raw.processor(images=[_u8(img)], return_tensors="pt")
    with torch.no_grad():
        out = raw.model(pixel_values=inputs["pixel_values"])
    lib = raw.processor.post_process_depth_estimation(out, target_sizes=[(45, 70)])[0]["predicted_depth"].numpy()
    np.testing.assert_allclose(ours, lib, rtol=1e-5, atol=1e-6)
    assert ours.std() > 1e-2  # a non-degenerate map, so the comparisons above mean something

    # default: the relative checkpoint predicts disparity, converted to depth-like with the documented formula
    default = make_depth_teacher("depth_anything", folder, "cpu")
    assert isinstance(default, DepthAnythingTeacher) and default.output_kind == "disparity"
    np.testing.assert_allclose(default.predict(img), disparity_to_depth(lib, "inverse"), rtol=1e-5)
    assert default.cache_tag != raw.cache_tag


def test_dpt_crops_centre_padding(tiny_checkpoints, make_image, rng):
    teacher = make_depth_teacher("dpt", str(tiny_checkpoints["dpt"]), "cpu")
    assert isinstance(teacher, DptDepthTeacher) and teacher.output_kind == "depth"
    img = make_image(rng, 48, 80)
    ours = teacher.predict(img)
    assert ours.shape == (48, 80) and np.isfinite(ours).all() and ours.std() > 1e-2
    inputs = teacher.processor(images=[_u8(img)], return_tensors="pt")
    pv = inputs["pixel_values"]
    # 48x80 is centre-padded to 56x84: 4 rows above, 2 columns left
    assert tuple(pv.shape[-2:]) == (56, 84)
    with torch.no_grad():
        pred = teacher.model(pixel_values=pv).predicted_depth[0]
    sy, sx = pred.shape[0] / 56, pred.shape[1] / 84
    y0, y1 = round(4 * sy), round(52 * sy)
    x0, x1 = round(2 * sx), round(82 * sx)
    expected = F.interpolate(pred[None, None, y0:y1, x0:x1], size=(48, 80), mode="bicubic", align_corners=False)[0, 0]
    np.testing.assert_allclose(ours, expected.numpy(), rtol=1e-5, atol=1e-6)
    # the library's post-processing keeps the padding: a different (shifted) map
    lib = F.interpolate(pred[None, None], size=(48, 80), mode="bicubic", align_corners=False)[0, 0].numpy()
    assert not np.allclose(ours, lib, atol=1e-4)


def test_depth_batch_and_size(tiny_checkpoints, make_image, rng):
    teacher = make_depth_teacher("depth_anything", str(tiny_checkpoints["depth_anything"]), "cpu", batch_size=3)
    imgs = [make_image(rng, 42, 56) for _ in range(3)]
    batched = teacher.predict_batch(imgs)
    for img, b in zip(imgs, batched):
        np.testing.assert_allclose(b, teacher.predict(img), rtol=1e-4, atol=1e-5)
    assert teacher.predict(imgs[0], size=(21, 28)).shape == (21, 28)


def test_disparity_to_depth_values():
    d = np.array([[4.0, 2.0, 1.0, 0.0]], dtype=np.float32)
    neg = disparity_to_depth(d, "negate")
    np.testing.assert_array_equal(neg, -d)
    inv = disparity_to_depth(d, "inverse")
    ref = np.quantile(d, 0.995)  # linear interpolation: 4 - 0.015 * (4 - 2) = 3.97
    np.testing.assert_allclose(ref, 3.97, rtol=1e-6)
    np.testing.assert_allclose(inv, [[ref / 4.0, ref / 2.0, ref / 1.0, 1.0 / DISPARITY_FLOOR]], rtol=1e-5)
    assert np.all(np.diff(inv[0]) > 0)  # increasing with distance
    t = disparity_to_depth(torch.from_numpy(d), "inverse")
    assert isinstance(t, torch.Tensor) and np.allclose(t.numpy(), inv)
    with pytest.raises(ValueError, match="inverse"):
        disparity_to_depth(d, "log")


def test_sensor_teacher_passthrough(make_image, rng):
    depth = np.array([[1.5, 0.0], [np.nan, 2.0]], dtype=np.float32)
    t = make_depth_teacher("sensor", None, "cpu")
    assert isinstance(t, SensorDepthTeacher) and not t.cacheable
    pred = t.predict_frame(Frame("f", None, image=make_image(rng, 2, 2), depth=depth))
    assert pred.valid.tolist() == [[True, False], [False, True]]
    assert pred.depth.tolist() == [[1.5, 0.0], [0.0, 2.0]] and pred.depth.dtype == np.float32
    with pytest.raises(ValueError, match="needs Frame.depth"):
        t.predict_frame(Frame("rgb-only", None, image=make_image(rng, 2, 2)))
    with pytest.raises(ValueError, match="differs from the image"):
        t.predict_frame(Frame("bad", None, image=make_image(rng, 3, 2), depth=depth))


def test_depth_factory_names(tiny_checkpoints):
    assert make_depth_teacher("none", None, "cpu") is None
    with pytest.raises(ValueError, match="known: auto, dpt, depth_anything, sensor, none"):
        make_depth_teacher("zoedepth", None, "cpu")
    with pytest.raises(ValueError, match="resolve_teachers"):  # 'auto' depends on the input
        make_depth_teacher("auto", None, "cpu")
    with pytest.raises(ValueError, match="output_kind"):
        make_depth_teacher("dpt", str(tiny_checkpoints["dpt"]), "cpu", output_kind="metres")
