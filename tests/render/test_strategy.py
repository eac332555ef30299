"""gsplat's DefaultStrategy (packed=False, absgrad=False) driven by the CPU rasterizer's meta."""

from __future__ import annotations

import torch
from gsplat.strategy import DefaultStrategy

from aligngs.render import rasterization


def test_default_strategy_grows_and_prunes(scene_factory):
    scene = scene_factory(seed=3, n=40, features=3, dtype=torch.float32, awkward=False)
    means = scene.means.clone()
    opac = scene.opacities.clone()
    means[30:35, 2] = -2.0  # behind the camera: never visible, never grown
    opac[35:] = 0.003  # below 1/255: culled by the rasterizer and pruned by the strategy
    scales = scene.scales.clone()
    scales[::2] = 0.004  # "small": duplicated; the others are split
    params = torch.nn.ParameterDict(
        {
            "means": means,
            "quats": scene.quats.clone(),
            "scales": torch.log(scales),
            "opacities": torch.logit(opac),
            "colors": scene.colors.clone(),
        }
    )
    optimizers = {k: torch.optim.Adam([p], lr=1e-3) for k, p in params.items()}
    strategy = DefaultStrategy(
        refine_start_iter=0, refine_every=2, grow_grad2d=0.0, prune_opa=0.005, reset_every=10_000,
        grow_scale3d=0.01,
    )
    strategy.check_sanity(params, optimizers)
    state = strategy.initialize_state(scene_scale=1.0)
    target = torch.rand(1, scene.height, scene.width, 3, generator=torch.Generator().manual_seed(0))

    grew = torch.zeros(40, dtype=torch.bool)
    for step in range(3):
        renders, alphas, info = rasterization(
            params["means"], params["quats"], torch.exp(params["scales"]),
            torch.sigmoid(params["opacities"]), params["colors"], scene.viewmats, scene.Ks,
            scene.width, scene.height, packed=False,
        )
        strategy.step_pre_backward(params, optimizers, state, step, info)
        loss = (renders - target).abs().mean()
        loss.backward()
        g2d = info["means2d"].grad
        assert g2d is not None and g2d.shape == (1, 40, 2)
        vis = (info["radii"] > 0).all(-1)[0]
        assert not vis[30:].any() and vis[:30].sum() > 15
        assert torch.all(g2d[0, ~vis] == 0)
        grew |= vis & (g2d[0].norm(dim=-1) > 0)
        if step == 1:  # running statistics before the refinement step
            strategy.step_post_backward(params, optimizers, state, step, info, packed=False)
            assert torch.equal(state["count"] > 0, vis)
            assert torch.all(state["count"][vis] == 2)
            assert torch.all(state["grad2d"][~vis] == 0) and torch.all(state["grad2d"][grew] > 0)
            for p in params.values():
                p.grad = None
            continue
        n_before = len(params["means"])
        small = torch.exp(params["scales"]).max(-1).values <= 0.01
        strategy.step_post_backward(params, optimizers, state, step, info, packed=False)
        for p in params.values():
            p.grad = None
        if step == 2:
            n_dupli = int((grew & small).sum())
            n_split = int((grew & ~small).sum())
            assert n_dupli > 0 and n_split > 0
            assert len(params["means"]) == n_before + n_dupli + n_split - 5
            assert torch.sigmoid(params["opacities"]).min() > 0.005  # the faint ones are gone
    # the grown model still renders on CPU
    r, a, info = rasterization(
        params["means"], params["quats"], torch.exp(params["scales"]),
        torch.sigmoid(params["opacities"]), params["colors"], scene.viewmats, scene.Ks,
        scene.width, scene.height,
    )
    assert info["radii"].shape[1] == len(params["means"]) and float(a.detach().max()) > 0.5


def test_accumulated_grad2d_matches_reference_projection(scene_factory):
    """What DefaultStrategy._update_state accumulates from the CPU path (grad2d, count, radii) equals what it would
    accumulate from the dense reference (gsplat's own pure-torch projection, autograd), and both equal the
    hand-written normalisation: sum over steps and cameras of |dL/dmeans2d * (W/2, H/2) * n_cameras| over the
    (camera, Gaussian) pairs with radii > 0, counted once per such pair."""
    from aligngs.render.reference import rasterization_reference

    scene = scene_factory(seed=5, n=60, n_cameras=2, features=3, dtype=torch.float64)
    W, H = scene.width, scene.height
    C = scene.viewmats.shape[0]
    gen = torch.Generator().manual_seed(2)
    targets = [torch.rand(C, H, W, 3, generator=gen, dtype=torch.float64) for _ in range(3)]
    states, expected = [], None
    for fn in (rasterization, rasterization_reference):
        strategy = DefaultStrategy(refine_scale2d_stop_iter=10)
        params = {"means": scene.means.clone(), "scales": torch.log(scene.scales)}
        state = strategy.initialize_state()
        state["grad2d"] = torch.zeros(60, dtype=torch.float64)  # a float64 sum (gsplat starts a float32 one)
        state["count"], state["radii"] = torch.zeros(60), torch.zeros(60)
        hand_g = torch.zeros(60, dtype=torch.float64)
        hand_c = torch.zeros(60, dtype=torch.float64)
        for target in targets:
            ps = [p.clone().requires_grad_(True) for p in scene.params()]
            r, a, meta = fn(*scene.args(ps), render_mode="RGB")
            meta = {**meta, "width": W, "height": H, "n_cameras": C, "gaussian_ids": None}
            meta["means2d"].retain_grad()
            ((r - target).abs().mean() + 0.3 * (a - 0.5).abs().mean()).backward()
            strategy._update_state(params, state, meta, packed=False)
            g = meta["means2d"].grad.detach() * torch.tensor([W / 2.0 * C, H / 2.0 * C], dtype=torch.float64)
            vis = (meta["radii"] > 0).all(-1)
            hand_g += torch.where(vis, g.norm(dim=-1), torch.zeros_like(g[..., 0])).sum(0)
            hand_c += vis.sum(0)
        torch.testing.assert_close(state["grad2d"].double(), hand_g, rtol=1e-5, atol=1e-12)
        torch.testing.assert_close(state["count"].double(), hand_c)
        states.append(state)
        expected = hand_g if expected is None else expected
    cpu, ref = states
    assert float(ref["grad2d"].max()) > 0 and float(ref["count"].max()) == 3 * C
    assert float((ref["count"] == 0).sum()) > 0  # some Gaussians are never visible (behind / off-screen)
    torch.testing.assert_close(cpu["count"], ref["count"])
    torch.testing.assert_close(cpu["grad2d"], ref["grad2d"], rtol=1e-5, atol=1e-10)
    torch.testing.assert_close(cpu["radii"], ref["radii"])
