"""PSNR / SSIM against hand values and a brute-force SSIM; LPIPS availability and its formula on random weights."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aligngs.metrics.image import LPIPSUnavailable, lpips, lpips_available, psnr, ssim
from aligngs.metrics.lpips_vgg import LPIPSVGG, load_lpips


def test_psnr_hand_values():
    gt = torch.rand(8, 10, 3)
    assert float(psnr(gt + 0.1, gt)) == pytest.approx(20.0, abs=1e-4)  # mse 0.01
    assert float(psnr(gt + 0.01, gt)) == pytest.approx(40.0, abs=1e-3)
    # batch: mean of per-image PSNRs (20 and 40 dB)
    b = torch.rand(2, 3, 8, 10)
    off = torch.tensor([0.1, 0.01])[:, None, None, None]
    assert float(psnr(b + off, b)) == pytest.approx(30.0, abs=1e-3)
    # mask: only the unmasked half carries the error
    pred = gt.clone()
    pred[:, 5:] += 0.5
    mask = torch.zeros(8, 10, dtype=torch.bool)
    mask[:, :5] = True
    pred[:, :5] += 0.1
    assert float(psnr(pred, gt, mask=mask)) == pytest.approx(20.0, abs=1e-4)
    assert float(psnr(pred, gt)) == pytest.approx(-10 * math.log10((0.01 + 0.25) / 2), abs=1e-4)
    assert math.isinf(float(psnr(gt, gt)))


def test_layouts_agree():
    x, y = torch.rand(16, 20, 3), torch.rand(16, 20, 3)
    xb, yb = x.permute(2, 0, 1)[None], y.permute(2, 0, 1)[None]
    assert float(psnr(x, y)) == pytest.approx(float(psnr(xb, yb)), rel=1e-6)
    assert float(ssim(x, y)) == pytest.approx(float(ssim(xb, yb)), rel=1e-6)
    assert float(ssim(x.numpy(), y.numpy())) == pytest.approx(float(ssim(x, y)), rel=1e-6)
    with pytest.raises(ValueError, match="differ"):
        ssim(x, y[:8])


def _ssim_bruteforce(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM with an explicit 11x11 Gaussian (sigma 1.5), zero padding, per channel; a, b are [C,H,W]."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()
    w = np.outer(g, g)
    C, H, W = a.shape
    pa = np.pad(a, ((0, 0), (5, 5), (5, 5)))
    pb = np.pad(b, ((0, 0), (5, 5), (5, 5)))
    vals = []
    for c in range(C):
        for i in range(H):
            for j in range(W):
                wa, wb = pa[c, i:i + 11, j:j + 11], pb[c, i:i + 11, j:j + 11]
                mu_a, mu_b = (w * wa).sum(), (w * wb).sum()
                va = (w * wa * wa).sum() - mu_a ** 2
                vb = (w * wb * wb).sum() - mu_b ** 2
                cov = (w * wa * wb).sum() - mu_a * mu_b
                c1, c2 = 0.01 ** 2, 0.03 ** 2
                vals.append((2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a ** 2 + mu_b ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_ssim_matches_bruteforce():
    rng = np.random.default_rng(0)
    a = rng.random((3, 13, 17))
    b = np.clip(a + 0.2 * rng.normal(size=a.shape), 0, 1)
    got = float(ssim(torch.from_numpy(a)[None], torch.from_numpy(b)[None]))
    assert got == pytest.approx(_ssim_bruteforce(a, b), abs=1e-10)
    assert float(ssim(torch.from_numpy(a)[None], torch.from_numpy(a)[None])) == pytest.approx(1.0, abs=1e-12)


def test_ssim_is_differentiable():
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.random((1, 2, 7, 9)), dtype=torch.float64, requires_grad=True)
    y = torch.tensor(rng.random((1, 2, 7, 9)), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: ssim(p, y), (x,), fast_mode=True)
    # the D-SSIM loss pulls a noisy image towards the target
    z = (y + 0.3 * torch.randn_like(y)).clamp(0, 1).requires_grad_(True)
    before = float(ssim(z, y))
    (1 - ssim(z, y)).backward()
    with torch.no_grad():
        z2 = z - 0.5 * z.grad / z.grad.abs().max()
    assert float(ssim(z2, y)) > before


# --- LPIPS -----------------------------------------------------------------------------------------------------

def test_lpips_unavailable_is_reported_not_zero(tmp_path):
    missing_bb, missing_lin = tmp_path / "no_vgg.pth", tmp_path / "no_lin.pth"
    assert not lpips_available(missing_bb, missing_lin)
    with pytest.raises(LPIPSUnavailable, match="no_vgg.pth"):
        load_lpips(missing_bb, missing_lin)


def test_lpips_default_lookup_is_consistent():
    x = torch.rand(1, 3, 32, 32)
    if lpips_available():
        assert float(lpips(x, x)) == pytest.approx(0.0, abs=1e-6)
    else:
        with pytest.raises(LPIPSUnavailable):
            lpips(x, x)


_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # torchvision vgg16().features conv indices
_CH = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 512), (512, 512),
       (512, 512), (512, 512), (512, 512), (512, 512)]


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """Random weights in the two on-disk formats (torchvision VGG16 state dict; lpips package heads)."""
    g = torch.Generator().manual_seed(0)
    bb = {}
    for idx, (ci, co) in zip(_CONVS, _CH):
        bb[f"features.{idx}.weight"] = torch.randn(co, ci, 3, 3, generator=g) * math.sqrt(2 / (9 * ci))
        bb[f"features.{idx}.bias"] = torch.randn(co, generator=g) * 0.01
    bb["classifier.0.weight"] = torch.zeros(1, 1)  # present in the real file; must be ignored
    lin = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) * 0.1
           for i, c in enumerate([64, 128, 256, 512, 512])}
    d = tmp_path_factory.mktemp("lpips")
    torch.save(bb, d / "vgg16-397923af.pth")
    torch.save(lin, d / "vgg.pth")
    return d / "vgg16-397923af.pth", d / "vgg.pth", bb, lin


def _lpips_reference(x, y, bb, lin):
    """LPIPS v0.1 written out: scaling layer, VGG16 relu1_2..relu5_3, unit-normalise, squared diff, 1x1 heads."""
    shift = torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None]
    scale = torch.tensor([0.458, 0.448, 0.450])[None, :, None, None]
    blocks = [[0, 2], [5, 7], [10, 12, 14], [17, 19, 21], [24, 26, 28]]

    def feats(t):
        h = ((2 * t - 1) - shift) / scale
        out = []
        for k, block in enumerate(blocks):
            if k > 0:
                h = torch.nn.functional.max_pool2d(h, 2, 2)
            for idx in block:
                h = torch.relu(torch.nn.functional.conv2d(h, bb[f"features.{idx}.weight"], bb[f"features.{idx}.bias"], padding=1))
            out.append(h)
        return out

    total = 0
    for k, (a, b) in enumerate(zip(feats(x), feats(y))):
        na = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nb = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        total = total + ((na - nb) ** 2 * lin[f"lin{k}.model.1.weight"]).sum(1).mean((1, 2))
    return total


def test_lpips_formula_on_random_weights(random_weights, monkeypatch):
    bb_path, lin_path, bb, lin = random_weights
    assert lpips_available(bb_path, lin_path)
    monkeypatch.setenv("ALIGNGS_LPIPS_VGG16", str(bb_path))
    monkeypatch.setenv("ALIGNGS_LPIPS_LIN", str(lin_path))
    assert lpips_available()
    model = load_lpips()
    assert isinstance(model, LPIPSVGG)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 32, 48, generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    ref = _lpips_reference(x, y, bb, lin).mean()
    got = lpips(x, y, model=model)
    assert float(got) == pytest.approx(float(ref), rel=1e-4)
    assert float(got) > 0
    assert float(lpips(x, x, model=model)) == pytest.approx(0.0, abs=1e-7)
    # HWC single image == batch of one
    assert float(lpips(x[0].permute(1, 2, 0), y[0].permute(1, 2, 0), model=model)) == pytest.approx(
        float(_lpips_reference(x[:1], y[:1], bb, lin)), rel=1e-4)
