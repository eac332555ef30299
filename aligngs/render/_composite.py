"""Front-to-back alpha compositing of tile-binned Gaussians (CPU), with a hand-written backward.

Two kernels compute it: the dense torch kernels below, and a per-pixel C++ loop (``csrc/composite.cpp``,
loaded by ``_cpp``) that skips the pixels where a pair stays under 1/255 and computes each pair's coefficients
from its Gaussian's projected mean, conic and opacity as it goes (the ``kernel`` argument of ``composite``; it
cannot keep per-pixel weights or the median depth, which the torch kernels provide). The torch kernels:

Per (tile, Gaussian) pair the log-alpha over the tile's pixels is a quadratic in the pixel offset
(u, v) from the tile centre:

    log(opacity * exp(-sigma)) = k0 + k1 u + k2 v + k3 u^2 + k4 u v + k5 v^2,

so one chunk of tiles evaluates all its alphas as a single matmul of the [B, G, 6] pair
coefficients with a fixed [P, 6] pixel basis. Compositing follows gsplat 1.5.3's kernel:
``alpha = min(0.999, opacity * exp(-sigma))``, pairs with ``alpha < 1/255`` are skipped, a
Gaussian whose inclusion would drop the transmittance to ``<= 1e-4`` ends the pixel (exclusive),
``colour = sum_i c_i alpha_i T_i + T_final * background``, ``alpha_out = 1 - T_final``.

The backward recomputes each chunk's alphas (memory stays bounded by the chunk size) and uses the
standard 3DGS gradient

    dL/dalpha_i = T_i (c_i . g) - (sum_{j>i} w_j (c_j . g) + T_final (bg . g - g_alpha)) / (1 - alpha_i).

The transmittances are one ``cumprod`` of (1 - alpha) per pixel row (exclusive T = inclusive T / (1 - alpha),
1 - alpha >= 0.001), not exp(cumsum(log(1 - alpha))): exp, log and the scan each cost ~1.2 ns per element
here against ~0.2 ns for a multiply, so dropping a log and an exp from the forward and the backward cut
compositing by about a third.

Speed notes (2-core x86, float32): chunks are cache-sized and sorted by Gaussian count (little
padding); every exp() input is clamped to >= -30 because exp() of inputs below ~-87 (results in
the denormal range or 0) is ~100x slower in torch's vectorised kernel, with or without
flush-to-zero; bool masks are avoided (masked_fill/where/bool comparisons are ~20x slower than
float elementwise ops); all ops are single-threaded (OpenMP stalls on shared cores) and the chunks are spread
over the calling thread plus ``workers - 1`` pool threads (``for_each_parallel``), each writing its own tiles'
outputs and pairs' gradients (a consumer thread collecting results competed with the workers for the two cores:
1.2-1.3x from a second worker, against 1.6-1.7x now); the small-output matmuls are computed transposed
(``_bmm_t``).
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ._projection import ALPHA_THRESHOLD
from ._threads import Workers, flush_denormal, for_each_parallel, single_threaded_torch
from ._tiles import Chunk, TilePlan, pair_halves

MAX_ALPHA = 0.999
LOG_MAX_ALPHA = math.log(MAX_ALPHA)
T_EPS = 1e-4
LOG_FLOOR = -30.0  # exp(-30) ~ 1e-13: far below the 1/255 cut-off, far above denormals
PAD_LOGIT = LOG_FLOOR
SAVE_BYTES = 1 << 30  # forward intermediates kept for the backward, at most (else it recomputes them)


def pixel_basis(tile_size: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """[P, 6] rows (1, u, v, u^2, u v, v^2) for the tile's pixels in row-major order."""
    c = (tile_size - 1) / 2.0
    r = torch.arange(tile_size, dtype=dtype, device=device) - c
    v, u = torch.meshgrid(r, r, indexing="ij")
    u = u.reshape(-1)
    v = v.reshape(-1)
    return torch.stack([torch.ones_like(u), u, v, u * u, u * v, v * v], dim=-1)


