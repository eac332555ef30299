"""The trainer's separable SSIM equals the metric's 2-D-window SSIM (value and gradient), and its photometric loss,
in the torch ops and in the C++ kernel, equals L1 plus the metric's SSIM."""
from __future__ import annotations

import pytest
import torch

import aligngs.render._cpp as cpp_mod
from aligngs.metrics.image import gaussian_window
from aligngs.metrics.image import ssim as metric_ssim
from aligngs.render import WorkerPool
from aligngs.train import trainer as trainer_mod
from aligngs.train.trainer import photometric_loss, ssim


def test_ssim_window_is_3dgs_gaussian():
    """One window for the metric, the trainer's SSIM and the C++ loss: normalised exp(-x^2 / (2 sigma^2)), x = -5..5
    for 3DGS's 11 / 1.5 (hand values: w[5] = 1 / sum_x exp(-x^2 / 4.5) = 0.26601, w[0] = w[5] exp(-25 / 4.5))."""
    w = gaussian_window(11, 1.5)
    assert w.shape == (11,) and w.dtype == torch.float64
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-15)
    assert float(w[5]) == pytest.approx(0.2660117, abs=1e-6)
    assert float(w[0]) == pytest.approx(0.2660117 * 0.0038659, rel=1e-4)
    torch.testing.assert_close(w, w.flip(0), rtol=0, atol=0)


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
    """In the torch ops the loss runs inside ``isolated`` (one thread, forward and backward): same value and gradient
    as L1 plus the metric's direct 2-D-window SSIM, and a gradcheck."""
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
        a = photometric_loss(pred, gt, 0.2, kernel="torch")
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
    assert torch.autograd.gradcheck(lambda p: photometric_loss(p, small_gt, 0.2, kernel="torch"),
                                    (pred[:, :6].detach().clone().requires_grad_(),))


def _reference_loss(p, gt, lam):
    s = metric_ssim(p.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None])
    return (1 - lam) * (p - gt).abs().mean() + lam * (1 - s)


@pytest.mark.parametrize("shape", [(30, 40, 3), (7, 9, 3), (1, 12, 2), (23, 5, 1)])
def test_cpp_photometric_loss_matches_the_metric(shape):
    """The C++ loss (two bands of rows, value and gradient in one pass) against L1 plus the metric's 2-D-window SSIM,
    on images taller and shorter than the window; the same bits on one thread, two, or a kept pool; a gradcheck."""
    g = torch.Generator().manual_seed(2)
    pred = torch.rand(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    gt = torch.rand(*shape, generator=g, dtype=torch.float64)
    gt[: shape[0] // 2] = pred.detach()[: shape[0] // 2] * 0.9  # partly alike: SSIM near 1 there
    for lam in (0.2, 0.0):
        a = photometric_loss(pred, gt, lam, kernel="cpp")
        (ga,) = torch.autograd.grad(a, pred)
        b = _reference_loss(pred, gt, lam)
        (gb,) = torch.autograd.grad(b, pred)
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ga, gb, rtol=1e-8, atol=1e-12)
    a1 = photometric_loss(pred, gt, 0.2, 1, kernel="cpp")
    (g1,) = torch.autograd.grad(a1, pred)
    with WorkerPool(2) as pool:
        for workers in (2, pool):
            a2 = photometric_loss(pred, gt, 0.2, workers, kernel="cpp")
            (g2,) = torch.autograd.grad(a2, pred)
            assert torch.equal(a1, a2) and torch.equal(g1, g2)
    small = (slice(None), slice(0, 4))
    assert torch.autograd.gradcheck(lambda p: photometric_loss(p, gt[small].contiguous(), 0.2, kernel="cpp"),
                                    (pred.detach()[small].contiguous().requires_grad_(),))


def test_cpp_photometric_loss_float32_and_fallback(monkeypatch):
    """float32 at the training size stays within float rounding of the torch ops; without the compiled kernel "auto"
    computes the loss in the torch ops; mismatched images are an error naming the op."""
    g = torch.Generator().manual_seed(3)
    pred = torch.rand(120, 160, 3, generator=g, requires_grad=True)
    gt = torch.rand(120, 160, 3, generator=g)
    a = photometric_loss(pred, gt, 0.2, kernel="cpp")
    (ga,) = torch.autograd.grad(a, pred)
    b = photometric_loss(pred, gt, 0.2, kernel="torch")
    (gb,) = torch.autograd.grad(b, pred)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ga, gb, rtol=1e-3, atol=1e-9)
    window = gaussian_window(11, 1.5, torch.float32)
    with pytest.raises(RuntimeError, match="photometric_rows: pred and gt must be"):
        cpp_mod.kernel("cpp").photometric_rows(pred.detach(), gt[:, :10].contiguous(), 0, 120, window, 0.8, -0.2,
                                               None)
    with pytest.raises(RuntimeError, match="photometric_rows: window must be a contiguous 1-D tensor of odd length"):
        cpp_mod.kernel("cpp").photometric_rows(pred.detach(), gt, 0, 120, window.double(), 0.8, -0.2, None)
    monkeypatch.setattr(cpp_mod, "_build", lambda: (None, "OSError: no C++ compiler"))
    c = photometric_loss(pred, gt, 0.2, kernel="auto")
    assert torch.equal(c.detach(), b.detach())
