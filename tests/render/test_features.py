"""render_features: a second feature pass from a CPU render's kept compositing weights."""

from __future__ import annotations

import pytest
import torch

from aligngs.render import rasterization, render_features


@pytest.mark.parametrize("per_camera", [False, True])
def test_render_features_matches_detached_second_pass(per_camera, scene_factory):
    scene = scene_factory(seed=9, sh_degree=2, features=None, n_cameras=2, width=37, height=29,
                          opaque=True, n=150)
    C, N = 2, scene.means.shape[0]
    gen = torch.Generator().manual_seed(0)
    feats0 = torch.rand((C, N, 11) if per_camera else (N, 11), generator=gen, dtype=torch.float64)
    bg0 = torch.rand(C, 11, generator=gen, dtype=torch.float64)
    w_out = torch.randn(C, scene.height, scene.width, 11, generator=gen, dtype=torch.float64)

    # first pass: RGB+ED with SH, gradients to the geometry, weights kept
    params = [p.clone().requires_grad_(True) for p in scene.params()]
    r, a, meta = rasterization(*scene.args(params), render_mode="RGB+ED", cpu_keep_weights=True,
                               **scene.kwargs)
    assert meta["feature_weights"].nbytes > 0
    feats = feats0.clone().requires_grad_(True)
    bg = bg0.clone().requires_grad_(True)
    fr, fa = render_features(meta, feats, backgrounds=bg)
    ((fr * w_out).sum() + r.sum()).backward()
    assert params[0].grad is not None  # the first pass still trains the geometry

    # reference: a second full rasterization with detached geometry
    feats_ref = feats0.clone().requires_grad_(True)
    bg_ref = bg0.clone().requires_grad_(True)
    rr, ra, _ = rasterization(scene.means, scene.quats, scene.scales, scene.opacities, feats_ref,
                              scene.viewmats, scene.Ks, scene.width, scene.height, backgrounds=bg_ref)
    (rr * w_out).sum().backward()

    assert fr.shape == (C, scene.height, scene.width, 11)
    torch.testing.assert_close(fr, rr, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fa, ra, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(feats.grad, feats_ref.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bg.grad, bg_ref.grad, rtol=1e-12, atol=1e-12)
    assert float(feats.grad.abs().max()) > 0


def test_render_features_needs_kept_weights(scene_factory):
    scene = scene_factory(seed=0, features=3)
    _, _, meta = rasterization(*scene.args())
    with pytest.raises(ValueError, match="cpu_keep_weights"):
        render_features(meta, scene.colors)
    _, _, meta = rasterization(*scene.args(), cpu_keep_weights=True)
    with pytest.raises(ValueError, match="features must have shape"):
        render_features(meta, scene.colors[:-1])
