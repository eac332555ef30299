"""The projection and SH colours through the C++ kernel (``csrc/project.cpp``): autograd functions over its
per-range forward and hand-written backward, run as two halves of the Gaussians on the workers.

Same outputs and gradients as ``_projection.project_gaussians`` / ``_projection.sh_colors`` (tested against them),
w.r.t. the Gaussians only: the cameras (``viewmats``, ``Ks``) are constants here, so a caller that needs their
gradient uses the torch version (``uses_cpp_projection``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Optional, Tuple

import torch
from torch import Tensor

from ._threads import Workers, for_each_parallel, gaussian_parts, single_threaded_torch, spans


def _halves(n: int):
    return spans(n, gaussian_parts(n))


def _contig(t: Optional[Tensor]) -> Optional[Tensor]:
    return None if t is None else t.contiguous()


class _Project(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, quats, scales, opacities, viewmats, Ks, kernel: ModuleType, workers: Workers, opts: tuple):  # type: ignore[override]
        width, height, eps2d, near_plane, far_plane, radius_clip, antialiased = opts
        inputs = [t.detach().contiguous() for t in (means, quats, scales, opacities, viewmats, Ks)]
        C, N = viewmats.shape[0], means.shape[0]
        means2d = means.new_empty(C, N, 2)
        conics = means.new_empty(C, N, 3)
        depths = means.new_empty(C, N)
        opac = means.new_empty(C, N)
        radii = torch.empty(C, N, 2, dtype=torch.int32)
        parts = _halves(N)

        def run(i: int) -> None:
            s, n = parts[i]
            kernel.project_forward(*inputs, s, n, width, height, eps2d, near_plane, far_plane, radius_clip,
                                   antialiased, means2d, conics, depths, opac, radii)

        with single_threaded_torch():
            for_each_parallel(run, len(parts), workers)
        ctx.kernel, ctx.workers, ctx.opts = kernel, workers, opts
        ctx.save_for_backward(*inputs)
        ctx.mark_non_differentiable(radii)
        return means2d, conics, depths, opac, radii

    @staticmethod
    def backward(ctx, g_means2d, g_conics, g_depths, g_opac, _g_radii):  # type: ignore[override]
        inputs = ctx.saved_tensors
        means, quats, scales, opacities = inputs[:4]
        width, height, eps2d, _, _, _, antialiased = ctx.opts
        d = [torch.zeros_like(t) for t in (means, quats, scales, opacities)]
        grads = [_contig(g) for g in (g_means2d, g_conics, g_depths, g_opac)]
        parts = _halves(means.shape[0])

        def run(i: int) -> None:
            s, n = parts[i]
            ctx.kernel.project_backward(*inputs, s, n, width, height, eps2d, antialiased, *grads, *d)

        with single_threaded_torch():
            for_each_parallel(run, len(parts), ctx.workers)
        return (*d, None, None, None, None, None)


class _SH(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, coeffs, viewmats, degree: int, kernel: ModuleType, workers: Workers):  # type: ignore[override]
        inputs = [t.detach().contiguous() for t in (means, coeffs, viewmats)]
        C, N = viewmats.shape[0], means.shape[0]
        colors = means.new_empty(C, N, 3)
        parts = _halves(N)

        def run(i: int) -> None:
            s, n = parts[i]
            kernel.sh_forward(degree, *inputs, s, n, colors)

        with single_threaded_torch():
            for_each_parallel(run, len(parts), workers)
        ctx.kernel, ctx.workers, ctx.degree = kernel, workers, degree
        ctx.save_for_backward(*inputs)
        return colors

    @staticmethod
    def backward(ctx, g_colors):  # type: ignore[override]
        means, coeffs, viewmats = ctx.saved_tensors
        d_means, d_coeffs = torch.zeros_like(means), torch.zeros_like(coeffs)
        g = g_colors.contiguous()
        parts = _halves(means.shape[0])

        def run(i: int) -> None:
            s, n = parts[i]
            ctx.kernel.sh_backward(ctx.degree, means, coeffs, viewmats, s, n, g, d_means, d_coeffs)

        with single_threaded_torch():
            for_each_parallel(run, len(parts), ctx.workers)
        return d_means, d_coeffs, None, None, None, None


def uses_cpp_projection(kernel: Optional[ModuleType], viewmats: Tensor, Ks: Optional[Tensor] = None) -> bool:
    """Whether the C++ projection (or SH: ``Ks`` None) applies: a kernel was built and no camera gradient is
    wanted."""
    cams = (viewmats,) if Ks is None else (viewmats, Ks)
    return kernel is not None and not (torch.is_grad_enabled() and any(c.requires_grad for c in cams))


def project(
    kernel: ModuleType, means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, viewmats: Tensor, Ks: Tensor,
    width: int, height: int, *, eps2d: float, near_plane: float, far_plane: float, radius_clip: float,
    antialiased: bool, workers: Workers,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """-> means2d [C, N, 2], conics [C, N, 3], depths [C, N], opacities [C, N] (compensated when antialiased),
    radii [C, N, 2] int32; as ``_projection.project_gaussians``."""
    opts = (width, height, float(eps2d), float(near_plane), float(far_plane), float(radius_clip), bool(antialiased))
    return _Project.apply(means, quats, scales, opacities, viewmats, Ks, kernel, workers, opts)


def sh_colors(kernel: ModuleType, degree: int, means: Tensor, coeffs: Tensor, viewmats: Tensor, workers: Workers) -> Tensor:
    """[C, N, 3] SH colours as ``_projection.sh_colors`` (``coeffs`` [N, K, 3] or [C, N, K, 3])."""
    return _SH.apply(means, coeffs, viewmats, degree, kernel, workers)
