"""``cpu_median_depth``: the depth of the Gaussian at which a pixel's transmittance first drops to <= 0.5, checked
against a dense per-pixel computation on gsplat's own projection (aligngs.render.reference)."""
from __future__ import annotations

import pytest
import torch

from aligngs.render import rasterization
from aligngs.render.reference import _project


def _dense_median(scene) -> torch.Tensor:
    W, H = scene.width, scene.height
    m2d, inv, depths, opac, radii, vis = _project(
        scene.means, scene.quats, scene.scales, scene.opacities, scene.viewmats, scene.Ks, W, H, 0.3, 0.01, 1e10,
        0.0, False)
    out = torch.zeros(scene.viewmats.shape[0], H, W, dtype=scene.means.dtype)
    for c in range(scene.viewmats.shape[0]):
        ids = torch.nonzero(vis[c]).squeeze(1)
        ids = ids[torch.argsort(depths[c, ids], stable=True)]
        for y in range(H):
            for x in range(W):
                d = m2d[c, ids] - torch.tensor([x + 0.5, y + 0.5], dtype=scene.means.dtype)
                ic = inv[c, ids]
                sigma = 0.5 * (ic[:, 0, 0] * d[:, 0] ** 2 + ic[:, 1, 1] * d[:, 1] ** 2) + ic[:, 0, 1] * d[:, 0] * d[:, 1]
                a = torch.clamp(opac[c, ids] * torch.exp(-sigma), max=0.999)
                a = torch.where(a >= 1 / 255, a, torch.zeros_like(a))
                t_after = torch.cumprod(1 - a, 0)
                hit = torch.nonzero(t_after <= 0.5)
                if len(hit):
                    out[c, y, x] = depths[c, ids[hit[0, 0]]]
    return out


@pytest.mark.parametrize("seed", [0, 3])
def test_median_depth_matches_dense_reference(seed, scene_factory):
    scene = scene_factory(seed=seed, n=70, n_cameras=2, width=20, height=16, features=3, opaque=True)
    r, a, meta = rasterization(*scene.args(), render_mode="RGB+ED", cpu_median_depth=True)
    med = meta["median_depth"][..., 0]
    ref = _dense_median(scene)
    assert float((ref > 0).float().mean()) > 0.5 and float((ref == 0).float().mean()) > 0  # both cases occur
    torch.testing.assert_close(med, ref)
    # where the median exists, the pixel's alpha is >= 0.5, and the other outputs are unchanged by the option
    assert bool((a[..., 0][med > 0] >= 0.5 - 1e-9).all())
    r2, a2, _ = rasterization(*scene.args(), render_mode="RGB+ED", cpu_kernel="torch")  # the kernel it ran
    assert torch.equal(r, r2) and torch.equal(a, a2)


def test_median_depth_needs_a_depth_mode(scene_factory):
    scene = scene_factory(seed=1, n=20, features=3)
    with pytest.raises(ValueError, match="cpu_median_depth"):
        rasterization(*scene.args(), render_mode="RGB", cpu_median_depth=True)
    _, _, meta = rasterization(*scene.args(), render_mode="RGB+D", cpu_median_depth=True, cpu_keep_weights=True)
    assert "feature_weights" in meta and meta["median_depth"].shape == (1, scene.height, scene.width, 1)
