"""Re-use one CPU render's compositing weights to render other per-Gaussian features.

AlignGS renders twice per step from the same geometry and camera: RGB+ED (with gradients to the
geometry) and a ~150-channel semantic pass with detached geometry. The second pass only needs the
per-(pixel, Gaussian) weights ``w = alpha * T`` of the first, so keeping them
(``rasterization(..., cpu_keep_weights=True)``) turns it into one batched matmul per tile chunk
forward and one backward, instead of recomputing every alpha and transmittance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ._composite import _padded, _tile_view
from ._threads import flush_denormal, single_threaded_torch
from ._tiles import TilePlan


@dataclass
class FeatureWeights:
    """Compositing weights of one CPU render (``meta["feature_weights"]``)."""

    plan: TilePlan
    weights: List[Tensor]  # per chunk [B, P, G]: alpha_i T_i of each pair at each tile pixel
    tf: Tensor  # [C, H, W] final transmittance
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        return sum(w.numel() * w.element_size() for w in self.weights)


def _feature_rows(plan: TilePlan, per_camera: bool) -> List[Tensor]:
    """Row of the flattened feature table for every padded pair slot of every chunk."""
    M = plan.n_pairs
    rows = []
    for ch in plan.padded_chunks():
        flat = plan.pair_flat_ids.index_select(0, ch.pair_idx.clamp(max=max(M - 1, 0)).reshape(-1))
        rows.append(flat if per_camera else flat % plan.n_gaussians)
    return rows


class _RenderFeatures(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features: Tensor, backgrounds: Optional[Tensor], fw: FeatureWeights):  # type: ignore[override]
        plan = fw.plan
        C, ts = plan.n_cameras, plan.tile_size
        D = features.shape[-1]
        per_camera = features.dim() == 3
        table = features.detach().reshape(-1, D)
        bg = backgrounds.detach() if backgrounds is not None else None
        rows = _feature_rows(plan, per_camera)
        Hp, Wp = plan.tile_height * ts, plan.tile_width * ts
        with flush_denormal(), single_threaded_torch():
            img = table.new_empty(C, Hp, Wp, D)
            img_t = _tile_view(img, plan)
            tf_t = _tile_view(_padded(fw.tf, plan), plan) if bg is not None else None
            for ch, w, r in zip(plan.chunks, fw.weights, rows):
                B, P, G = w.shape
                out = torch.bmm(w, table.index_select(0, r).view(B, G, D))
                if bg is not None:
                    t = tf_t[ch.where].reshape(B, P, 1)
                    out.addcmul_(t, bg.index_select(0, ch.where[0])[:, None, :])
                img_t.index_put_(ch.where, out.view(B, ts, ts, D))
            if plan.empty is not None:
                fill = bg.index_select(0, plan.empty[0])[:, None, None, :] if bg is not None else 0.0
                img_t.index_put_(plan.empty, torch.zeros_like(img_t[plan.empty]) + fill)
            render = img[:, : plan.height, : plan.width]
            if Hp != plan.height or Wp != plan.width:
                render = render.contiguous()
            alpha = (1.0 - fw.tf)[..., None]
        ctx.fw = fw
        ctx.rows = rows
        ctx.table_shape = (table.shape, features.shape)
        ctx.has_bg = backgrounds is not None
        ctx.mark_non_differentiable(alpha)
        return render, alpha

    @staticmethod
    def backward(ctx, g_render: Tensor, g_alpha: Tensor):  # type: ignore[override]
        fw: FeatureWeights = ctx.fw
        plan = fw.plan
        (table_shape, feat_shape) = ctx.table_shape
        d_feat = d_bg = None
        with flush_denormal(), single_threaded_torch():
            if ctx.needs_input_grad[0]:
                d_table = g_render.new_zeros(table_shape)
                g_t = _tile_view(_padded(g_render, plan), plan)
                for ch, w, r in zip(plan.chunks, fw.weights, ctx.rows):
                    B, P, _ = w.shape
                    gc = g_t[ch.where].reshape(B, P, -1)
                    d_table.index_add_(0, r, torch.bmm(w.transpose(1, 2), gc).reshape(r.shape[0], -1))
                d_feat = d_table.view(feat_shape)
            if ctx.has_bg and ctx.needs_input_grad[1]:
                d_bg = torch.einsum("chwd,chw->cd", g_render, fw.tf)
        return d_feat, d_bg, None


def render_features(
    meta: Dict[str, Any], features: Tensor, backgrounds: Optional[Tensor] = None
) -> Tuple[Tensor, Tensor]:
    """Render other per-Gaussian features with the weights of an earlier CPU render.

    ``meta`` comes from ``rasterization(..., cpu_keep_weights=True)``; ``features`` is [N, D] or
    [C, N, D] for the same Gaussians and cameras; ``backgrounds`` [C, D] or None. The geometry is
    treated as constant (gradients reach ``features`` and ``backgrounds`` only), exactly like a
    second ``rasterization`` call with detached means/quats/scales/opacities. Returns renders
    [C, H, W, D] and alphas [C, H, W, 1] (those of the earlier render).
    """
    fw = meta.get("feature_weights") if isinstance(meta, dict) else None
    if not isinstance(fw, FeatureWeights):
        raise ValueError(
            "render_features: meta has no 'feature_weights'; render the first pass on CPU with "
            "rasterization(..., cpu_keep_weights=True) (on CUDA, call gsplat.rasterization again "
            "with detached geometry instead)"
        )
    plan = fw.plan
    C, N = plan.n_cameras, plan.n_gaussians
    if not ((features.dim() == 2 and features.shape[0] == N)
            or (features.dim() == 3 and features.shape[:2] == (C, N))):
        raise ValueError(
            f"render_features: features must have shape [{N}, D] or [{C}, {N}, D], "
            f"got {tuple(features.shape)}"
        )
    if features.dtype != fw.dtype or features.device.type != "cpu":
        raise ValueError(
            f"render_features: features must be {fw.dtype} on the CPU like the first render, "
            f"got {features.dtype} on {features.device}"
        )
    if backgrounds is not None and backgrounds.shape != (C, features.shape[-1]):
        raise ValueError(
            f"render_features: backgrounds must have shape [{C}, {features.shape[-1]}], "
            f"got {tuple(backgrounds.shape)}"
        )
    return _RenderFeatures.apply(features, backgrounds, fw)
