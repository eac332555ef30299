"""Render one camera view of a :class:`~aligngs.model.gaussians.GaussianModel`: the helper the trainer and the
extraction stage share (RGB + expected depth, optional extra feature channels, and the detached semantic pass)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..data.types import Camera
from ..model.gaussians import GaussianModel
from ._threads import Workers
from .api import rasterization, sh_colors_cpu


@dataclass
class ViewTensors:
    """A camera as the tensors the rasterizer takes."""

    viewmat: torch.Tensor  # [1,4,4]
    K: torch.Tensor  # [1,3,3]
    width: int
    height: int
    center: torch.Tensor  # [3]

    @classmethod
    def of(cls, cam: Camera, device) -> "ViewTensors":
        return cls(
            torch.from_numpy(cam.w2c).float()[None].to(device),
            torch.from_numpy(cam.K).float()[None].to(device),
            cam.width,
            cam.height,
            torch.from_numpy(cam.center).float().to(device),
        )


def sh_colors(
    sh: torch.Tensor, means: torch.Tensor, view: ViewTensors, degree: int, workers: Workers | None = None
) -> torch.Tensor:
    """View-dependent RGB from SH exactly as gsplat does it (+0.5, clamp at 0). [N,K,3] -> [N,3]. On CPU the
    rasterizer's own SH (its C++ kernel where it builds; ``workers`` as ``rasterization``'s ``cpu_workers``)."""
    if not sh.is_cuda:
        return sh_colors_cpu(degree, means, sh, view.viewmat, cpu_workers=workers)[0]
    from gsplat import spherical_harmonics

    return torch.clamp_min(spherical_harmonics(degree, means - view.center[None], sh) + 0.5, 0.0)


def render(
    model: GaussianModel,
    view: ViewTensors,
    sh_degree: int,
    background: torch.Tensor,
    *,
    extra_features: torch.Tensor | None = None,
    median_depth: bool = False,
    workers: Workers | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Render RGB + expected depth (+ extra per-Gaussian feature channels blended in the same pass).

    Returns ({"rgb": [H,W,3], "depth": [H,W], "alpha": [H,W], "extra": [H,W,E] or absent,
    "median_depth": [H,W] when asked for on CPU}, meta). ``median_depth``: also the depth at which the
    transmittance reaches 0.5 (0 where it never does; CPU only, not differentiable). ``workers``: the CPU
    rasterizer's threads (``rasterization``'s ``cpu_workers``; a loop of renders passes one ``WorkerPool``).
    """
    a = model.activated()
    if extra_features is None:
        colors, deg, bg = a["sh"], sh_degree, background[None]
    else:
        rgb = sh_colors(a["sh"], a["means"], view, sh_degree, workers)
        colors = torch.cat([rgb, extra_features], dim=-1)
        deg = None
        bg = torch.cat([background, background.new_zeros(extra_features.shape[-1])])[None]
    out, alpha, meta = rasterization(
        a["means"], a["quats"], a["scales"], a["opacities"], colors, view.viewmat, view.K, view.width, view.height,
        sh_degree=deg, backgrounds=bg, render_mode="RGB+ED", cpu_workers=workers,
        **({"cpu_median_depth": True} if median_depth and not a["means"].is_cuda else {}),
    )
    out = out[0]
    res = {"rgb": out[..., :3], "depth": out[..., -1], "alpha": alpha[0, ..., 0]}
    if "median_depth" in meta:
        res["median_depth"] = meta["median_depth"][0, ..., 0]
    if extra_features is not None:
        res["extra"] = out[..., 3:-1]
    return res, meta


def render_semantics(model: GaussianModel, view: ViewTensors, workers: Workers | None = None) -> torch.Tensor:
    """The semantic pass: plain alpha blending of the per-Gaussian vectors with DETACHED geometry. -> [S,H,W]."""
    a = model.activated()
    out, _, _ = rasterization(
        a["means"].detach(), a["quats"].detach(), a["scales"].detach(), a["opacities"].detach(),
        model.params["semantics"], view.viewmat, view.K, view.width, view.height, render_mode="RGB",
        cpu_workers=workers,
    )
    return out[0].permute(2, 0, 1)
