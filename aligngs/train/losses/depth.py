"""The depth-prior loss (docs/method.md §3): 1 - Pearson correlation with a monocular depth prior."""
from __future__ import annotations

import torch

from ._common import _check_mask, _zero

__all__ = ["pearson_depth_loss"]


def pearson_depth_loss(
    depth: torch.Tensor,
    prior: torch.Tensor,
    valid: torch.Tensor | None = None,
    unbiased: bool = True,
    patch: int = 0,
) -> torch.Tensor:
    """1 - Pearson correlation between rendered depth [H,W] and a depth prior [H,W] over ``valid`` pixels.

    Both are standardised over the valid pixels, ``(x - mean) / (std + 1e-6)``, and the loss is
    ``1 - mean(d_r * d_p)``; invariant to positive scale and any shift of either input. ``valid`` (bool [H,W])
    is built by the caller: not a semantic edge, rendered alpha > 0, a valid (e.g. > 0) prior.

    ``unbiased=True`` (default) uses torch's Bessel-corrected std like the reference ``PearsonDepthLoss``,
    so perfectly correlated inputs give ``1/n`` rather than 0 (n = number of valid pixels); False uses the
    population std (exactly ``1 - r``). Fewer than 2 valid pixels -> 0. The prior is detached.

    ``patch`` > 0: the mean of ``1 - r`` over the non-overlapping ``patch`` x ``patch`` tiles of the image (the
    last partial row / column of tiles dropped) that have at least half their pixels valid, each tile
    standardised on its own (FSGS / DNGaussian-style local correlation): invariant to a separate scale and
    shift per tile, so a monocular prior's low-frequency warp and objects offset as a whole in depth leave the
    loss unchanged; only the prior's local shape is asked for. No such tile -> 0.
    """
    if depth.dim() != 2 or prior.shape != depth.shape:
        raise ValueError(f"pearson_depth_loss: depth and prior must be [H,W] of one shape, got "
                         f"{list(depth.shape)} and {list(prior.shape)}")
    _check_mask("pearson_depth_loss valid", valid, tuple(depth.shape))
    if patch > 0:
        return _patch_pearson(depth, prior, valid, patch, 1 if unbiased else 0)
    d = depth if valid is None else depth[valid]
    p = prior.detach().to(depth.dtype)
    p = p if valid is None else p[valid]
    d, p = d.reshape(-1), p.reshape(-1)
    n = d.numel()
    if n < 2:
        return _zero(depth)
    ddof = 1 if unbiased else 0

    def standardise(x: torch.Tensor) -> torch.Tensor:
        xc = x - x.mean()
        var = (xc * xc).sum() / (n - ddof)
        # clamp keeps sqrt differentiable for a constant input; it changes std only below 1e-15.
        return xc / (var.clamp_min(1e-30).sqrt() + 1e-6)

    return 1.0 - (standardise(d) * standardise(p)).mean()


def _patch_pearson(depth: torch.Tensor, prior: torch.Tensor, valid: torch.Tensor | None, patch: int,
                   ddof: int) -> torch.Tensor:
    """``pearson_depth_loss`` with ``patch`` > 0, on inputs it has checked."""
    H, W = depth.shape
    nh, nw = H // patch, W // patch
    if nh == 0 or nw == 0:
        return _zero(depth)

    def tiles(x: torch.Tensor) -> torch.Tensor:  # [H,W] -> [nh*nw, patch*patch]
        x = x[: nh * patch, : nw * patch].reshape(nh, patch, nw, patch)
        return x.permute(0, 2, 1, 3).reshape(nh * nw, patch * patch)

    d = tiles(depth)
    p = tiles(prior.detach().to(depth.dtype))
    m = tiles(valid.to(depth.dtype)) if valid is not None else torch.ones_like(d)
    n = m.sum(dim=1)
    keep = n >= max(2.0, 0.5 * patch * patch)
    if not bool(keep.any()):
        return _zero(depth)
    d, p, m, n = d[keep], p[keep], m[keep], n[keep, None]

    def standardise(x: torch.Tensor) -> torch.Tensor:
        xc = (x - (x * m).sum(dim=1, keepdim=True) / n) * m
        var = (xc * xc).sum(dim=1, keepdim=True) / (n - ddof)
        return xc / (var.clamp_min(1e-30).sqrt() + 1e-6)

    r = (standardise(d) * standardise(p)).sum(dim=1) / n[:, 0]
    return 1.0 - r.mean()
