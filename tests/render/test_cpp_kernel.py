"""The C++ kernels (tile binning, compositing) against the pure-torch ones, and the choice between them."""

from __future__ import annotations

import pytest
import torch

import aligngs.render._cpp as cpp_mod
from aligngs.render import rasterization
from aligngs.render._projection import project_gaussians
from aligngs.render._tiles import _bin_torch, gsplat_isect_meta, plan_tiles


def _render(scene, kernel, mode="RGB+ED", **kw):
    params = [p.clone().requires_grad_(True) for p in scene.params()]
    bg = torch.linspace(0.1, 0.9, 3, dtype=scene.means.dtype).expand(scene.viewmats.shape[0], 3).clone()
    bg.requires_grad_(True)
    r, a, _ = rasterization(*scene.args(params), render_mode=mode, backgrounds=bg, cpu_kernel=kernel,
                            **scene.kwargs, **kw)
    weights = torch.linspace(-1, 1, r.shape[-1], dtype=r.dtype)
    (r.square().sum() + (r * weights).sum() + 0.3 * a.sum()).backward()
    return [r, a, bg.grad] + [p.grad for p in params]


@pytest.mark.parametrize("opts", [
    dict(seed=7, n=3000, width=64, height=48, sh_degree=1, features=None, n_cameras=2, dtype=torch.float32),
    dict(seed=8, n=800, width=45, height=37, sh_degree=2, features=None, opaque=True),
    dict(seed=9, n=600, sh_degree=0, features=None, saturated=True, scale=2.0),
])
def test_cpp_kernel_matches_torch_kernels(opts, scene_factory):
    scene = scene_factory(**opts)
    torch_out = [t.detach() for t in _render(scene, "torch")]
    cpp_out = [t.detach() for t in _render(scene, "cpp")]
    tol = 2e-4 if opts.get("dtype") == torch.float32 else 1e-10
    assert float(torch_out[3].abs().max()) > 0  # means get a gradient
    for name, t, c in zip(["render", "alpha", "bg", "means", "quats", "scales", "opacities", "sh"], torch_out, cpp_out):
        scale = float(t.abs().max()) + 1e-12
        assert float((t - c).abs().max()) <= tol * scale, name


def test_auto_falls_back_and_cpp_names_the_cause(scene_factory, monkeypatch):
    scene = scene_factory(seed=3, sh_degree=1, features=None)
    monkeypatch.setattr(cpp_mod, "_build", lambda: (None, "OSError: no C++ compiler"))
    auto = _render(scene, "auto")
    plain = _render(scene, "torch")
    for a, b in zip(auto, plain):
        assert torch.equal(a, b)
    with pytest.raises(cpp_mod.KernelUnavailable, match="csrc.*no C\\+\\+ compiler"):
        _render(scene, "cpp")
    with pytest.raises(ValueError, match="cpu_kernel must be one of"):
        _render(scene, "cuda")


def test_kept_weights_and_median_depth_use_the_torch_kernels(scene_factory):
    scene = scene_factory(seed=5, features=3)
    outs = []
    for kernel in ("torch", "cpp"):
        r, a, meta = rasterization(*scene.args(), render_mode="RGB+ED", cpu_kernel=kernel, cpu_keep_weights=True,
                                   cpu_median_depth=True)
        outs.append((r, meta["median_depth"]))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


