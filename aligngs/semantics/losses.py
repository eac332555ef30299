"""AlignGS training-loss terms (method notes sections 2-4) as pure, differentiable torch functions.

Every function takes plain tensors (shapes in the docstrings), returns a 0-d tensor and applies NO weight:
the trainer multiplies by the :class:`aligngs.config.LossConfig` weights and decides when each term is on.
Targets (teacher scores, labels, depth priors) are treated as constants (detached).

Shapes: images are channel-first ``[C, H, W]`` for class scores (as rendered by gsplat after a permute)
and channel-last ``[H, W, 3]`` for normal maps; label maps are ``[H, W]`` int64/int32 with -1 = unknown.

Every term returns an exact 0 that is still attached to the graph (finite, zero gradients) when it has
nothing to average over (no valid pixel, no boundary pair, no visible Gaussian) instead of dividing by 0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "semantic_kl",
    "semantic_ce",
    "semantic_edge_mask",
    "pearson_depth_loss",
    "normal_consistency_loss",
    "semantic_boundary_normal_loss",
    "min_scale_loss",
    "CompactSemanticDecoder",
]


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
    if norm not in ("per_pixel", "reference"):
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


def pearson_depth_loss(
    depth: torch.Tensor,
    prior: torch.Tensor,
    valid: torch.Tensor | None = None,
    unbiased: bool = True,
) -> torch.Tensor:
    """1 - Pearson correlation between rendered depth [H,W] and a depth prior [H,W] over ``valid`` pixels.

    Both are standardised over the valid pixels, ``(x - mean) / (std + 1e-6)``, and the loss is
    ``1 - mean(d_r * d_p)``; invariant to positive scale and any shift of either input. ``valid`` (bool [H,W])
    is built by the caller: not a semantic edge, rendered alpha > 0, a valid (e.g. > 0) prior.

    ``unbiased=True`` (default) uses torch's Bessel-corrected std like the reference ``PearsonDepthLoss``,
    so perfectly correlated inputs give ``1/n`` rather than 0 (n = number of valid pixels); False uses the
    population std (exactly ``1 - r``). Fewer than 2 valid pixels -> 0. The prior is detached.
    """
    if depth.dim() != 2 or prior.shape != depth.shape:
        raise ValueError(f"pearson_depth_loss: depth and prior must be [H,W] of one shape, got "
                         f"{list(depth.shape)} and {list(prior.shape)}")
    _check_mask("pearson_depth_loss valid", valid, tuple(depth.shape))
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


# --------------------------------------------------------------------------------------------- section 4
def normal_consistency_loss(
    rendered_normals: torch.Tensor,
    depth_normals: torch.Tensor,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """mean(1 - <N_r, N_d>) over pixels ([H,W,3] each; optional bool [H,W] ``valid``).

    As in the reference, neither map is re-normalised: the rendered normal map is an alpha-weighted blend
    and the depth normals are multiplied by the detached alpha (see
    :func:`aligngs.semantics.normals.depth_to_normals`), so low-alpha pixels pull less. Both maps must
    use the same convention (camera space, facing the camera). Gradients flow into both maps.
    """
    if rendered_normals.dim() != 3 or rendered_normals.shape[-1] != 3 or depth_normals.shape != rendered_normals.shape:
        raise ValueError(f"normal_consistency_loss: expected two [H,W,3] maps, got "
                         f"{list(rendered_normals.shape)} and {list(depth_normals.shape)}")
    _check_mask("normal_consistency_loss valid", valid, tuple(rendered_normals.shape[:2]))
    err = 1.0 - (rendered_normals * depth_normals).sum(dim=-1)
    if valid is not None:
        err = err[valid]
    if err.numel() == 0:
        return _zero(rendered_normals) + _zero(depth_normals)
    return err.mean()


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """<a,b> / (|a| |b| + 1e-8) along the last axis (the reference's form), safe for zero vectors."""
    # |v| computed as sqrt(|v|^2 + tiny) so the backward pass is finite at v = 0 (tiny << 1e-8^2).
    na = ((a * a).sum(-1) + 1e-30).sqrt()
    nb = ((b * b).sum(-1) + 1e-30).sqrt()
    return (a * b).sum(-1) / (na * nb + 1e-8)


def semantic_boundary_normal_loss(
    rendered_normals: torch.Tensor,
    labels: torch.Tensor,
    sharpness: float = 100.0,
) -> torch.Tensor:
    """Push rendered normals apart across semantic boundaries.

    rendered_normals: [H,W,3]; labels: [H,W] int (teacher argmax, -1 = unknown). For every right and lower
    neighbour pair whose labels differ and are both known, c = cosine(n_a, n_b) (with ``|n_a||n_b| + 1e-8``
    in the denominator, as the reference) and the per-pair loss is ``1 - sigmoid(sharpness * (1 - c))``
    (0.5 for parallel normals, ~0 once they differ by more than a few degrees). Returns the mean over all
    pairs, and an exact, gradient-safe 0 when there are none (the reference divides by zero there).
    """
    if rendered_normals.dim() != 3 or rendered_normals.shape[-1] != 3:
        raise ValueError(f"semantic_boundary_normal_loss: normals must be [H,W,3], got {list(rendered_normals.shape)}")
    if tuple(labels.shape) != tuple(rendered_normals.shape[:2]):
        raise ValueError(f"semantic_boundary_normal_loss: labels {list(labels.shape)} must match normals "
                         f"{list(rendered_normals.shape[:2])}")
    n = rendered_normals
    right = (labels[:, :-1] != labels[:, 1:]) & (labels[:, :-1] >= 0) & (labels[:, 1:] >= 0)
    down = (labels[:-1, :] != labels[1:, :]) & (labels[:-1, :] >= 0) & (labels[1:, :] >= 0)
    n_pairs = int(right.sum()) + int(down.sum())
    if n_pairs == 0:
        return _zero(n)
    c_right = _cosine(n[:, :-1][right], n[:, 1:][right])
    c_down = _cosine(n[:-1, :][down], n[1:, :][down])
    c = torch.cat([c_right, c_down])
    return (1.0 - torch.sigmoid(sharpness * (1.0 - c))).mean()


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


# --------------------------------------------------------------------------------------------- compact variant
class CompactSemanticDecoder(torch.nn.Module):
    """1x1 linear decoder for the compact semantic variant (Feature-3DGS / Gaussian Grouping style).

    Gaussians carry ``dim`` channels (e.g. 16); the rendered [dim,H,W] map is decoded per pixel into
    [num_classes,H,W] logits before :func:`semantic_kl` / :func:`semantic_ce`. ``decode_features`` applies the
    same map to per-Gaussian features [N,dim] -> [N,num_classes] (for labelling and editing).
    Being linear, decoding after alpha blending equals blending decoded per-Gaussian logits except for the
    bias, which is added once per pixel here (rather than weighted by the pixel's alpha).
    """

    def __init__(self, dim: int = 16, num_classes: int = 150):
        super().__init__()
        if dim < 1 or num_classes < 1:
            raise ValueError(f"CompactSemanticDecoder: dim and num_classes must be >= 1, got {dim}, {num_classes}")
        self.dim = int(dim)
        self.num_classes = int(num_classes)
        self.linear = torch.nn.Linear(self.dim, self.num_classes)

    def forward(self, rendered: torch.Tensor) -> torch.Tensor:
        """[dim,H,W] (or [B,dim,H,W]) -> [num_classes,H,W] (or [B,num_classes,H,W])."""
        if rendered.dim() not in (3, 4) or rendered.shape[-3] != self.dim:
            raise ValueError(f"CompactSemanticDecoder: expected [{self.dim},H,W] or [B,{self.dim},H,W], "
                             f"got {list(rendered.shape)}")
        out = torch.einsum("kc,...chw->...khw", self.linear.weight, rendered)
        return out + self.linear.bias[:, None, None]

    def decode_features(self, features: torch.Tensor) -> torch.Tensor:
        """Per-Gaussian features [N,dim] -> logits [N,num_classes]."""
        if features.dim() != 2 or features.shape[1] != self.dim:
            raise ValueError(f"CompactSemanticDecoder.decode_features: expected [N,{self.dim}], got {list(features.shape)}")
        return self.linear(features)
