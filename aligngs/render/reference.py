"""Brute-force reference rasterizer: every pixel against every visible Gaussian, plain autograd.

The correctness oracle for ``aligngs.render.rasterization`` on CPU. It shares no code with the
fast path: projection uses gsplat's own pure-torch helpers (``_quat_scale_to_covar_preci``,
``_world_to_cam``, ``_persp_proj``), compositing is a dense depth-sorted cumulative product per
pixel, and gradients come from torch autograd (with checkpointing over pixel blocks so memory stays
bounded). Semantics follow gsplat 1.5.3's CUDA kernels:

* invisible: depth < near or > far, det(cov2d + eps2d I) <= 0, opacity < 1/255, both radii <=
  radius_clip, or the opacity-aware box ``ceil(min(3.33, sqrt(2 ln(255 o))) sqrt(cov_ii))`` misses
  the image;
* pixel centres at (x + 0.5, y + 0.5); ``alpha = min(0.999, o exp(-sigma))``; alpha < 1/255
  skipped; a Gaussian that would take the transmittance to <= 1e-4 is not composited and ends
  the pixel; colour += T * background; alpha_out = 1 - T.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

ALPHA_THRESHOLD = 1.0 / 255.0


def _project(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near_plane,
             far_plane, radius_clip, antialiased):
    from gsplat.cuda._torch_impl import _persp_proj, _quat_scale_to_covar_preci, _world_to_cam

    covars, _ = _quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    means_c, covars_c = _world_to_cam(means, covars, viewmats)  # [C, N, 3], [C, N, 3, 3]
    z = means_c[..., 2]
    front = z > 0
    # keep points at/behind the camera finite (they are culled below)
    safe = torch.where(front[..., None], means_c, torch.ones_like(means_c))
    means2d, cov2d = _persp_proj(safe, covars_c, Ks, width, height)
    det_orig = cov2d[..., 0, 0] * cov2d[..., 1, 1] - cov2d[..., 0, 1] * cov2d[..., 1, 0]
    cov2d = cov2d + eps2d * torch.eye(2, dtype=means.dtype)
    det = cov2d[..., 0, 0] * cov2d[..., 1, 1] - cov2d[..., 0, 1] * cov2d[..., 1, 0]
    det_safe = torch.where(det > 0, det, torch.ones_like(det))
    inv = torch.stack(
        [
            torch.stack([cov2d[..., 1, 1], -cov2d[..., 0, 1]], -1),
            torch.stack([-cov2d[..., 1, 0], cov2d[..., 0, 0]], -1),
        ],
        -2,
    ) / det_safe[..., None, None]
    opac = opacities[None].expand(viewmats.shape[0], -1)
    if antialiased:
        opac = opac * torch.sqrt(torch.clamp(det_orig / det_safe, min=0.0))
    with torch.no_grad():
        o = opac.detach()
        ext = torch.clamp(torch.sqrt(2 * torch.log(torch.clamp(o * 255.0, min=1.0))), max=3.33)
        rx = torch.ceil(ext * cov2d[..., 0, 0].detach().clamp(min=0).sqrt())
        ry = torch.ceil(ext * cov2d[..., 1, 1].detach().clamp(min=0).sqrt())
        mx, my = means2d.detach().unbind(-1)
        visible = (
            front & (z >= near_plane) & (z <= far_plane) & (det > 0) & (o >= ALPHA_THRESHOLD)
            & ((rx > radius_clip) | (ry > radius_clip))
            & (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
        )
        radii = torch.where(visible[..., None], torch.stack([rx, ry], -1), 0.0).to(torch.int32)
    return means2d, inv, z, opac, radii, visible


def _composite_block(pix: Tensor, m2d: Tensor, inv: Tensor, opac: Tensor, feats: Tensor):
    """pix [P, 2]; Gaussians sorted front to back: m2d [G, 2], inv [G, 2, 2], opac [G], feats [G, D]."""
    d = m2d[None, :, :] - pix[:, None, :]  # [P, G, 2]
    sigma = 0.5 * (
        inv[None, :, 0, 0] * d[..., 0] ** 2 + inv[None, :, 1, 1] * d[..., 1] ** 2
    ) + inv[None, :, 0, 1] * d[..., 0] * d[..., 1]
    raw = opac[None, :] * torch.exp(-sigma.clamp(max=60.0))
    alpha = torch.clamp(raw, max=0.999)
    alpha = torch.where((raw >= ALPHA_THRESHOLD) & (sigma >= 0), alpha, torch.zeros_like(alpha))
    with torch.no_grad():
        incl = torch.cumprod(1.0 - alpha, dim=-1) > 1e-4
    a = alpha * incl
    one_m = 1.0 - a
    t_excl = torch.cumprod(torch.cat([torch.ones_like(one_m[:, :1]), one_m[:, :-1]], -1), -1)
    w = a * t_excl
    color = w @ feats
    t_final = torch.prod(one_m, dim=-1)
    return color, t_final


def rasterization_reference(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    eps2d: float = 0.3,
    sh_degree: Optional[int] = None,
    backgrounds: Optional[Tensor] = None,
    render_mode: str = "RGB",
    rasterize_mode: str = "classic",
    pixel_block: Optional[int] = None,
) -> Tuple[Tensor, Tensor, Dict[str, Tensor]]:
    """Dense reference with ``rasterization``'s arguments (CPU, unbatched); returns (renders
    [C, H, W, X], alphas [C, H, W, 1], meta with radii, means2d, depths, conics, opacities)."""
    from gsplat.cuda._torch_impl import _spherical_harmonics

    C = viewmats.shape[0]
    N = means.shape[0]
    means2d, inv, depths, opac, radii, visible = _project(
        means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near_plane,
        far_plane, radius_clip, rasterize_mode == "antialiased",
    )
    if sh_degree is not None:
        campos = torch.inverse(viewmats)[:, :3, 3]
        dirs = means[None] - campos[:, None]
        shs = colors if colors.dim() == 4 else colors[None].expand(C, -1, -1, -1)
        feats = torch.clamp_min(_spherical_harmonics(sh_degree, dirs, shs) + 0.5, 0.0)
    else:
        feats = colors if colors.dim() == 3 else colors[None].expand(C, -1, -1)
    bg = backgrounds
    if render_mode in ("RGB+D", "RGB+ED"):
        feats = torch.cat([feats, depths[..., None]], -1)
        if bg is not None:
            bg = torch.cat([bg, torch.zeros_like(bg[:, :1])], -1)
    elif render_mode in ("D", "ED"):
        feats = depths[..., None]
        bg = None if bg is None else torch.zeros_like(bg[:, :1])

    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=means.dtype), torch.arange(width, dtype=means.dtype), indexing="ij"
    )
    pix = torch.stack([xs, ys], -1).reshape(-1, 2) + 0.5
    renders, alphas = [], []
    for c in range(C):
        ids = torch.nonzero(visible[c]).squeeze(1)
        ids = ids[torch.argsort(depths[c, ids].detach(), stable=True)]
        G = max(int(ids.numel()), 1)
        block = pixel_block or max(1, (1 << 22) // G)
        cols, tfs = [], []
        for s in range(0, pix.shape[0], block):
            args = (pix[s : s + block], means2d[c, ids], inv[c, ids], opac[c, ids], feats[c, ids])
            if torch.is_grad_enabled() and any(t.requires_grad for t in args):
                col, tf = checkpoint(_composite_block, *args, use_reentrant=False)
            else:
                col, tf = _composite_block(*args)
            cols.append(col)
            tfs.append(tf)
        col = torch.cat(cols).reshape(height, width, -1)
        tf = torch.cat(tfs).reshape(height, width, 1)
        if bg is not None:
            col = col + tf * bg[c]
        renders.append(col)
        alphas.append(1.0 - tf)
    renders_t = torch.stack(renders)
    alphas_t = torch.stack(alphas)
    if render_mode in ("ED", "RGB+ED"):
        renders_t = torch.cat(
            [renders_t[..., :-1], renders_t[..., -1:] / alphas_t.clamp(min=1e-10)], -1
        )
    conics = torch.stack([inv[..., 0, 0], inv[..., 0, 1], inv[..., 1, 1]], -1)
    meta = {"radii": radii, "means2d": means2d, "depths": depths, "conics": conics,
            "opacities": opac, "n_gaussians": torch.tensor(N)}
    return renders_t, alphas_t, meta