class _PairCoefficients(torch.autograd.Function):
    """Quadratic log-alpha coefficients per (tile, Gaussian) pair with a closed-form backward.

    With d = (mean - tile centre) and conic (a, b, c):
    k1 = a dx + b dy, k2 = b dx + c dy, k0 = log(o) - (dx k1 + dy k2) / 2,
    (k3, k4, k5) = (-a / 2, -b, -c / 2).

    Computed on contiguous per-quantity rows ([6, pairs]; strided columns run scalar loops) in two halves of the
    pairs on the workers, forward and backward; the backward's scatter onto the Gaussians is one ``index_add_``.
    """

    @staticmethod
    def forward(ctx, means2d: Tensor, conics: Tensor, opacities: Tensor, plan: TilePlan, workers: Workers):  # type: ignore[override]
        ids = plan.pair_flat_ids
        ts = plan.tile_size
        M = ids.shape[0]
        dtype = means2d.dtype
        table = torch.cat([means2d.detach().reshape(-1, 2), conics.detach().reshape(-1, 3),
                           opacities.detach().reshape(-1, 1)], dim=1)  # [C * N, 6]
        kt = means2d.new_empty(6, M + 1)  # rows k0..k5; the last column is the padding pair
        saved = means2d.new_empty(8, M)  # dx, dy, a, b, c, o, k1, k2
        halves = pair_halves(M)

        def run(h: int) -> None:
            s, n = halves[h]
            local = plan.pair_tiles.narrow(0, s, n) % plan.tiles_per_image
            xc = (local % plan.tile_width).to(dtype) * ts + 0.5 * ts
            yc = torch.div(local, plan.tile_width, rounding_mode="floor").to(dtype) * ts + 0.5 * ts
            mx, my, a, b, c, o = table.index_select(0, ids.narrow(0, s, n)).t().contiguous().unbind(0)
            sv = saved.narrow(1, s, n)
            dx = torch.sub(mx, xc, out=sv[0])
            dy = torch.sub(my, yc, out=sv[1])
            for j, v in enumerate((a, b, c, o)):
                sv[2 + j].copy_(v)
            k = kt.narrow(1, s, n)
            k1 = torch.addcmul(a * dx, b, dy, out=k[1])
            k2 = torch.addcmul(b * dx, c, dy, out=k[2])
            sv[6].copy_(k1)
            sv[7].copy_(k2)
            torch.log(o, out=k[0]).sub_(0.5 * (dx * k1 + dy * k2))
            torch.mul(a, -0.5, out=k[3])
            torch.neg(b, out=k[4])
            torch.mul(c, -0.5, out=k[5])

        with single_threaded_torch():
            for_each_parallel(run, len(halves), workers)
            kt[:, M] = 0.0
            kt[0, M] = PAD_LOGIT
            k = kt.t().contiguous()
        ctx.plan = plan
        ctx.workers = workers
        ctx.shapes = (means2d.shape, conics.shape, opacities.shape)
        ctx.save_for_backward(saved)
        return k

    @staticmethod
    def backward(ctx, dK: Tensor):  # type: ignore[override]
        (saved,) = ctx.saved_tensors
        ids = ctx.plan.pair_flat_ids
        M = ids.shape[0]
        s_m, s_c, s_o = ctx.shapes
        per_pair = dK.new_empty(6, M)  # gradient rows: mean x, y, conic a, b, c, opacity
        halves = pair_halves(M)

        def run(h: int) -> None:
            s, n = halves[h]
            d0, d1, d2, d3, d4, d5 = dK.narrow(0, s, n).t().contiguous().unbind(0)
            dx, dy, a, b, c, o, k1, k2 = saved.narrow(1, s, n).unbind(0)
            g = per_pair.narrow(1, s, n)
            torch.sub(d1 * a + d2 * b, d0 * k1, out=g[0])
            torch.sub(d1 * b + d2 * c, d0 * k2, out=g[1])
            half0 = 0.5 * d0
            torch.sub(d1 * dx - half0 * dx * dx, 0.5 * d3, out=g[2])
            torch.sub(d1 * dy + d2 * dx - d0 * dx * dy, d4, out=g[3])
            torch.sub(d2 * dy - half0 * dy * dy, 0.5 * d5, out=g[4])
            torch.div(d0, o, out=g[5])

        with single_threaded_torch(), flush_denormal():
            for_each_parallel(run, len(halves), ctx.workers)
            grad = dK.new_zeros(s_o.numel(), 6).index_add_(0, ids, per_pair.t())
            g_m = grad[:, :2].reshape(s_m)
            g_c = grad[:, 2:5].reshape(s_c)
            g_o = grad[:, 5].reshape(s_o)
        return g_m, g_c, g_o, None, None


