"""Gaussian Grouping's identity losses against hand-computed values and a brute-force reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aligngs.model.gaussians import SH_C0
from aligngs.model.identity import IdentityClassifier, initial_identities
from aligngs.train.losses.identity import identity_ce, identity_knn_kl


def test_identity_ce_matches_hand_computed():
    # K = 3 objects, a 1 x 2 image
    logits = torch.zeros(3, 1, 2)
    logits[0, 0, 0] = 1.0  # pixel 0: [1, 0, 0], target 0
    logits[1, 0, 1] = 2.0  # pixel 1: [0, 2, 0], target 2
    target = torch.tensor([[0, 2]])
    ce0 = -math.log(math.e / (math.e + 2))
    ce1 = -math.log(1 / (1 + math.e ** 2 + 1))
    expected = (ce0 + ce1) / 2 / math.log(3)
    assert float(identity_ce(logits, target)) == pytest.approx(expected, rel=1e-6)


def test_identity_ce_ignores_pixels_and_checks_ids():
    logits = torch.zeros(4, 1, 2)
    logits[3, 0, 0] = 5.0
    target = torch.tensor([[3, -1]])
    expected = -math.log(math.exp(5) / (math.exp(5) + 3)) / math.log(4)
    assert float(identity_ce(logits, target)) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="0..3"):
        identity_ce(logits, torch.tensor([[4, 0]]))
    # all ignored: an attached zero
    z = identity_ce(logits.requires_grad_(), torch.full((1, 2), -1))
    assert float(z) == 0.0 and z.requires_grad


def test_knn_kl_matches_hand_computed():
    pos = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [10, 0, 0]])
    probs = torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    # k = 2 (the point itself + its nearest): 0 -> {0, 1}; 3 -> {3, 2}
    kl01 = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    kl32 = 0.6 * math.log(0.6 / 0.2) + 0.4 * math.log(0.4 / 0.8)
    expected = (0 + kl01 + 0 + kl32) / 4 / 2  # mean over samples x neighbours, / K
    got = identity_knn_kl(pos, probs, k=2, sample=torch.tensor([0, 3]))
    assert float(got) == pytest.approx(expected, rel=1e-5)


def _brute_force(pos, probs, sample, k):
    d = torch.cdist(pos[sample], pos)
    nn = d.topk(k, largest=False).indices
    pi = probs[sample][:, None]
    pj = probs[nn]
    return (pi * (torch.log(pi + 1e-10) - torch.log(pj + 1e-10))).sum(-1).mean() / probs.shape[1]


def test_knn_kl_equals_brute_force_and_has_gradients():
    g = torch.Generator().manual_seed(0)
    pos = torch.rand(300, 3, generator=g)
    logits = torch.randn(300, 7, generator=g, requires_grad=True)
    probs = torch.softmax(logits, -1)
    sample = torch.randperm(300, generator=g)[:50]
    got = identity_knn_kl(pos, probs, k=5, sample=sample)
    assert float(got) == pytest.approx(float(_brute_force(pos, probs, sample, 5)), rel=1e-5)
    got.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    # subsampling path: same value when max_points >= N and sample_size >= N (every point sampled)
    full = identity_knn_kl(pos, probs.detach(), k=5, sample_size=300, generator=torch.Generator().manual_seed(1))
    assert float(full) == pytest.approx(float(_brute_force(pos, probs.detach(), torch.arange(300), 5)), rel=1e-5)


def test_knn_kl_zero_when_neighbours_agree():
    pos = torch.rand(40, 3)
    probs = torch.softmax(torch.tensor([[2.0, 0.0, -1.0]]), -1).repeat(40, 1)
    assert float(identity_knn_kl(pos, probs, k=5, sample_size=10)) == pytest.approx(0.0, abs=1e-7)


def test_classifier_and_init():
    ids = initial_identities(1000, 16, seed=3)
    assert ids.shape == (1000, 16)
    assert float(ids.min()) >= -0.5 / SH_C0 - 1e-6 and float(ids.max()) <= 0.5 / SH_C0 + 1e-6
    assert torch.equal(ids, initial_identities(1000, 16, seed=3))
    clf = IdentityClassifier(16, 8)
    img = torch.randn(16, 3, 4)
    out = clf(img)
    assert out.shape == (8, 3, 4)
    # the per-pixel map equals the per-feature linear layer
    ref = clf.classify(img.permute(1, 2, 0).reshape(-1, 16)).reshape(3, 4, 8).permute(2, 0, 1)
    assert torch.allclose(out, ref, atol=1e-6)
    oid, conf = clf.object_ids(torch.randn(5, 16))
    assert oid.shape == (5,) and oid.dtype == np.int32 and ((conf > 0) & (conf <= 1)).all()
    with pytest.raises(ValueError):
        clf(torch.randn(15, 3, 4))
