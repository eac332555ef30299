"""Semantic teachers on tiny random checkpoints loaded through our loader, checked against the library's own
post-processing on the same network outputs; labels_to_scores against hand-computed values."""
from __future__ import annotations

import inspect
import json
import shutil

import numpy as np
import pytest
import torch

from aligngs.data.types import Frame
from aligngs.priors.teachers import (
    LOG_PROB_FLOOR,
    EomtTeacher,
    Mask2FormerTeacher,
    ProvidedLabelsTeacher,
    labels_to_scores,
    make_semantic_teacher,
    mixture_to_log_probs,
)


def _library(teacher, image_u8_list, target_sizes):
    """The library's post_process_semantic_segmentation on the same processor inputs and network outputs."""
    inputs = teacher.processor(images=image_u8_list, return_tensors="pt")
    feed = {k: inputs[k] for k in ("pixel_values", "pixel_mask", "patch_offsets") if k in inputs}
    if teacher.name == "mask2former":
        feed.pop("patch_offsets", None)
    with torch.no_grad():
        out = teacher.model(**feed)
    pp = teacher.processor.post_process_semantic_segmentation
    if "return_segmentation_scores" in inspect.signature(pp).parameters:
        res = pp(out, target_sizes=target_sizes, return_segmentation_scores=True)
        return [r.segmentation.numpy() for r in res], [r.segmentation_scores.numpy() for r in res]
    return [r.numpy() for r in pp(out, target_sizes=target_sizes)], None


def _u8(img):
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def teachers(tiny_checkpoints):
    return {
        "mask2former": make_semantic_teacher("mask2former", str(tiny_checkpoints["mask2former"]), "cpu"),
        "eomt": make_semantic_teacher("eomt", str(tiny_checkpoints["eomt"]), "cpu"),
    }


@pytest.mark.parametrize(
    "name,hw,size",
    [("mask2former", (48, 80), None), ("mask2former", (50, 70), (25, 35)), ("eomt", (48, 80), None),
     ("eomt", (90, 40), None)],
)
def test_scores_match_library_post_processing(teachers, make_image, rng, name, hw, size):
    teacher = teachers[name]
    img = make_image(rng, *hw)
    scores = teacher.predict(img, size=size)
    out_hw = size or hw
    assert scores.shape == (150, *out_hw) and scores.dtype == np.float32
    assert np.isfinite(scores).all() and scores.max() <= 0 and scores.min() >= LOG_PROB_FLOOR
    # log-probabilities: each pixel's distribution sums to one
    np.testing.assert_allclose(np.exp(scores.astype(np.float64)).sum(0), 1.0, atol=1e-4)

    lib_labels, lib_scores = _library(teacher, [_u8(img)], [out_hw])
    assert (scores.argmax(0) == lib_labels[0]).mean() == 1.0
    # the tiny random model must not be degenerate, else the argmax comparison would be vacuous
    assert len(np.unique(lib_labels[0])) > 1
    if lib_scores is None:
        pytest.skip("this transformers version has no return_segmentation_scores")
    np.testing.assert_allclose(scores, mixture_to_log_probs(torch.from_numpy(lib_scores[0])).numpy(), atol=1e-5)
    # output="mixture" is exactly the library's segmentation_scores (same network, same processor)
    mixture_teacher = type(teacher)(teacher.model, teacher.processor, teacher.model_id, device="cpu", output="mixture")
    mix = mixture_teacher.predict(img, size=size)
    np.testing.assert_allclose(mix, lib_scores[0], rtol=1e-5, atol=1e-6)
    assert mix.min() >= 0 and mixture_teacher.cache_tag != teacher.cache_tag


@pytest.mark.parametrize("name", ["mask2former", "eomt"])
def test_batch_equals_single(tiny_checkpoints, tmp_path, make_image, rng, name):
    folder = tiny_checkpoints[name]
    if name == "mask2former":  # a 96 px input keeps this test fast; the library comparison above uses 384
        fast = tmp_path / "m2f96"
        shutil.copytree(folder, fast)
        cfg = json.loads((fast / "preprocessor_config.json").read_text())
        cfg["size"] = {"height": 96, "width": 96}
        (fast / "preprocessor_config.json").write_text(json.dumps(cfg))
        folder = fast
    teacher = make_semantic_teacher(name, str(folder), "cpu", batch_size=2)
    imgs = [make_image(rng, 48, 80), make_image(rng, 48, 80), make_image(rng, 32, 32)]
    batched = teacher.predict_batch(imgs)
    for img, b in zip(imgs, batched):
        np.testing.assert_allclose(b, teacher.predict(img), atol=2e-5)
    assert batched[0].shape == (150, 48, 80) and batched[2].shape == (150, 32, 32)
    assert not np.allclose(batched[0], batched[1], atol=1e-3)  # different images, different answers