def pair_coefficients(
    means2d: Tensor,  # [C, N, 2]
    conics: Tensor,  # [C, N, 3]
    opacities: Tensor,  # [C, N]
    plan: TilePlan,
    workers: Workers = 1,
) -> Tensor:
    """Quadratic log-alpha coefficients per (tile, Gaussian) pair, [M + 1, 6] (last row: padding),
    differentiable w.r.t. means2d, conics and opacities."""
    return _PairCoefficients.apply(means2d, conics, opacities, plan, workers)


def _bmm_t(x: Tensor, y: Tensor) -> Tensor:
    """``x @ y`` for [B, n, k] @ [B, k, d] (or [k, d]) with a small d (channels, 6 coefficients), computed as
    ``(y^T @ x^T)^T``: the BLAS here is 3-6x slower when the output's last dimension is that small (float32,
    [10, 64, 200] tiles x pixels x Gaussians: 188-231 us vs 37-66 us). Returns a transposed (non-contiguous) view."""
    yt = y.transpose(-1, -2)
    if yt.dim() == 2:
        yt = yt.expand(x.shape[0], -1, -1)
    return torch.bmm(yt, x.transpose(1, 2)).transpose(1, 2)


def _alpha_cut(dtype: torch.dtype) -> float:
    """Largest value below 1/255 in ``dtype``: ``threshold(x, cut)`` keeps exactly x >= 1/255."""
    t = torch.tensor(ALPHA_THRESHOLD, dtype=dtype)
    return float(torch.nextafter(t, torch.zeros_like(t)))