@pytest.mark.parametrize("opts", [
    dict(seed=11, n=5000, width=64, height=48, n_cameras=3, dtype=torch.float32),
    dict(seed=12, n=1500, width=45, height=37, n_cameras=2),  # float64, partial edge tiles
    dict(seed=13, n=800, scale=2.0, saturated=True),
])
def test_cpp_binning_gives_the_torch_binning(opts, scene_factory):
    """Same pairs, same order (camera, tile, then front to back; depth ties by index), same counts."""
    scene = scene_factory(features=None, sh_degree=0, **opts)
    W, H = scene.width, scene.height
    p = project_gaussians(scene.means, scene.quats, scene.scales, scene.opacities, scene.viewmats, scene.Ks, W, H)
    depths = p.depths.clone()
    depths[:, 1::7] = depths[:, ::7][:, : depths[:, 1::7].shape[1]]  # exact depth ties
    args = (p.means2d, p.radii, depths, p.conics, p.opacities)
    ref = _bin_torch(*args, W, H, 8, 1)
    assert ref[0].numel() > 1000
    for workers in (1, 2):  # 2 workers: culled in two halves on two threads
        got = cpp_mod.kernel("cpp").bin_tiles(*(t.contiguous() for t in args), W, H, 8, workers)
        for name, r, g in zip(["pair_flat_ids", "pair_tiles", "tile_counts", "tile_starts", "tiles_per_gauss"], ref,
                              got):
            assert torch.equal(r.reshape(-1), g.reshape(-1)), (name, workers)
    # and the plans built on them pad their chunks the same way (the torch kernels read those)
    plans = [plan_tiles(*args, W, H, 8, 3, False, binner=b) for b in (None, cpp_mod.kernel("cpp"))]
    for a, b in zip(plans[0].padded_chunks(), plans[1].padded_chunks()):
        assert torch.equal(a.pair_idx, b.pair_idx) and torch.equal(a.color_idx, b.color_idx)
    # gsplat's intersection meta: written by the C++ binning as it goes, computed from the pairs by the torch path
    assert plans[0].isect_ids is None and plans[1].isect_ids is not None
    metas = [gsplat_isect_meta(plan, depths) for plan in plans]
    for key in ("isect_ids", "flatten_ids", "isect_offsets"):
        assert metas[0][key].dtype == metas[1][key].dtype and torch.equal(metas[0][key], metas[1][key]), key
    assert int(metas[1]["isect_ids"].max() >> 32) > 0 and int(metas[1]["isect_ids"].min() & 0xFFFFFFFF) > 0


def test_composite_ops_refuse_arrays_they_would_overrun(scene_factory):
    """The C++ compositing writes [C, Hp, Wp, D] images for the tiles of a plan: an image, per-tile array or
    gradient buffer of the wrong size is an error naming the op, not a write past the tensor."""
    from aligngs.render._composite import _cpp_rules

    scene = scene_factory(seed=70, n=300, features=3, dtype=torch.float32)
    W, H, ts = scene.width, scene.height, 8
    p = project_gaussians(scene.means, scene.quats, scene.scales, scene.opacities, scene.viewmats, scene.Ks, W, H)
    plan = plan_tiles(p.means2d, p.radii, p.depths, p.conics, p.opacities, W, H, ts, 3, False,
                      binner=cpp_mod.kernel("cpp"))
    k = cpp_mod.kernel("cpp")
    C, D = 1, 3
    table = torch.cat([p.means2d, p.conics, p.opacities[..., None]], dim=-1).reshape(-1, 6).contiguous()
    colors = scene.colors.float().contiguous()
    rows = plan.pair_color_rows()
    Hp, Wp = plan.tile_height * ts, plan.tile_width * ts
    tiles = plan.chunks[0].tile_ids

    def forward(img, tf, starts=plan.tile_starts, bg=None):
        k.composite_forward(table, colors, plan.pair_flat_ids, rows, starts, plan.tile_counts, tiles, bg, img, tf,
                            plan.tiles_per_image, plan.tile_width, ts, *_cpp_rules())

    forward(torch.zeros(C, Hp, Wp, D), torch.zeros(C, Hp, Wp))  # the right sizes run
    with pytest.raises(RuntimeError, match="composite_forward: image must be"):
        forward(torch.zeros(C, Hp - ts, Wp, D), torch.zeros(C, Hp - ts, Wp))
    with pytest.raises(RuntimeError, match="composite_forward: starts and counts must cover"):
        forward(torch.zeros(C, Hp, Wp, D), torch.zeros(C, Hp, Wp), starts=plan.tile_starts[:-1].contiguous())
    with pytest.raises(RuntimeError, match="composite_forward: backgrounds must be"):
        forward(torch.zeros(C, Hp, Wp, D), torch.zeros(C, Hp, Wp), bg=torch.zeros(C, D + 1))
    with pytest.raises(RuntimeError, match="composite_backward: d_pairs must be"):
        k.composite_backward(table, colors, plan.pair_flat_ids, rows, plan.tile_starts, plan.tile_counts, tiles,
                             torch.zeros(C, Hp, Wp, D), torch.zeros(C, Hp, Wp), torch.zeros(plan.n_pairs - 1, 6), None,
                             plan.tiles_per_image, plan.tile_width, ts, *_cpp_rules())
