"""The trainer's separable SSIM equals the metric's 2-D-window SSIM (value and gradient)."""
from __future__ import annotations

import torch

from aligngs.metrics.image import ssim as metric_ssim
from aligngs.train import trainer as trainer_mod
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


def test_cpu_photometric_loss_runs_single_threaded_and_matches_the_metric(monkeypatch):
    """On CPU the loss runs inside ``isolated`` (one thread, forward and backward): same value and gradient as L1
    plus the metric's direct 2-D-window SSIM, and a gradcheck."""
    threads = []
    real = trainer_mod._photometric
    monkeypatch.setattr(trainer_mod, "_photometric", lambda *a: threads.append(torch.get_num_threads()) or real(*a))
    g = torch.Generator().manual_seed(1)
    pred = torch.rand(30, 40, 3, generator=g, dtype=torch.float64, requires_grad=True)
    gt = torch.rand(30, 40, 3, generator=g, dtype=torch.float64)
    gt[10:20] = pred.detach()[10:20] * 0.9

    def reference(p):
        s = metric_ssim(p.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None])
        return 0.8 * (p - gt).abs().mean() + 0.2 * (1 - s)

    n0 = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a = photometric_loss(pred, gt, 0.2)
        (ga,) = torch.autograd.grad(a, pred)
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(n0)
    b = reference(pred)
    (gb,) = torch.autograd.grad(b, pred)
    assert a.shape == () and threads == [1]
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ga, gb, rtol=1e-8, atol=1e-12)
    small_gt = gt[:, :6].clone()
    assert torch.autograd.gradcheck(lambda p: photometric_loss(p, small_gt, 0.2),
                                    (pred[:, :6].detach().clone().requires_grad_(),))