class _ChunkMath:
    """The per-chunk kernels; shared read-only state for the worker threads.

    Bool masks are avoided on purpose: masked_fill/where/comparisons into bool tensors are ~20x
    slower than float elementwise ops here, so masks are float (comparison with a float ``out``)
    or folded into ``threshold``.
    """

    def __init__(self, coeffs: Tensor, colors: Tensor, basis: Tensor, median_channel: Optional[int] = None):
        self.median_channel = median_channel
        self.coeffs = coeffs
        self.colors = colors
        self.basis = basis
        self.cut = _alpha_cut(coeffs.dtype)
        # exp(LOG_MAX_ALPHA) as the vectorised exp of a chunk computes it (what a clamped logit becomes)
        self.alpha_max = float(torch.exp(torch.full((64,), LOG_MAX_ALPHA, dtype=coeffs.dtype))[0])
        self.D = colors.shape[-1]

    def gather(self, ch: Chunk) -> Tuple[Tensor, Tensor]:
        B, G = ch.pair_idx.shape
        K = self.coeffs.index_select(0, ch.pair_idx.reshape(-1)).view(B, G, 6)
        col = self.colors.index_select(0, ch.color_idx.reshape(-1)).view(B, G, self.D)
        return K, col

    def _raw_alphas(self, K: Tensor) -> Tuple[Tensor, Tensor]:
        """Clamped log-alphas [B, P, G] and alphas with the < 1/255 ones set to 0."""
        logit = torch.matmul(self.basis, K.transpose(1, 2))  # [B, P, G]
        logit.clamp_(min=LOG_FLOOR, max=LOG_MAX_ALPHA)
        a = torch.exp(logit)
        F.threshold(a, self.cut, 0.0, inplace=True)
        return logit, a

    def forward(self, ch: Chunk, save: bool = False) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor], Optional[tuple]]:
        """Chunk colours [B, P, D], T_final [B, P], weights [B, P, G], median channel [B, P] or None and, with
        ``save``, (exclusive T, alpha) [B, P, G] each for the backward (which then skips recomputing them)."""
        K, col = self.gather(ch)
        _, a = self._raw_alphas(K)
        one_m = torch.rsub(a, 1.0)  # 1 - a >= 0.001
        t_incl = torch.cumprod(one_m, dim=-1)  # transmittance after each Gaussian
        med = None
        if self.median_channel is not None:
            # the channel (depth) of the first Gaussian after which the transmittance is <= 0.5; 0 if none
            hit = torch.le(t_incl, 0.5)  # [B, P, G]
            first = hit.to(torch.uint8).argmax(dim=-1, keepdim=True)  # first True (0 when none)
            vals = col[..., self.median_channel][:, None, :].expand(-1, t_incl.shape[1], -1)
            med = torch.gather(vals, 2, first)[..., 0] * hit.any(dim=-1)  # [B, P]
        # a Gaussian whose inclusion takes T to <= 1e-4 ends the pixel (exclusive): zeroing its inclusive T
        # zeroes its exclusive T (= inclusive / (1 - a)) and every later one's, so it and the rest weigh 0
        F.threshold(t_incl, T_EPS, 0.0, inplace=True)
        t_excl = t_incl.div_(one_m)
        w = t_excl * a if save else t_excl.mul_(a)  # T_excl * alpha
        out = _bmm_t(w, col)  # [B, P, D]
        tf = w.sum(-1).neg_().add_(1.0)  # T_final = 1 - sum of weights
        return out, tf, w, med, ((t_excl, a) if save else None)

    def backward(
        self, ch: Chunk, g: Tensor, rest: Optional[Tensor], need_k: bool, need_col: bool,
        saved: Optional[tuple] = None,
    ) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """g: tile view [C, th, tw, ts, ts, D] of the upstream gradient; rest: tile view
        [C, th, tw, ts, ts] of T_final (bg . g - g_alpha); saved: the forward's (exclusive T, alpha) of this
        chunk, or None to recompute them. Never writes into ``saved`` (a second backward may read it)."""
        B, G = ch.pair_idx.shape
        col = self.colors.index_select(0, ch.color_idx.reshape(-1)).view(B, G, self.D)
        if saved is not None:
            t_excl, a_raw = saved
            # float 0/1: not clamped at 0.999 (the clamped alphas are exactly exp(LOG_MAX_ALPHA))
            live = torch.lt(a_raw, self.alpha_max, out=torch.empty_like(a_raw)) if need_k else None
            one_m = torch.rsub(a_raw, 1.0)
            a = torch.gt(t_excl, 0.0, out=torch.empty_like(t_excl)).mul_(a_raw)  # composited pairs only
        else:
            K = self.coeffs.index_select(0, ch.pair_idx.reshape(-1)).view(B, G, 6)
            logit, a = self._raw_alphas(K)
            live = torch.lt(logit, LOG_MAX_ALPHA, out=logit) if need_k else None  # float: not clamped
            one_m = torch.rsub(a, 1.0)
            t_excl = torch.cumprod(one_m, dim=-1)  # inclusive transmittance for now
            a.mul_(torch.gt(t_excl, T_EPS, out=torch.empty_like(t_excl)))  # float 0/1: composited
            t_excl.div_(one_m)  # exclusive: T before each Gaussian
        w = t_excl * a
        B, P = a.shape[0], a.shape[1]
        gc = g[ch.where].reshape(B, P, -1)  # [B, P, D]
        d_col = _bmm_t(w.transpose(1, 2), gc) if need_col else None  # [B, G, D]
        dK = None
        if need_k:
            cg = torch.bmm(gc, col.transpose(1, 2))  # [B, P, G]
            s = torch.cumsum(w.mul_(cg), dim=-1)
            total = s[..., -1:] + rest[ch.where].reshape(B, P, 1)
            suffix = torch.sub(total, s, out=s)  # sum_{j>i} w_j c_j.g + T_f (bg.g - g_alpha)
            suffix.div_(one_m)
            # dL/dlogit = alpha * dL/dalpha where alpha = exp(logit) was not clamped at 0.999
            d_logit = torch.mul(t_excl, cg).sub_(suffix).mul_(a).mul_(live)
            dK = _bmm_t(d_logit.transpose(1, 2), self.basis)  # [B, G, 6]
        return dK, d_col


