"""Projection and SH pieces against gsplat's own pure-torch implementations."""

from __future__ import annotations

import pytest
import torch
from gsplat.cuda._torch_impl import (
    _fully_fused_projection,
    _quat_scale_to_covar_preci,
    _spherical_harmonics,
)

from aligngs.render._projection import project_gaussians, sh_colors


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4])
def test_sh_colors_match_gsplat(degree):
    g = torch.Generator().manual_seed(degree)
    means = torch.randn(60, 3, generator=g, dtype=torch.float64)
    coeffs = torch.randn(2, 60, 25, 3, generator=g, dtype=torch.float64)
    vm = torch.eye(4, dtype=torch.float64)[None].repeat(2, 1, 1)
    vm[1, :3, 3] = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    campos = torch.inverse(vm)[:, :3, 3]
    dirs = means[None] - campos[:, None]
    for c in (coeffs[0], coeffs):  # shared and per-camera coefficients
        shs = c if c.dim() == 4 else c[None].expand(2, -1, -1, -1)
        expect = torch.clamp_min(_spherical_harmonics(degree, dirs, shs) + 0.5, 0.0)
        torch.testing.assert_close(sh_colors(degree, means, c, vm), expect, rtol=1e-12, atol=1e-12)


def test_projection_matches_gsplat_torch_impl(scene_factory):
    s = scene_factory(seed=2, n=200, n_cameras=2, awkward=False)
    proj = project_gaussians(s.means, s.quats, s.scales, s.opacities, s.viewmats, s.Ks, s.width, s.height)
    covars, _ = _quat_scale_to_covar_preci(s.quats, s.scales, compute_preci=False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(
        s.means, covars, s.viewmats, s.Ks, s.width, s.height
    )
    vis = proj.valid
    assert int(vis.sum()) > 100
    torch.testing.assert_close(proj.means2d[vis], means2d[vis])
    torch.testing.assert_close(proj.depths[vis], depths[vis])
    torch.testing.assert_close(proj.conics[vis], conics[vis])
    # gsplat's torch helper uses the plain 3.33-sigma box; ours shrinks it by opacity
    assert torch.all(proj.radii <= radii)
