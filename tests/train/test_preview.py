"""The live point preview: which Gaussians, which colours, which classes, in wire dtypes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from aligngs.model.gaussians import GaussianModel
from aligngs.model.semantic_decoder import CompactSemanticDecoder
from aligngs.progress import PointPreview
from aligngs.train.preview import NO_CLASS, point_preview


def _model(n=200, semantic_dim=0, seed=0):
    rng = np.random.default_rng(seed)
    m = GaussianModel.from_points(rng.uniform(-2, 2, (n, 3)), rng.uniform(0, 1, (n, 3)), semantic_dim=semantic_dim)
    with torch.no_grad():
        m.params["opacities"].copy_(torch.from_numpy(rng.normal(0, 2, n).astype(np.float32)))
    return m, rng


def test_keeps_the_most_opaque_in_index_order_with_their_colours():
    m, _ = _model()
    pv = point_preview(m, max_points=50, min_opacity=0.0)
    opa = torch.sigmoid(m.params["opacities"]).detach().numpy()
    want = np.sort(np.argsort(-opa)[:50])
    np.testing.assert_allclose(pv.positions.astype(np.float32), m.params["means"].detach().numpy()[want], atol=2e-3)
    rgb = np.clip(m.params["sh0"].detach().numpy()[want, 0] * 0.28209479177387814 + 0.5, 0, 1)
    assert np.abs(pv.colors.astype(int) - np.round(rgb * 255)).max() <= 1
    assert pv.total == 200 and pv.class_ids is None
    assert pv.positions.dtype == np.float16 and pv.colors.dtype == np.uint8


def test_min_opacity_drops_transparent_gaussians():
    m, _ = _model()
    opa = torch.sigmoid(m.params["opacities"]).detach().numpy()
    pv = point_preview(m, max_points=10_000, min_opacity=0.5)
    assert pv.n == int((opa >= 0.5).sum()) < 200


def test_class_ids_are_the_argmax_and_untrained_rows_have_none():
    m, rng = _model(semantic_dim=150)
    sem = rng.normal(size=(200, 150)).astype(np.float32)
    sem[:20] = 0.0  # e.g. Gaussians that never got a semantic gradient
    with torch.no_grad():
        m.params["semantics"].copy_(torch.from_numpy(sem))
        m.params["opacities"].fill_(5.0)
    pv = point_preview(m, max_points=10_000)
    want = sem.argmax(1)
    want[:20] = NO_CLASS
    np.testing.assert_array_equal(pv.class_ids, want.astype(np.uint8))


def test_compact_features_go_through_the_decoder():
    m, rng = _model(semantic_dim=16)
    dec = CompactSemanticDecoder(16, 150)
    with torch.no_grad():
        m.params["semantics"].copy_(torch.from_numpy(rng.normal(size=(200, 16)).astype(np.float32)))
        m.params["opacities"].fill_(5.0)
    pv = point_preview(m, decoder=dec)
    want = dec.decode_features(m.params["semantics"].detach()).argmax(1).numpy()
    np.testing.assert_array_equal(pv.class_ids, want.astype(np.uint8))


def test_point_preview_checks_its_arrays():
    with pytest.raises(ValueError, match="float16"):
        PointPreview(np.zeros((3, 3), np.float32), np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="colors"):
        PointPreview(np.zeros((3, 3), np.float16), np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match="max_points"):
        point_preview(_model()[0], max_points=0)


def test_trainer_sends_a_point_preview_every_n_iterations_and_at_the_end():
    from aligngs.config import TrainConfig
    from aligngs.data.types import Camera, Frame
    from aligngs.train.trainer import Trainer

    m, rng = _model(n=300)
    K = np.array([[20.0, 0, 12], [0, 20.0, 8], [0, 0, 1]])
    c2w = np.eye(4)
    c2w[2, 3] = -6.0
    frame = Frame(name="v", camera=Camera(c2w, K, 24, 16), image=rng.uniform(0, 1, (16, 24, 3)).astype(np.float32))
    seen = []
    cfg = TrainConfig(iterations=7, preview_every=3)
    cfg.densify.enabled = False
    tr = Trainer(m, [frame], cfg, extent=4.0, progress=seen.append, progress_every_s=1e9)
    tr.train()
    steps = [p.iteration for p in seen if p.points is not None]
    assert steps == [3, 6, 7]
    assert all(p.points.total == m.n for p in seen if p.points is not None)
    cfg.preview_every = 0
    seen.clear()
    Trainer(m, [frame], cfg, extent=4.0, progress=seen.append, progress_every_s=1e9).train()
    assert all(p.points is None for p in seen)