def _tile_view(img: Tensor, plan: TilePlan) -> Tensor:
    """[C, th*ts, tw*ts, ...] -> strided view [C, th, tw, ts, ts, ...] (same storage)."""
    C, th, tw, ts = plan.n_cameras, plan.tile_height, plan.tile_width, plan.tile_size
    rest = img.shape[3:]
    v = img.view(C, th, ts, tw, ts, *rest)
    return v.permute(0, 1, 3, 2, 4, *range(5, 5 + len(rest)))


def _padded(img: Tensor, plan: TilePlan) -> Tensor:
    """Zero-pad [C, H, W, ...] to whole tiles (no copy when already whole)."""
    ph = plan.tile_height * plan.tile_size - plan.height
    pw = plan.tile_width * plan.tile_size - plan.width
    img = img.contiguous()
    if ph == 0 and pw == 0:
        return img
    pad = [0, 0] * (img.dim() - 3) + [0, pw, 0, ph]
    return F.pad(img, pad)


def _save_for_backward(ctx, plan: TilePlan, dtype: torch.dtype) -> bool:
    """Keep each chunk's exclusive transmittances and alphas for the backward (which then skips the gather,
    the matmul, the exp and the scan: about half its work) when the coefficients need a gradient and the
    two [tiles, pixels, Gaussians] arrays of all chunks fit in ``SAVE_BYTES``; else the backward recomputes."""
    if not ctx.needs_input_grad[0]:
        return False
    elems = sum(ch.padded_pairs for ch in plan.chunks) * plan.tile_size * plan.tile_size
    return 2 * elems * torch.finfo(dtype).bits // 8 <= SAVE_BYTES


