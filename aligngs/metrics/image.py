"""Image metrics in torch: PSNR, SSIM (differentiable; the trainer's D-SSIM loss), LPIPS (VGG) when available.

Shapes (the same rule for every function here):
- a 2-D tensor is one single-channel image [H, W];
- a 3-D tensor is one **channel-last** image [H, W, C] (as ``Frame.image``);
- a 4-D tensor is a **channel-first** batch [B, C, H, W] (as torch / the renderer).
``pred`` and ``gt`` must have the same shape. Values are expected in [0, 1] (data range 1). Numpy arrays are
accepted and converted. Results are 0-d tensors (``float(...)`` for a number).
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from .lpips_vgg import LPIPSUnavailable, lpips, lpips_available  # noqa: F401  (re-exported)

__all__ = ["psnr", "ssim", "to_bchw", "lpips", "lpips_available", "LPIPSUnavailable"]


def to_bchw(x) -> torch.Tensor:
    """[H,W] / [H,W,C] / [B,C,H,W] -> [B,C,H,W] (see the module doc for the rule)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not torch.is_tensor(x):
        raise TypeError(f"expected a torch tensor or numpy array, got {type(x).__name__}")
    if x.ndim == 2:
        return x[None, None]
    if x.ndim == 3:
        return x.permute(2, 0, 1)[None]
    if x.ndim == 4:
        return x
    raise ValueError(f"expected [H,W], [H,W,C] or [B,C,H,W], got shape {tuple(x.shape)}")


def _pair(pred, gt) -> tuple[torch.Tensor, torch.Tensor]:
    p, g = to_bchw(pred), to_bchw(gt)
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {tuple(p.shape)} vs {tuple(g.shape)}")
    if not p.is_floating_point():
        p = p.float()
    g = g.to(p.dtype)
    return p, g


def psnr(pred, gt, mask=None) -> torch.Tensor:
    """PSNR in dB (data range 1): the mean over the batch of each image's PSNR.

    ``mask`` (bool, [H,W] or [B,H,W]; True = counted) restricts each image's MSE to those pixels (all channels).
    Identical images give +inf.
    """
    p, g = _pair(pred, gt)
    se = (p - g) ** 2  # [B,C,H,W]
    if mask is None:
        mse = se.flatten(1).mean(1)
    else:
        m = torch.as_tensor(np.asarray(mask) if isinstance(mask, np.ndarray) else mask, device=p.device)
        if m.ndim == 2:
            m = m[None]
        if m.shape != (p.shape[0], p.shape[2], p.shape[3]):
            raise ValueError(f"mask shape {tuple(m.shape)} does not match images {tuple(p.shape)}")
        m = m.to(p.dtype)[:, None]
        count = m.flatten(1).sum(1) * p.shape[1]
        if (count == 0).any():
            raise ValueError("mask selects no pixel in at least one image")
        mse = (se * m).flatten(1).sum(1) / count
    return (-10.0 * torch.log10(mse)).mean()


SSIM_WINDOW, SSIM_SIGMA = 11, 1.5  # 3DGS's SSIM window: size and sigma


@functools.lru_cache(maxsize=16)
def gaussian_window(size: int, sigma: float, dtype: torch.dtype = torch.float64,
                    device_str: str = "cpu") -> torch.Tensor:
    """The normalised 1-D Gaussian window [size] of SSIM (computed in float64, then cast). The 2-D window is its
    outer product; the trainer's SSIM and its C++ loss apply it as two 1-D passes."""
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).to(dtype=dtype, device=torch.device(device_str))


def ssim(pred, gt, window_size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Mean SSIM, exactly 3DGS's ``ssim`` (differentiable; the trainer uses ``1 - ssim``).

    Gaussian window 11x11, sigma 1.5, per channel, zero padding of window//2 (the map has the input's size),
    C1 = 0.01^2, C2 = 0.03^2, averaged over all pixels, channels and images.
    """
    p, g = _pair(pred, gt)
    c = p.shape[1]
    g1 = gaussian_window(window_size, sigma)
    win = (g1[:, None] @ g1[None, :]).to(p).expand(c, 1, window_size, window_size)
    pad = window_size // 2
    mu1 = F.conv2d(p, win, padding=pad, groups=c)
    mu2 = F.conv2d(g, win, padding=pad, groups=c)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s1 = F.conv2d(p * p, win, padding=pad, groups=c) - mu1_sq
    s2 = F.conv2d(g * g, win, padding=pad, groups=c) - mu2_sq
    s12 = F.conv2d(p * g, win, padding=pad, groups=c) - mu12
    C1, C2 = 0.01 ** 2, 0.03 ** 2
    ssim_map = ((2 * mu12 + C1) * (2 * s12 + C2)) / ((mu1_sq + mu2_sq + C1) * (s1 + s2 + C2))
    return ssim_map.mean()

