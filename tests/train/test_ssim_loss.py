"""The trainer's separable SSIM equals the metric's 2-D-window SSIM (value and gradient)."""
from __future__ import annotations

import torch

from aligngs.metrics.image import ssim as metric_ssim
from aligngs.train.trainer import photometric_loss, ssim


def test_separable_ssim_matches_the_metric():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(1, 3, 23, 31, generator=g, dtype=torch.float64, requires_grad=True)
    gt = torch.rand(1, 3, 23, 31, generator=g, dtype=torch.float64)
    gt[..., :10, :] = pred.detach()[..., :10, :]  # partly equal: SSIM near 1 there
    a = ssim(pred, gt)
    (ga,) = torch.autograd.grad(a, pred)
    b = metric_ssim(pred, gt)
    (gb,) = torch.autograd.grad(b, pred)
    assert 0.2 < float(b) < 0.9
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ga, gb, rtol=1e-8, atol=1e-12)


def test_photometric_loss_hand_value():
    pred = torch.zeros(8, 8, 3)
    gt = torch.full((8, 8, 3), 0.5)
    s = float(metric_ssim(pred.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None]))
    assert abs(float(photometric_loss(pred, gt, 0.2)) - (0.8 * 0.5 + 0.2 * (1 - s))) < 1e-6
    assert float(photometric_loss(pred, gt, 0.0)) == 0.5