class _CompositeTiles(torch.autograd.Function):
    """Chunk outputs are written straight into (and upstream gradients read straight from) the
    image through a strided tile view, so no full-image tile<->image copies or zero fills are
    made (they cost ~5 ms each for a 160x120x150 image here)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        coeffs: Tensor,  # torch kernels: [M + 1, 6] pair coefficients; C++ kernel: [C * N, 6] Gaussian rows
        colors: Tensor,  # [R, D] rows addressed by the plan's color_idx
        backgrounds: Optional[Tensor],  # [C, D] or None
        plan: TilePlan,
        basis: Tensor,  # [P, 6]
        workers: Workers,
        keep: Optional[dict],  # if given, receives "weights" (per chunk) and "tf" [C, H, W]; with
        # keep["median_channel"] = c also "median" [C, H, W]: channel c of the Gaussian at which T reaches 0.5
        kernel: Optional[ModuleType],  # the C++ kernel (used when nothing is kept), or None: the torch kernels
    ) -> Tuple[Tensor, Tensor]:
        C, ts = plan.n_cameras, plan.tile_size
        D = colors.shape[-1]
        coeffs_d, colors_d = coeffs.detach().contiguous(), colors.detach().contiguous()
        bg = backgrounds.detach().contiguous() if backgrounds is not None else None
        median_channel = keep.get("median_channel") if keep is not None else None
        km = _ChunkMath(coeffs_d, colors_d, basis, median_channel)
        Hp, Wp = plan.tile_height * ts, plan.tile_width * ts
        with flush_denormal(), single_threaded_torch():
            img = colors_d.new_empty(C, Hp, Wp, D)
            tf = colors_d.new_empty(C, Hp, Wp)
            img_t, tf_t = _tile_view(img, plan), _tile_view(tf, plan)
            med_img = colors_d.new_zeros(C, Hp, Wp) if median_channel is not None else None
            n_chunks = len(plan.chunks)
            want_weights = keep is not None and keep.get("weights", True) is not None
            kept: List[Optional[Tensor]] = [None] * n_chunks
            if kernel is not None and keep is not None:
                raise ValueError("composite: the C++ kernel keeps no per-pixel weights; use the torch kernels")
            cpp = kernel
            save = cpp is None and _save_for_backward(ctx, plan, coeffs.dtype)
            saved: List[Optional[tuple]] = [None] * n_chunks
            rows = plan.pair_color_rows() if cpp is not None else None
            chunks = plan.chunks if cpp is not None else plan.padded_chunks()

            def per_pixel(i: int) -> None:  # the C++ loop; each chunk owns its tiles, so writes never overlap
                cpp.composite_forward(coeffs_d, colors_d, plan.pair_flat_ids, rows, plan.tile_starts,
                                      plan.tile_counts, chunks[i].tile_ids, bg, img, tf, plan.tiles_per_image,
                                      plan.tile_width, ts, *_cpp_rules())

            def dense(i: int) -> None:
                # each chunk owns its tiles: the writes of different chunks never overlap
                ch = chunks[i]
                o, t, w, med, saved[i] = km.forward(ch, save=save)
                B = o.shape[0]
                if med_img is not None:
                    _tile_view(med_img, plan).index_put_(ch.where, med.view(B, ts, ts))
                if want_weights:
                    kept[i] = w
                if bg is not None:
                    o.addcmul_(t[..., None], bg.index_select(0, ch.where[0])[:, None, :])
                img_t.index_put_(ch.where, o.reshape(B, ts, ts, D))
                tf_t.index_put_(ch.where, t.view(B, ts, ts))

            for_each_parallel(per_pixel if cpp is not None else dense, n_chunks, workers)
            if plan.empty is not None:
                fill = bg.index_select(0, plan.empty[0])[:, None, None, :] if bg is not None else 0.0
                img_t.index_put_(plan.empty, torch.zeros_like(img_t[plan.empty]) + fill)
                tf_t.index_put_(plan.empty, torch.ones_like(tf_t[plan.empty]))
            render = img[:, : plan.height, : plan.width]
            tf = tf[:, : plan.height, : plan.width]
            if Hp != plan.height or Wp != plan.width:
                render, tf = render.contiguous(), tf.contiguous()
            alpha = (1.0 - tf)[..., None]
            if keep is not None:
                if want_weights:
                    keep["weights"] = kept
                keep["tf"] = tf
                if med_img is not None:
                    keep["median"] = med_img[:, : plan.height, : plan.width].contiguous()
        ctx.plan = plan
        ctx.workers = workers
        ctx.kernel = cpp
        ctx.saved_chunks = saved if save else None
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
        d_coeffs = torch.zeros_like(coeffs) if need_k else None
        d_colors = torch.zeros_like(colors) if need_col else None
        d_bg = None
        with flush_denormal(), single_threaded_torch():
            if need_bg:
                d_bg = torch.einsum("chwd,chw->cd", g_render, tf)
            if need_k or need_col:
                cpp = ctx.kernel
                rest = None
                if need_k or cpp is not None:  # the C++ backward reads it even for the colours alone
                    rest = -g_alpha[..., 0]
                    if backgrounds is not None:
                        rest = rest + torch.einsum("chwd,cd->chw", g_render, backgrounds)
                    rest = _padded(rest * tf, plan)  # T_f (bg . g - g_alpha)
                grad = _padded(g_render, plan)
                # per pair (each real pair belongs to exactly one tile, so the chunks' writes never overlap; the
                # padding row stays 0), then one reduction onto the colour rows in a fixed order: the result does
                # not depend on the worker count
                d_pairs = None
                if cpp is not None:
                    # per pair (the kernel writes every row of its tiles' pairs): d/d its Gaussian's row (mean,
                    # conic, opacity) and its colour, summed onto those rows below
                    coeffs_d, colors_d = coeffs.detach().contiguous(), colors.detach().contiguous()
                    d_pairs = coeffs.new_empty(plan.n_pairs, 6)
                    d_pair_col = colors.new_empty(plan.n_pairs, colors.shape[-1]) if need_col else None
                    rows = plan.pair_color_rows()

                    def work(i: int) -> None:
                        cpp.composite_backward(coeffs_d, colors_d, plan.pair_flat_ids, rows, plan.tile_starts,
                                               plan.tile_counts, plan.chunks[i].tile_ids, grad, rest, d_pairs,
                                               d_pair_col, plan.tiles_per_image, plan.tile_width, plan.tile_size,
                                               *_cpp_rules())
                else:
                    d_pair_col = colors.new_zeros(plan.n_pairs + 1, colors.shape[-1]) if need_col else None
                    g_t = _tile_view(grad, plan)
                    rest_t = _tile_view(rest, plan) if rest is not None else None
                    km = _ChunkMath(coeffs, colors, basis)
                    saved = ctx.saved_chunks or [None] * len(plan.chunks)
                    chunks = plan.padded_chunks()

                    def work(i: int) -> None:
                        ch = chunks[i]
                        dK, d_col = km.backward(ch, g_t, rest_t, need_k, need_col, saved[i])
                        rows = ch.pair_idx.reshape(-1)
                        if dK is not None:
                            d_coeffs.index_copy_(0, rows, dK.reshape(-1, 6))
                        if d_col is not None:
                            d_pair_col.index_copy_(0, rows, d_col.reshape(-1, d_col.shape[-1]))

                for_each_parallel(work, len(plan.chunks), ctx.workers)
                if cpp is not None:
                    if need_k:
                        cpp.scatter_add_rows(d_pairs, plan.pair_flat_ids, d_coeffs)
                    if need_col:
                        cpp.scatter_add_rows(d_pair_col, rows, d_colors)
                elif need_col:
                    d_colors.index_add_(0, plan.pair_color_rows(), d_pair_col[: plan.n_pairs])
        return d_coeffs, d_colors, d_bg, None, None, None, None, None


def _cpp_rules() -> Tuple[float, float, float, float]:
    return LOG_FLOOR, LOG_MAX_ALPHA, ALPHA_THRESHOLD, T_EPS


def composite(
    coeffs: Tensor,
    colors: Tensor,
    backgrounds: Optional[Tensor],
    plan: TilePlan,
    basis: Tensor,
    workers: Workers = 1,
    keep: Optional[dict] = None,
    kernel: Optional[ModuleType] = None,
) -> Tuple[Tensor, Tensor]:
    """Returns renders [C, H, W, D] and alphas [C, H, W, 1].

    ``kernel``: None for the torch kernels, which take ``coeffs`` = the pair coefficients [M + 1, 6]
    (``pair_coefficients``); or the C++ kernel module (``_cpp.kernel``), which takes ``coeffs`` = the projected
    Gaussians' rows [C * N, 6] (mean x, y, conic a, b, c, opacity) and differentiates w.r.t. them.
    ``keep`` (a dict; torch kernels only) receives the compositing weights for ``render_features``."""
    return _CompositeTiles.apply(coeffs, colors, backgrounds, plan, basis, workers, keep, kernel)
