"""Semantic distillation losses (docs/method.md §2-3): soft KL, hard CE and the semantic edge mask."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...config import KLNorm, choices
from ._common import _check_chw, _check_mask, _zero

__all__ = ["semantic_kl", "semantic_ce", "semantic_edge_mask"]


# --------------------------------------------------------------------------------------------- section 2
def semantic_kl(
    rendered: torch.Tensor,
    teacher: torch.Tensor,
    valid: torch.Tensor | None = None,
    norm: str = "per_pixel",
) -> torch.Tensor:
    """Soft distillation KL(softmax(teacher) || softmax(rendered)) over the class axis (T = 1).

    rendered: [C,H,W] rendered logits. teacher: [C,H,W] teacher scores (logits or log-probabilities:
    softmax makes them equivalent); detached. valid: optional bool [H,W]; invalid pixels contribute nothing.

    norm="per_pixel" (ours, :attr:`LossConfig.semantic_kl_norm` default): mean of the per-pixel KL over
    the valid pixels. norm="reference": sum of the per-pixel KL over the valid pixels divided by C, which is
    exactly what the reference's ``F.kl_div(log_softmax(P_r, 0), softmax(P_gt, 0), reduction='batchmean')``
    computes on [C,H,W] tensors ("batchmean" divides by size(0) = C). Hence, with all pixels valid,
    ``reference = per_pixel * (H * W / C)`` (e.g. x 2048 at 640x480 with 150 classes).
    """
    _check_chw("semantic_kl rendered", rendered)
    if teacher.shape != rendered.shape:
        raise ValueError(f"semantic_kl: teacher shape {list(teacher.shape)} != rendered shape {list(rendered.shape)}")
    C, H, W = rendered.shape
    _check_mask("semantic_kl valid", valid, (H, W))
    if norm not in choices(KLNorm):
        raise ValueError(f"semantic_kl: norm must be 'per_pixel' or 'reference', got {norm!r}")
    log_q = F.log_softmax(rendered, dim=0)
    log_p = F.log_softmax(teacher.detach().to(rendered.dtype), dim=0)
    p = log_p.exp()
    # p * (log p - log q); 0 * log 0 = 0 (a class with -inf teacher score contributes nothing), like kl_div.
    term = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p))
    kl = term.sum(dim=0)  # [H,W]
    if valid is not None:
        kl = kl[valid]
    if kl.numel() == 0:
        return _zero(rendered)
    if norm == "per_pixel":
        return kl.mean()
    return kl.sum() / C


def semantic_ce(rendered: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Hard distillation: cross-entropy of rendered logits [C,H,W] against labels [H,W] (long, -1 ignored).

    Mean over the labelled pixels (torch's ``cross_entropy`` with ``ignore_index=-1``); 0 when none is.
    """
    _check_chw("semantic_ce rendered", rendered)
    C, H, W = rendered.shape
    if tuple(labels.shape) != (H, W):
        raise ValueError(f"semantic_ce: labels must be [H,W]={[H, W]}, got {list(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"semantic_ce: labels must be an integer tensor, got {labels.dtype}")
    labels = labels.long()
    known = labels >= 0
    if not bool(known.any()):
        return _zero(rendered)
    lo, hi = int(labels.min()), int(labels.max())
    if lo < -1 or hi >= C:
        raise ValueError(f"semantic_ce: labels must lie in -1..{C - 1}, got range {lo}..{hi}")
    return F.cross_entropy(rendered[None], labels[None], ignore_index=-1)


# --------------------------------------------------------------------------------------------- section 3
def semantic_edge_mask(labels: torch.Tensor, dilation: int = 0) -> torch.Tensor:
    """Bool [H,W]: True where the label differs from the right or the lower neighbour (one pixel wide).

    As in the reference, the pixel on the left/upper side of a boundary is marked; the last column/row only
    compare along the other axis. ``dilation`` > 0 grows the mask by a (2r+1)x(2r+1) square.

    Unknown labels (-1) are compared like any other value: the border between a known and an unknown region
    is an edge (its depth is as unreliable as any object boundary), while pixels inside an unknown region
    are not edges. (The reference's argmax labels are never unknown, so it has no such case.)
    """
    if labels.dim() != 2:
        raise ValueError(f"semantic_edge_mask: labels must be [H,W], got {list(labels.shape)}")
    if dilation < 0:
        raise ValueError(f"semantic_edge_mask: dilation must be >= 0, got {dilation}")
    edge = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    if dilation > 0:
        k = 2 * dilation + 1
        edge = F.max_pool2d(edge[None, None].float(), k, stride=1, padding=dilation)[0, 0] > 0
    return edge
