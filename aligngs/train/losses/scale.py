"""The PGSR min-scale (flattening) loss: Gaussians become thin discs."""
from __future__ import annotations

import torch

from ._common import _zero

__all__ = ["min_scale_loss"]


def min_scale_loss(scales: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
    """PGSR flattening term: mean over the visible Gaussians of their smallest (activated) scale.

    scales: [N,3] (exp-activated, not log); visible: optional bool [N]. 0 when nothing is visible.
    """
    if scales.dim() != 2 or scales.shape[1] != 3:
        raise ValueError(f"min_scale_loss: scales must be [N,3], got {list(scales.shape)}")
    if visible is not None:
        if visible.dtype != torch.bool or tuple(visible.shape) != (scales.shape[0],):
            raise ValueError(f"min_scale_loss: visible must be a bool [N]={scales.shape[0]} mask, "
                             f"got {visible.dtype} {list(visible.shape)}")
        scales = scales[visible]
    if scales.shape[0] == 0:
        return _zero(scales)
    return scales.min(dim=1).values.mean()
