"""Normal losses (docs/method.md §4): rendered-vs-depth normal consistency and the semantic-boundary term.

The normal maps themselves come from :mod:`aligngs.train.losses.normal_maps`."""
from __future__ import annotations

import torch

from ._common import _check_mask, _zero

__all__ = ["normal_consistency_loss", "semantic_boundary_normal_loss"]


# --------------------------------------------------------------------------------------------- section 4
def normal_consistency_loss(
    rendered_normals: torch.Tensor,
    depth_normals: torch.Tensor,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """mean(1 - <N_r, N_d>) over pixels ([H,W,3] each; optional bool [H,W] ``valid``).

    As in the reference, neither map is re-normalised: the rendered normal map is an alpha-weighted blend
    and the depth normals are multiplied by the detached alpha (see
    :func:`aligngs.train.losses.normal_maps.depth_to_normals`), so low-alpha pixels pull less. Both maps must
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