def test_input_validation(teachers):
    t = teachers["eomt"]
    with pytest.raises(ValueError, match=r"\[H,W,3\]"):
        t.predict(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="float"):
        t.predict(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        t.predict(np.full((8, 8, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="output"):
        EomtTeacher(t.model, t.processor, "x", device="cpu", output="probs")


def test_wrong_class_count_is_rejected(tmp_path, save_tiny):
    import transformers as T

    folder = save_tiny(tmp_path / "m2f", "mask2former")
    cfg = T.AutoConfig.from_pretrained(folder)
    cfg.num_labels = 133  # a COCO-panoptic head
    model = T.Mask2FormerForUniversalSegmentation(cfg)
    with pytest.raises(ValueError, match="133 classes"):
        Mask2FormerTeacher(model, None, "coco-model", device="cpu")


def test_labels_to_scores_hand_values():
    labels = np.array([[0, 3], [-1, 2]], dtype=np.int32)
    scores, valid = labels_to_scores(labels, num_classes=4, smoothing=0.2)
    # p(label) = 1 - 0.2 + 0.2/4 = 0.85, p(other) = 0.05; unknown pixel: uniform 1/4
    assert scores.shape == (4, 2, 2) and scores.dtype == np.float32
    np.testing.assert_allclose(scores[:, 0, 0], np.log([0.85, 0.05, 0.05, 0.05]), rtol=1e-6)
    np.testing.assert_allclose(scores[:, 0, 1], np.log([0.05, 0.05, 0.05, 0.85]), rtol=1e-6)
    np.testing.assert_allclose(scores[:, 1, 1], np.log([0.05, 0.05, 0.85, 0.05]), rtol=1e-6)
    np.testing.assert_allclose(scores[:, 1, 0], np.log([0.25] * 4), rtol=1e-6)
    assert valid.tolist() == [[True, True], [False, True]]
    # no smoothing: exact one-hot in log space up to the floor
    s0, _ = labels_to_scores(labels, num_classes=4, smoothing=0.0)
    assert s0[0, 0, 0] == 0.0 and s0[1, 0, 0] == LOG_PROB_FLOOR
    # 150 classes, default smoothing 0.1
    s150, v150 = labels_to_scores(np.array([[149]]), smoothing=0.1)
    np.testing.assert_allclose(s150[149, 0, 0], np.log(0.9 + 0.1 / 150), rtol=1e-6)
    np.testing.assert_allclose(s150[0, 0, 0], np.log(0.1 / 150), rtol=1e-6)


@pytest.mark.parametrize(
    "labels,kw,match",
    [
        (np.array([[150]]), {}, r"0\.\.149"),
        (np.array([[-2]]), {}, r"-1 \(unknown\)"),
        (np.zeros((2, 2, 1), np.int32), {}, r"\[H,W\]"),
        (np.zeros((2, 2), np.float32), {}, "integer"),
        (np.zeros((2, 2), np.int32), {"smoothing": 1.0}, "smoothing"),
    ],
)
def test_labels_to_scores_rejects_bad_input(labels, kw, match):
    with pytest.raises(ValueError, match=match):
        labels_to_scores(labels, **kw)


def test_provided_teacher_reads_frame_labels(make_image, rng):
    img = make_image(rng, 3, 4)
    labels = np.array([[5, 5, -1, 7]] * 3, dtype=np.int32)
    t = make_semantic_teacher("gt", None, "cpu")
    assert isinstance(t, ProvidedLabelsTeacher) and not t.cacheable
    pred = t.predict_frame(Frame("f", None, image=img, labels=labels))
    assert pred.scores.shape == (150, 3, 4)
    assert (pred.scores.argmax(0)[pred.valid] == labels[labels >= 0]).all()
    assert pred.valid.tolist() == (labels >= 0).tolist()
    with pytest.raises(ValueError, match="needs Frame.labels"):
        t.predict_frame(Frame("nolabels", None, image=img))
    with pytest.raises(ValueError, match="differs from the image"):
        t.predict_frame(Frame("bad", None, image=img, labels=labels[:2]))
    with pytest.raises(TypeError, match="Frame.labels"):
        t.predict(img)


def test_factory_names():
    assert make_semantic_teacher("none", None, "cpu") is None
    assert isinstance(make_semantic_teacher("provided", None, "cpu"), ProvidedLabelsTeacher)
    with pytest.raises(ValueError, match="known: auto, eomt, mask2former, provided, gt, none"):
        make_semantic_teacher("segformer", None, "cpu")
    with pytest.raises(ValueError, match="resolve_teachers"):  # 'auto' depends on the input
        make_semantic_teacher("auto", None, "cpu")


@pytest.mark.cuda
def test_cuda_autocast_matches_cpu(tiny_checkpoints, make_image, rng):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    img = make_image(rng, 64, 96)
    for name in ("eomt", "mask2former"):
        cpu = make_semantic_teacher(name, str(tiny_checkpoints[name]), "cpu").predict(img)
        gpu_t = make_semantic_teacher(name, str(tiny_checkpoints[name]), "cuda")
        assert next(gpu_t.model.parameters()).is_cuda
        gpu = gpu_t.predict(img)
        assert gpu.shape == cpu.shape and gpu.dtype == np.float32 and np.isfinite(gpu).all()
        np.testing.assert_allclose(gpu, cpu, atol=0.05)  # bf16/fp16 autocast vs fp32
