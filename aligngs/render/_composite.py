"""Front-to-back alpha compositing of tile-binned Gaussians (CPU), with a hand-written backward.

Per (tile, Gaussian) pair the log-alpha over the tile's pixels is a quadratic in the pixel offset
(u, v) from the tile centre:

    log(opacity * exp(-sigma)) = k0 + k1 u + k2 v + k3 u^2 + k4 u v + k5 v^2,

so one chunk of tiles evaluates all its alphas as a single matmul of the [B, G, 6] pair
coefficients with a fixed [P, 6] pixel basis. Compositing follows gsplat 1.5.3's kernel exactly:
``alpha = min(0.999, opacity * exp(-sigma))``, pairs with ``alpha < 1/255`` are skipped, a
Gaussian whose inclusion would drop the transmittance to ``<= 1e-4`` ends the pixel (exclusive),
``colour = sum_i c_i alpha_i T_i + T_final * background``, ``alpha_out = 1 - T_final``.

The backward recomputes each chunk's alphas (memory stays bounded by the chunk size) and uses the
standard 3DGS gradient

    dL/dalpha_i = T_i (c_i . g) - (sum_{j>i} w_j (c_j . g) + T_final (bg . g - g_alpha)) / (1 - alpha_i).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ._projection import ALPHA_THRESHOLD
from ._tiles import TilePlan

MAX_ALPHA = 0.999
T_EPS = 1e-4
LOG_T_EPS = math.log(T_EPS)
# exp() of inputs below ~-87 produces float32 denormals, which are ~100x slower on x86 (and
# set_flush_denormal does not cover torch's vectorised exp). Anything below log(1/255) ~ -5.5 is
# discarded anyway, so the log-alphas and log-transmittances are clamped here first.
LOG_FLOOR = -30.0
PAD_LOGIT = -1.0e4


def _denormals_flushed() -> bool:
    probe = torch.tensor([1e-39], dtype=torch.float32) * torch.tensor([1.0], dtype=torch.float32)
    return bool(probe.item() == 0.0)


@contextmanager
def flush_denormal() -> Iterator[None]:
    """Enable flush-to-zero / denormals-are-zero for the current thread, restoring it after."""
    was = _denormals_flushed()
    changed = False
    if not was:
        changed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


def pixel_basis(tile_size: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """[P, 6] rows (1, u, v, u^2, u v, v^2) for the tile's pixels in row-major order."""
    c = (tile_size - 1) / 2.0
    r = torch.arange(tile_size, dtype=dtype, device=device) - c
    v, u = torch.meshgrid(r, r, indexing="ij")
    u = u.reshape(-1)
    v = v.reshape(-1)
    return torch.stack([torch.ones_like(u), u, v, u * u, u * v, v * v], dim=-1)


def pair_coefficients(
    means2d: Tensor,  # [C, N, 2]
    conics: Tensor,  # [C, N, 3]
    opacities: Tensor,  # [C, N]
    plan: TilePlan,
) -> Tensor:
    """Quadratic log-alpha coefficients per (tile, Gaussian) pair, [M + 1, 6] (last row: padding).

    Differentiable through plain autograd w.r.t. means2d, conics and opacities.
    """
    ids = plan.pair_flat_ids
    ts = plan.tile_size
    local = plan.pair_tiles % plan.tiles_per_image
    dtype = means2d.dtype
    xc = (local % plan.tile_width).to(dtype) * ts + 0.5 * ts
    yc = torch.div(local, plan.tile_width, rounding_mode="floor").to(dtype) * ts + 0.5 * ts
    m = means2d.reshape(-1, 2)[ids]
    cn = conics.reshape(-1, 3)[ids]
    o = opacities.reshape(-1)[ids]
    dx = m[:, 0] - xc
    dy = m[:, 1] - yc
    a, b, c = cn.unbind(-1)
    k1 = a * dx + b * dy
    k2 = b * dx + c * dy
    k0 = torch.log(o) - 0.5 * (dx * k1 + dy * k2)
    k = torch.stack([k0, k1, k2, -0.5 * a, -b, -0.5 * c], dim=-1)
    pad = torch.zeros(1, 6, dtype=dtype, device=k.device)
    pad[0, 0] = PAD_LOGIT
    return torch.cat([k, pad], dim=0)


