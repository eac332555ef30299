"""``rasterization``: gsplat 1.5.3's entry point, on CUDA (gsplat itself) and on CPU (ours)."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor

from ._composite import composite, pair_coefficients, pixel_basis
from ._cpp import kernel as compiled_kernel
from ._threads import WorkerPool, Workers, default_workers, flush_denormal, gaussian_parts, single_threaded_torch
from ._features import FeatureWeights
from ._isolate import Split, isolated
from ._projection import project_gaussians, sh_colors
from ._project_cpp import project as cpp_project, sh_colors as cpp_sh_colors, uses_cpp_projection
from ._tiles import gsplat_isect_meta, plan_tiles

RENDER_MODES = ("RGB", "D", "ED", "RGB+D", "RGB+ED")
CPU_TILE_SIZE = 8
# Work-array budget of one chunk of tiles, in float32 elements of [tiles, pixels + channels,
# Gaussians]; sized so that a chunk's handful of temporaries stays in a 2 MiB L2 cache.
CPU_CHUNK_ELEMS = 1 << 17
# The CPU compositing kernel when the caller does not say (``cpu_kernel``): "auto" = the C++ kernel
# (``csrc/composite.cpp``, built on first use) where it builds, else the pure-torch kernels.
CPU_KERNEL = "auto"


def rasterization(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    colors: Tensor,  # [(C,) N, D] or [(C,) N, K, 3]
    viewmats: Tensor,  # [C, 4, 4]
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    eps2d: float = 0.3,
    sh_degree: Optional[int] = None,
    packed: bool = False,
    tile_size: Optional[int] = None,
    backgrounds: Optional[Tensor] = None,
    render_mode: str = "RGB",
    sparse_grad: bool = False,
    absgrad: bool = False,
    rasterize_mode: str = "classic",
    channel_chunk: int = 32,
    cpu_workers: Optional[Workers] = None,
    cpu_keep_weights: bool = False,
    cpu_median_depth: bool = False,
    cpu_kernel: Optional[str] = None,
    **gsplat_kwargs: Any,
) -> Tuple[Tensor, Tensor, Dict[str, Any]]:
    """Rasterize 3D Gaussians into C images; same arguments, outputs and ``meta`` as
    ``gsplat.rasterization`` (gsplat 1.5.3).

    CUDA tensors are passed straight to ``gsplat.rasterization`` (``tile_size`` defaults to 16
    there, ``packed`` to False here). CPU tensors go through a pure-torch tile rasterizer with the
    same math (EWA projection with gsplat's clamped Jacobian, ``eps2d`` blur, opacity-aware
    3.33-sigma box, depth-sorted front-to-back compositing with ``alpha = min(0.999, o e^-s)``,
    ``alpha < 1/255`` skipped, termination at transmittance 1e-4, SH like gsplat), differentiable
    w.r.t. means, quats, scales, opacities, colors and backgrounds. (The alpha clamp is gsplat
    1.5.3's 0.999, the value its CUDA kernel uses.) The opacity-aware box is exact: no pixel
    outside it reaches alpha >= 1/255. The CPU path further drops (tile, Gaussian) pairs whose
    tile has no pixel centre the Gaussian reaches (~30% of the box tiles), so ``meta``'s
    "tiles_per_gauss", "isect_ids", "flatten_ids" and "isect_offsets" describe its own 8-pixel
    tiles after that culling; "radii" are gsplat's.

    CPU kernels (``cpu_kernel``; default ``CPU_KERNEL`` = "auto"): "cpp" bins the tiles and composites in C++
    (``csrc/``, built on first use by ``torch.utils.cpp_extension`` like gsplat's CUDA kernels, ~1 min once,
    cached by torch): the binning is one pass over the candidate tiles plus a depth sort, and the compositing is a
    per-pixel loop that exponentiates and blends only the pairs reaching 1/255 at a pixel (~22% of the pixels of a
    pair's tile on a trained room), computing each pair's log-alpha quadratic from the projected mean, conic and
    opacity as it goes; "torch" does the same in dense tensor ops; "auto" is "cpp" where it builds, else
    "torch"; "cpp" raises where it cannot be built. Both give the same tile pairs (tested equal) and the same
    renders and gradients (to rounding; tested against each other and the brute-force reference). The torch
    compositing kernels always run for ``cpu_keep_weights`` and ``cpu_median_depth``. Shelf-rgbd model (137k
    tile pairs, 160x120, 1 thread): binning 10 ms (cpp) vs 22 ms (torch); 2 workers: compositing fwd + bwd
    31 + 47 ms (cpp, when the coefficients were still precomputed) vs 82 + 77 ms (torch).

    CPU threading: every torch op of the CPU path, forward and backward, runs single-threaded
    with flush-to-zero on the calling thread (torch's settings are restored afterwards). On the
    2-core machines this project runs on, shared with other processes, OpenMP intra-op threads
    stall whenever another process holds a core (median timings got 3-10x worse). Both cores are
    used through a small pool of Python threads instead (``cpu_workers``: a count, default the caller's torch
    thread count at most 2, whose threads are started per call; or a ``WorkerPool`` kept by the caller across
    renders, which a training loop should pass: fresh threads pay a warm-up on their first ops): the tile chunks,
    the two halves of the Gaussians in the projection and SH, and the two halves of the tile pairs in the culling
    and the pair coefficients; each piece writes its own memory and the
    split does not depend on the worker count, so results are bit-identical for any count.

    ``cpu_keep_weights=True`` (CPU only) keeps the per-pixel compositing weights in
    ``meta["feature_weights"]`` so that ``render_features(meta, features)`` can render other
    features of the same Gaussians and cameras (AlignGS's semantic pass with detached geometry)
    with one matmul per tile chunk; memory: 4 bytes x 64 x the number of tile-Gaussian pairs.

    ``cpu_median_depth=True`` (CPU only; a depth render mode) adds ``meta["median_depth"]``
    [C, H, W, 1]: the depth of the Gaussian at which a pixel's transmittance first drops to <= 0.5
    (0 where it never does), the surface depth 2DGS/PGSR-style mesh extraction fuses; not
    differentiable. On CUDA the key is absent (gsplat has no such output).

    CPU path limits: no batch dimensions, pinhole cameras only, ``packed=False``,
    ``absgrad=False``; ``tile_size`` defaults to 8 and ``channel_chunk`` is ignored (the channels
    are composited together, chunked over tiles instead).

    Args:
        means: Gaussian centres [N, 3].
        quats: wxyz rotations [N, 4], normalised internally.
        scales: per-axis scales (not log) [N, 3].
        opacities: opacities in [0, 1] [N].
        colors: features [N, D] / [C, N, D], or SH coefficients [N, K, 3] / [C, N, K, 3] when
            ``sh_degree`` is set (``(sh_degree + 1)^2 <= K``).
        viewmats: world-to-camera (OpenCV) [C, 4, 4].
        Ks: pinhole intrinsics [C, 3, 3].
        width, height: image size in pixels.
        backgrounds: [C, D] colour behind the Gaussians (depth channels get 0).
        render_mode: "RGB", "D" (accumulated depth), "ED" (expected depth = D / alpha), "RGB+D",
            "RGB+ED" (depth appended as the last channel).

    Returns:
        renders [C, H, W, X] (X = D, 1 or D + 1 by render_mode), alphas [C, H, W, 1], meta dict
        with "radii" (int32 [C, N, 2]), "means2d" ([C, N, 2], its ``.grad`` is what
        ``gsplat.strategy.DefaultStrategy`` reads), "depths", "conics", "opacities",
        "gaussian_ids" (None), "width", "height", "n_cameras", tile data, ...
    """
    if means.is_cuda:
        import gsplat

        return gsplat.rasterization(
            means, quats, scales, opacities, colors, viewmats, Ks, width, height,
            near_plane=near_plane, far_plane=far_plane, radius_clip=radius_clip, eps2d=eps2d,
            sh_degree=sh_degree, packed=packed, tile_size=16 if tile_size is None else tile_size,
            backgrounds=backgrounds, render_mode=render_mode, sparse_grad=sparse_grad,
            absgrad=absgrad, rasterize_mode=rasterize_mode, channel_chunk=channel_chunk,
            **gsplat_kwargs,
        )
    return _rasterization_cpu(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height,
        near_plane=near_plane, far_plane=far_plane, radius_clip=radius_clip, eps2d=eps2d,
        sh_degree=sh_degree, packed=packed,
        tile_size=CPU_TILE_SIZE if tile_size is None else tile_size, backgrounds=backgrounds,
        render_mode=render_mode, absgrad=absgrad, rasterize_mode=rasterize_mode,
        workers=default_workers() if cpu_workers is None else cpu_workers,
        keep_weights=cpu_keep_weights, median_depth=cpu_median_depth,
        kernel=CPU_KERNEL if cpu_kernel is None else cpu_kernel, extra=gsplat_kwargs,
    )


def sh_colors_cpu(
    sh_degree: int, means: Tensor, coeffs: Tensor, viewmats: Tensor, cpu_kernel: Optional[str] = None,
    cpu_workers: Optional[Workers] = None,
) -> Tensor:
    """gsplat's SH colours on CPU tensors, as ``rasterization`` evaluates them: ``clamp_min(SH(dir) + 0.5, 0)`` with
    the view direction from each camera centre. means [N, 3], coeffs [N, K, 3] or [C, N, K, 3], viewmats
    [C, 4, 4] -> [C, N, 3]. The C++ kernel where it builds (``cpu_kernel`` as in ``rasterization``), else torch; for
    a render that blends the colours with other per-Gaussian features (AlignGS's normals)."""
    if means.dim() != 2 or means.shape[-1] != 3:
        raise _shape_error("means", "[N, 3]", means, op="sh_colors_cpu")
    if viewmats.dim() != 3 or viewmats.shape[1:] != (4, 4):
        raise _shape_error("viewmats", "[C, 4, 4]", viewmats, op="sh_colors_cpu")
    _check_sh("sh_colors_cpu", sh_degree, means.shape[0], viewmats.shape[0], coeffs)
    cpp = compiled_kernel(CPU_KERNEL if cpu_kernel is None else cpu_kernel)
    workers = default_workers() if cpu_workers is None else cpu_workers
    if uses_cpp_projection(cpp, viewmats):
        return cpp_sh_colors(cpp, sh_degree, means, coeffs, viewmats, workers)
    return sh_colors(sh_degree, means, coeffs, viewmats)


def _shape_error(name: str, expected: str, got: Tensor, op: str = "rasterization") -> ValueError:
    return ValueError(f"{op}: {name} must have shape {expected}, got {tuple(got.shape)}")


def _check_sh(op: str, sh_degree: int, N: int, C: int, coeffs: Tensor) -> None:
    """SH coefficients [N, K, 3] or [C, N, K, 3] with K >= (sh_degree + 1)^2 (the C++ kernels index K by degree)."""
    if not isinstance(sh_degree, int) or isinstance(sh_degree, bool) or not 0 <= sh_degree <= 4:
        raise ValueError(f"{op}: sh_degree must be an int in 0..4, got {sh_degree!r}")
    ok = (coeffs.dim() == 3 and coeffs.shape[0] == N and coeffs.shape[-1] == 3) or (
        coeffs.dim() == 4 and coeffs.shape[:2] == (C, N) and coeffs.shape[-1] == 3
    )
    if not ok:
        raise _shape_error("colors (SH)", f"[{N}, K, 3] or [{C}, {N}, K, 3]", coeffs, op=op)
    if (sh_degree + 1) ** 2 > coeffs.shape[-2]:
        raise ValueError(
            f"{op}: sh_degree={sh_degree} needs K >= {(sh_degree + 1) ** 2} SH bases, colors has K={coeffs.shape[-2]}"
        )


def _check_inputs(
    means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
    viewmats: Tensor, Ks: Tensor, width: int, height: int, sh_degree: Optional[int],
    backgrounds: Optional[Tensor], render_mode: str, packed: bool, absgrad: bool,
    rasterize_mode: str, tile_size: int, extra: Dict[str, Any],
) -> None:
    if extra:
        raise ValueError(
            f"rasterization (CPU): unsupported arguments {sorted(extra)}; only gsplat's pinhole, "
            "unbatched, unpacked path is implemented on CPU"
        )
    if packed:
        raise ValueError("rasterization (CPU): packed=True is not supported, use packed=False")
    if absgrad:
        raise ValueError("rasterization (CPU): absgrad=True is not supported")
    if render_mode not in RENDER_MODES:
        raise ValueError(f"rasterization: render_mode must be one of {RENDER_MODES}, got {render_mode!r}")
    if rasterize_mode not in ("classic", "antialiased"):
        raise ValueError(
            f"rasterization: rasterize_mode must be 'classic' or 'antialiased', got {rasterize_mode!r}"
        )
    for name, v in (("width", width), ("height", height), ("tile_size", tile_size)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"rasterization: {name} must be a positive int, got {v!r}")
    if means.dim() != 2 or means.shape[-1] != 3:
        raise _shape_error("means", "[N, 3] (no batch dims on CPU)", means)
    N = means.shape[0]
    if quats.shape != (N, 4):
        raise _shape_error("quats", f"[{N}, 4]", quats)
    if scales.shape != (N, 3):
        raise _shape_error("scales", f"[{N}, 3]", scales)
    if opacities.shape != (N,):
        raise _shape_error("opacities", f"[{N}]", opacities)
    if viewmats.dim() != 3 or viewmats.shape[1:] != (4, 4):
        raise _shape_error("viewmats", "[C, 4, 4]", viewmats)
    C = viewmats.shape[0]
    if Ks.shape != (C, 3, 3):
        raise _shape_error("Ks", f"[{C}, 3, 3]", Ks)
    if sh_degree is None:
        if not (colors.dim() == 2 and colors.shape[0] == N) and not (
            colors.dim() == 3 and colors.shape[:2] == (C, N)
        ):
            raise _shape_error("colors", f"[{N}, D] or [{C}, {N}, D]", colors)
    else:
        _check_sh("rasterization", sh_degree, N, C, colors)
    if backgrounds is not None:
        D = 3 if sh_degree is not None else colors.shape[-1]
        if backgrounds.shape != (C, D):
            raise _shape_error("backgrounds", f"[{C}, {D}]", backgrounds)
    dt = means.dtype
    if dt not in (torch.float32, torch.float64):
        raise ValueError(f"rasterization (CPU): means must be float32 or float64, got {dt}")
    for name, t in (("quats", quats), ("scales", scales), ("opacities", opacities), ("colors", colors),
                    ("viewmats", viewmats), ("Ks", Ks)):
        if t.dtype != dt:
            raise ValueError(f"rasterization: {name} has dtype {t.dtype}, expected {dt} like means")
        if t.device != means.device:
            raise ValueError(f"rasterization: {name} is on {t.device}, expected {means.device}")


def _rasterization_cpu(
    means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
    viewmats: Tensor, Ks: Tensor, width: int, height: int, *, near_plane: float,
    far_plane: float, radius_clip: float, eps2d: float, sh_degree: Optional[int], packed: bool,
    tile_size: int, backgrounds: Optional[Tensor], render_mode: str, absgrad: bool,
    rasterize_mode: str, workers: Workers, keep_weights: bool, extra: Dict[str, Any],
    median_depth: bool = False, kernel: str = "auto",
) -> Tuple[Tensor, Tensor, Dict[str, Any]]:
    _check_inputs(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree,
        backgrounds, render_mode, packed, absgrad, rasterize_mode, tile_size, extra,
    )
    C = viewmats.shape[0]
    if not isinstance(workers, WorkerPool) and (
        not isinstance(workers, int) or isinstance(workers, bool) or workers < 1
    ):
        raise ValueError(f"rasterization: cpu_workers must be a positive int or a WorkerPool, got {workers!r}")
    cpp = compiled_kernel(kernel)
    antialiased = rasterize_mode == "antialiased"

    def with_depth(feats, depths):
        if render_mode in ("RGB+D", "RGB+ED"):
            if feats.dim() == 2:
                feats = feats[None].expand(C, -1, -1)
            return torch.cat([feats, depths[..., None]], dim=-1)
        if render_mode in ("D", "ED"):
            return depths[..., None]
        return feats

    def front(means, quats, scales, opacities, colors, viewmats, Ks):
        proj = project_gaussians(
            means, quats, scales, opacities, viewmats, Ks, width, height, eps2d=eps2d,
            near_plane=near_plane, far_plane=far_plane, radius_clip=radius_clip,
            antialiased=antialiased,
        )
        if sh_degree is not None:
            feats = sh_colors(sh_degree, means, colors, viewmats)  # [C, N, 3]
        else:
            feats = colors  # [N, D] or [C, N, D]
        return proj.means2d, proj.conics, proj.depths, proj.opacities, with_depth(feats, proj.depths), proj.radii

    def expected_depth(renders, alphas):
        return (torch.cat([renders[..., :-1], renders[..., -1:] / alphas.clamp(min=1e-10)], dim=-1),)

    with flush_denormal(), single_threaded_torch():
        N = means.shape[0]
        feats_per_gaussian = sh_degree is None and colors.dim() == 2 and render_mode == "RGB"
        if uses_cpp_projection(cpp, viewmats, Ks):
            means2d, conics, depths, opac, radii = cpp_project(
                cpp, means, quats, scales, opacities, viewmats, Ks, width, height, eps2d=eps2d, near_plane=near_plane,
                far_plane=far_plane, radius_clip=radius_clip, antialiased=antialiased, workers=workers,
            )
            feats = cpp_sh_colors(cpp, sh_degree, means, colors, viewmats, workers) if sh_degree is not None else colors
            feats = with_depth(feats, depths)
        else:
            split = Split(
                n=N, in_dims=(0, 0, 0, 0, 0 if colors.dim() == (3 if sh_degree is not None else 2) else 1, None, None),
                out_dims=(1, 1, 1, 1, 0 if feats_per_gaussian else 1, 1),
                parts=gaussian_parts(N), workers=workers,
            )
            means2d, conics, depths, opac, feats, radii = isolated(
                front, means, quats, scales, opacities, colors, viewmats, Ks, split=split
            )
        bg = backgrounds
        if bg is not None and render_mode in ("RGB+D", "RGB+ED"):
            bg = torch.cat([bg, bg.new_zeros(C, 1)], dim=-1)
        elif bg is not None and render_mode in ("D", "ED"):
            bg = bg.new_zeros(C, 1)

        per_camera = feats.dim() == 3
        table = feats.reshape(-1, feats.shape[-1])
        keep: Optional[dict] = {} if keep_weights else None
        if median_depth:
            if render_mode not in ("D", "ED", "RGB+D", "RGB+ED"):
                raise ValueError(f"rasterization: cpu_median_depth needs a depth render_mode, got {render_mode!r}")
            keep = keep if keep is not None else {"weights": None}
            keep["median_channel"] = table.shape[-1] - 1  # depth is the last channel
        plan = plan_tiles(
            means2d, radii, depths, conics, opac, width, height, tile_size,
            n_channels=table.shape[-1], colors_per_camera=per_camera, chunk_elems=CPU_CHUNK_ELEMS, workers=workers,
            binner=cpp,
        )
        basis = pixel_basis(tile_size, means.dtype, means.device)
        if cpp is not None and keep is None:
            # the C++ kernel computes each pair's coefficients from its Gaussian's row as it composites
            rows = torch.cat([means2d, conics, opac[..., None]], dim=-1).reshape(-1, 6)
            renders, alphas = composite(rows, table, bg, plan, basis, workers=workers, kernel=cpp)
        else:
            coeffs = pair_coefficients(means2d, conics, opac, plan, workers=workers)
            renders, alphas = composite(coeffs, table, bg, plan, basis, workers=workers, keep=keep)
        if render_mode in ("ED", "RGB+ED"):
            (renders,) = isolated(expected_depth, renders, alphas)

        meta: Dict[str, Any] = {
            "batch_ids": None,
            "camera_ids": None,
            "gaussian_ids": None,
            "radii": radii,
            "means2d": means2d,
            "depths": depths,
            "conics": conics,
            "opacities": opac,
            "tile_width": plan.tile_width,
            "tile_height": plan.tile_height,
            "tiles_per_gauss": plan.tiles_per_gauss,
            **gsplat_isect_meta(plan, depths),
            "width": width,
            "height": height,
            "tile_size": tile_size,
            "n_batches": 1,
            "n_cameras": C,
        }
        if keep_weights:
            meta["feature_weights"] = FeatureWeights(plan, keep["weights"], keep["tf"], means.dtype)
        if median_depth:
            meta["median_depth"] = keep["median"][..., None]
    return renders, alphas, meta
