"""Input checks and the graph-attached zero every loss returns when it has nothing to average over."""
from __future__ import annotations

import torch


def _zero(like: torch.Tensor) -> torch.Tensor:
    """A 0 that depends on ``like`` (so backward() works and yields zero gradients)."""
    return like.sum() * 0.0


def _check_chw(name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != 3:
        raise ValueError(f"{name}: expected a [C,H,W] tensor, got {getattr(t, 'shape', type(t).__name__)}")


def _check_mask(name: str, mask: torch.Tensor | None, hw: tuple[int, int]) -> None:
    if mask is None:
        return
    if mask.dtype != torch.bool or tuple(mask.shape) != hw:
        raise ValueError(f"{name}: expected a bool [H,W]={list(hw)} mask, got {mask.dtype} {list(mask.shape)}")