def _chunk_alphas(K: Tensor, basis: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Alphas and transmittances of one chunk.

    Returns a [B, P, G] (0 where skipped), log(1 - a), the inclusive cumulative log-transmittance
    and the boolean mask of pairs that are composited (before the 1e-4 termination).
    """
    a = torch.matmul(basis, K.transpose(1, 2))  # [B, P, G]
    a.clamp_(min=LOG_FLOOR).exp_()
    keep = a >= ALPHA_THRESHOLD
    a.clamp_(max=MAX_ALPHA).mul_(keep)
    log1m = torch.log1p(a.neg())
    cs = torch.cumsum(log1m, dim=-1)
    incl = cs > LOG_T_EPS
    return a, log1m, cs, incl


def _weights(a: Tensor, log1m: Tensor, cs: Tensor, incl: Tensor) -> Tuple[Tensor, Tensor]:
    t_excl = (cs - log1m).clamp_(min=LOG_FLOOR).exp_()
    w = t_excl * a
    w.mul_(incl)
    return w, t_excl


def tiles_to_image(x: Tensor, plan: TilePlan) -> Tensor:
    """[C*T, P, D] -> [C, H, W, D]."""
    C, th, tw, ts = plan.n_cameras, plan.tile_height, plan.tile_width, plan.tile_size
    D = x.shape[-1]
    img = x.view(C, th, tw, ts, ts, D).permute(0, 1, 3, 2, 4, 5).reshape(C, th * ts, tw * ts, D)
    return img[:, : plan.height, : plan.width].contiguous()


def image_to_tiles(img: Tensor, plan: TilePlan) -> Tensor:
    """[C, H, W, D] -> [C*T, P, D] (zero padded to whole tiles)."""
    C, th, tw, ts = plan.n_cameras, plan.tile_height, plan.tile_width, plan.tile_size
    D = img.shape[-1]
    ph = th * ts - plan.height
    pw = tw * ts - plan.width
    if ph or pw:
        img = F.pad(img, (0, 0, 0, pw, 0, ph))
    return img.reshape(C, th, ts, tw, ts, D).permute(0, 1, 3, 2, 4, 5).reshape(C * th * tw, ts * ts, D)


class _CompositeTiles(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        coeffs: Tensor,  # [M + 1, 6]
        colors: Tensor,  # [R, D] rows addressed by the plan's color_idx
        backgrounds: Optional[Tensor],  # [C, D] or None
        plan: TilePlan,
        basis: Tensor,  # [P, 6]
    ) -> Tuple[Tensor, Tensor]:
        C, T = plan.n_cameras, plan.tiles_per_image
        P = basis.shape[0]
        D = colors.shape[-1]
        with flush_denormal():
            out = colors.new_zeros(C * T, P, D)
            log_tf = colors.new_zeros(C * T, P)
            for ch in plan.chunks:
                K = coeffs[ch.pair_idx]
                col = colors[ch.color_idx]
                a, log1m, cs, incl = _chunk_alphas(K, basis)
                w, _ = _weights(a, log1m, cs, incl)
                out[ch.tile_ids] = torch.bmm(w, col)
                log_tf[ch.tile_ids] = (log1m.mul_(incl)).sum(-1)
            tf = log_tf.exp()
            if backgrounds is not None:
                bg_tiles = backgrounds.repeat_interleave(T, dim=0)  # [C*T, D]
                out.addcmul_(tf[..., None], bg_tiles[:, None, :])
            render = tiles_to_image(out, plan)
            alpha = tiles_to_image((1.0 - tf)[..., None], plan)
        ctx.plan = plan
        ctx.has_bg = backgrounds is not None
        ctx.save_for_backward(coeffs, colors, backgrounds if backgrounds is not None else coeffs, tf, basis)
        return render, alpha

    @staticmethod
    def backward(ctx, g_render: Tensor, g_alpha: Tensor):  # type: ignore[override]
        coeffs, colors, backgrounds, tf, basis = ctx.saved_tensors
        plan: TilePlan = ctx.plan
        if not ctx.has_bg:
            backgrounds = None
        need_k, need_col = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_bg = backgrounds is not None and ctx.needs_input_grad[2]
        C, T = plan.n_cameras, plan.tiles_per_image
        d_coeffs = torch.zeros_like(coeffs) if need_k else None
        d_colors = torch.zeros_like(colors) if need_col else None
        d_bg = None
        with flush_denormal():
            g = image_to_tiles(g_render.contiguous(), plan)  # [C*T, P, D]
            if need_bg:
                d_bg = (g * tf[..., None]).reshape(C, T * g.shape[1], -1).sum(1)
            if need_k:
                ga = image_to_tiles(g_alpha.contiguous(), plan)[..., 0]  # [C*T, P]
                rest = -ga
                if backgrounds is not None:
                    bg_tiles = backgrounds.repeat_interleave(T, dim=0)
                    rest = rest + (g * bg_tiles[:, None, :]).sum(-1)
                rest = rest * tf  # T_final * (bg . g - g_alpha), [C*T, P]
            if need_k or need_col:
                for ch in plan.chunks:
                    K = coeffs[ch.pair_idx]
                    a, log1m, cs, incl = _chunk_alphas(K, basis)
                    w, t_excl = _weights(a, log1m, cs, incl)
                    gc = g[ch.tile_ids]  # [B, P, D]
                    if need_col:
                        d_col = torch.bmm(w.transpose(1, 2), gc)  # [B, G, D]
                        d_colors.index_add_(0, ch.color_idx.reshape(-1), d_col.reshape(-1, d_col.shape[-1]))
                    if need_k:
                        col = colors[ch.color_idx]
                        cg = torch.bmm(gc, col.transpose(1, 2))  # [B, P, G]
                        s = torch.cumsum(w.mul_(cg), dim=-1)
                        suffix = s[..., -1:] - s
                        suffix.add_(rest[ch.tile_ids][..., None])
                        # dL/dalpha, then through alpha = exp(logit) where not clamped/skipped
                        one_minus_a = log1m.exp_()
                        d_a = t_excl.mul_(cg).sub_(suffix.div_(one_minus_a))
                        live = incl & (a < MAX_ALPHA)
                        d_logit = d_a.mul_(a).mul_(live)
                        dK = torch.matmul(d_logit.transpose(1, 2), basis)  # [B, G, 6]
                        d_coeffs.index_add_(0, ch.pair_idx.reshape(-1), dK.reshape(-1, 6))
        return d_coeffs, d_colors, d_bg, None, None


def composite(
    coeffs: Tensor,
    colors: Tensor,
    backgrounds: Optional[Tensor],
    plan: TilePlan,
    basis: Tensor,
) -> Tuple[Tensor, Tensor]:
    """Returns renders [C, H, W, D] and alphas [C, H, W, 1]."""
    return _CompositeTiles.apply(coeffs, colors, backgrounds, plan, basis)
