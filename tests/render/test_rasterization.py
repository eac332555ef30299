"""CPU rasterizer vs the brute-force reference, hand-computed values, gradcheck, gsplat contract."""

from __future__ import annotations

import math

import pytest
import torch

import aligngs.render.api as api
from aligngs.render import rasterization
import aligngs.render._composite as composite_mod
import aligngs.render._threads as threads_mod
from aligngs.render._threads import _denormals_flushed
from aligngs.render.reference import rasterization_reference


@pytest.fixture(autouse=True, params=["torch", "cpp"])
def cpu_kernel(request, monkeypatch):
    """Every test here runs with both CPU compositing kernels (the C++ one must build here: a failure to build
    fails these tests rather than skipping the fast path)."""
    monkeypatch.setattr(api, "CPU_KERNEL", request.param)
    return request.param


def _both(scene, **kw):
    kw = {**scene.kwargs, **kw}
    fast = rasterization(*scene.args(), **kw)
    ref = rasterization_reference(*scene.args(), **{k: v for k, v in kw.items() if k != "cpu_workers"})
    return fast, ref


CASES = [
    dict(features=4),
    dict(features=1, n_cameras=2),
    dict(features=5, n_cameras=3, per_camera_colors=True),
    dict(sh_degree=0, features=None),
    dict(sh_degree=1, features=None, n_cameras=2),
    dict(sh_degree=2, features=None, per_camera_colors=True, n_cameras=2),
    dict(sh_degree=3, features=None),
    dict(sh_degree=1, sh_bases=16, features=None),  # fewer bands active than stored
    dict(features=6, opaque=True, n=200),  # transmittance termination
    dict(features=3, width=37, height=29),  # not a multiple of the tile size
    dict(features=2, saturated=True, scale=2.0),  # alphas clamped at 0.999
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_reference(case, seed, scene_factory):
    cfg = CASES[case]
    scene = scene_factory(seed=seed, **cfg)
    C = scene.viewmats.shape[0]
    D = 3 if "sh_degree" in scene.kwargs else scene.colors.shape[-1]
    bg = torch.rand(C, D, generator=torch.Generator().manual_seed(seed), dtype=scene.means.dtype)
    for mode, backgrounds in (("RGB", None), ("RGB+ED", bg), ("D", None), ("ED", bg), ("RGB+D", bg)):
        (r, a, meta), (rr, ra, rmeta) = _both(scene, render_mode=mode, backgrounds=backgrounds)
        assert r.shape == rr.shape and a.shape == ra.shape == (C, scene.height, scene.width, 1)
        torch.testing.assert_close(r, rr, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(a, ra, rtol=1e-9, atol=1e-9)
        assert torch.equal(meta["radii"], rmeta["radii"])
        vis = (meta["radii"] > 0).all(-1)
        torch.testing.assert_close(meta["means2d"][vis], rmeta["means2d"][vis])
        torch.testing.assert_close(meta["depths"][vis], rmeta["depths"][vis])
        torch.testing.assert_close(meta["conics"][vis], rmeta["conics"][vis])
    # the scenes must actually exercise something: visible Gaussians, culled ones, coverage
    assert 0 < int(vis.sum()) < vis.numel()
    assert float(a.max()) > 0.5


@pytest.mark.parametrize(
    "opts",
    [dict(radius_clip=4.0), dict(rasterize_mode="antialiased"), dict(near_plane=2.5, far_plane=4.2),
     dict(eps2d=0.1)],
)
def test_matches_reference_with_options(opts, scene_factory):
    scene = scene_factory(seed=6, features=3, n_cameras=2)
    params = [p.clone().requires_grad_(True) for p in scene.params()]
    ref_params = [p.clone().requires_grad_(True) for p in scene.params()]
    r, a, meta = rasterization(*scene.args(params), render_mode="RGB+ED", **opts)
    rr, ra, rmeta = rasterization_reference(*scene.args(ref_params), render_mode="RGB+ED", **opts)
    torch.testing.assert_close(r, rr, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(a, ra, rtol=1e-9, atol=1e-9)
    assert torch.equal(meta["radii"], rmeta["radii"])
    (r.sum() + a.sum()).backward()
    (rr.sum() + ra.sum()).backward()
    for p, q in zip(params, ref_params):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-7, atol=1e-9)
    # the option must matter: compare with the default settings
    r0, _, meta0 = rasterization(*scene.args(), render_mode="RGB+ED")
    assert not torch.allclose(r0, r) or not torch.equal(meta0["radii"], meta["radii"])


def test_termination_is_exercised(scene_factory):
    scene = scene_factory(seed=3, features=2, opaque=True, n=200)
    _, a, _ = rasterization(*scene.args(), **scene.kwargs)
    assert float(a.max()) > 1 - 2e-4  # some pixel went all the way to the 1e-4 cut-off


def test_float32_close_to_float64(scene_factory):
    s64 = scene_factory(seed=4, features=5)
    r64, a64, _ = rasterization(*s64.args(), render_mode="RGB+ED")
    args32 = [t.float() if torch.is_tensor(t) else t for t in s64.args()]
    r32, a32, _ = rasterization(*args32, render_mode="RGB+ED")
    assert r32.dtype == torch.float32
    torch.testing.assert_close(r32, r64.float(), rtol=1e-4, atol=2e-4)
    torch.testing.assert_close(a32, a64.float(), rtol=1e-4, atol=2e-5)


def test_hand_computed_single_gaussian():
    """One isotropic Gaussian on the optical axis: alpha(d) = o exp(-d^2 / (2 (f^2 s^2 / z^2 + 0.3)))."""
    f, z, s, o = 50.0, 2.0, 0.04, 0.8
    W, H = 16, 16
    means = torch.tensor([[0.0, 0.0, z]], dtype=torch.float64)
    quats = torch.tensor([[2.0, 0.0, 0.0, 0.0]], dtype=torch.float64)  # identity, not normalised
    scales = torch.full((1, 3), s, dtype=torch.float64)
    opac = torch.tensor([o], dtype=torch.float64)
    colors = torch.tensor([[0.2, 0.5, 1.0]], dtype=torch.float64)
    K = torch.tensor([[[f, 0, 8.5], [0, f, 8.5], [0, 0, 1]]], dtype=torch.float64)  # centre of pixel (8, 8)
    vm = torch.eye(4, dtype=torch.float64)[None]
    bg = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    r, a, meta = rasterization(means, quats, scales, opac, colors, vm, K, W, H, backgrounds=bg,
                               render_mode="RGB+ED")
    var = (f * s / z) ** 2 + 0.3
    for (x, y) in [(8, 8), (9, 8), (8, 10), (11, 12), (5, 6)]:
        d2 = (x - 8.0) ** 2 + (y - 8.0) ** 2
        alpha = o * math.exp(-0.5 * d2 / var)
        if alpha < 1 / 255:
            alpha = 0.0
        assert float(a[0, y, x, 0]) == pytest.approx(alpha, rel=1e-12, abs=1e-15)
        expect = [0.2 * alpha, 0.5 * alpha + (1 - alpha), 1.0 * alpha]
        assert r[0, y, x, :3].tolist() == pytest.approx(expect, rel=1e-12, abs=1e-15)
        if alpha > 0:
            assert float(r[0, y, x, 3]) == pytest.approx(z, rel=1e-12)  # expected depth
    # opacity-aware radius: ceil(min(3.33, sqrt(2 ln(255 o))) * sqrt(var))
    rad = math.ceil(min(3.33, math.sqrt(2 * math.log(255 * o))) * math.sqrt(var))
    assert meta["radii"][0, 0].tolist() == [rad, rad]


def test_hand_computed_two_layers_and_clamp():
    """Two stacked Gaussians at one pixel: front-to-back compositing, 0.999 alpha clamp."""
    means = torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.0, 2.0]], dtype=torch.float64)  # 2nd is in front
    quats = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0]], dtype=torch.float64)
    scales = torch.full((2, 3), 0.05, dtype=torch.float64)
    opac = torch.tensor([0.6, 1.0], dtype=torch.float64)
    colors = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    K = torch.tensor([[[40.0, 0, 4.5], [0, 40.0, 4.5], [0, 0, 1]]], dtype=torch.float64)
    vm = torch.eye(4, dtype=torch.float64)[None]
    r, a, _ = rasterization(means, quats, scales, opac, colors, vm, K, 9, 9)
    a_front = 0.999  # 1.0 * exp(0) clamped
    a_back = 0.6
    assert float(a[0, 4, 4, 0]) == pytest.approx(1 - (1 - a_front) * (1 - a_back), rel=1e-12)
    assert r[0, 4, 4].tolist() == pytest.approx([a_back * (1 - a_front), a_front], rel=1e-12)


@pytest.fixture(params=["saved", "recomputed"])
def backward_path(request, monkeypatch):
    """Both backward paths: forward intermediates kept for the backward, or recomputed there (over budget)."""
    if request.param == "recomputed":
        monkeypatch.setattr(composite_mod, "SAVE_BYTES", 0)
    return request.param


def test_gradcheck_tiny_scene(backward_path):
    g = torch.Generator().manual_seed(7)
    n = 4
    means = torch.stack([torch.rand(n, generator=g) * 1.2 - 0.6, torch.rand(n, generator=g) - 0.5,
                         2.0 + torch.rand(n, generator=g)], -1).double()
    quats = torch.randn(n, 4, generator=g).double()
    scales = (0.08 + 0.1 * torch.rand(n, 3, generator=g)).double()
    opac = (0.3 + 0.6 * torch.rand(n, generator=g)).double()
    colors = torch.rand(n, 3, generator=g).double()
    bg = torch.rand(1, 3, generator=g).double()
    K = torch.tensor([[[14.0, 0, 7.0], [0, 14.0, 6.0], [0, 0, 1]]], dtype=torch.float64)
    vm = torch.eye(4, dtype=torch.float64)[None]

    def fn(m, q, s, o, c, b):
        r, a, _ = rasterization(m, q, s, o, c, vm, K, 14, 12, backgrounds=b, render_mode="RGB+ED")
        return r, a

    inputs = [t.clone().requires_grad_(True) for t in (means, quats, scales, opac, colors, bg)]
    r, a = fn(*inputs)
    assert float(a.detach().max()) > 0.3  # the Gaussians are on screen
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_gradients_match_reference(seed, scene_factory, backward_path):
    configs = [
        dict(features=5, n_cameras=2, render_mode="RGB+ED", bg=True),
        dict(sh_degree=3, features=None, render_mode="RGB+D", bg=False),
        dict(features=4, opaque=True, n=160, render_mode="RGB+ED", bg=True),
        dict(sh_degree=1, features=None, per_camera_colors=True, n_cameras=2, render_mode="ED", bg=False),
    ]
    for cfg in configs:
        cfg = dict(cfg)
        mode, use_bg = cfg.pop("render_mode"), cfg.pop("bg")
        scene = scene_factory(seed=seed, **cfg)
        C = scene.viewmats.shape[0]
        D = 3 if "sh_degree" in scene.kwargs else scene.colors.shape[-1]
        bg0 = torch.rand(C, D, dtype=torch.float64) if use_bg else None
        grads = []
        for fn in (rasterization, rasterization_reference):
            params = [p.clone().requires_grad_(True) for p in scene.params()]
            bg = bg0.clone().requires_grad_(True) if use_bg else None
            r, a, meta = fn(*scene.args(params), backgrounds=bg, render_mode=mode, **scene.kwargs)
            meta["means2d"].retain_grad()
            gen = torch.Generator().manual_seed(11)
            wr = torch.randn(r.shape, generator=gen, dtype=r.dtype)
            wa = torch.randn(a.shape, generator=gen, dtype=a.dtype)
            ((r * wr).sum() + (a * wa).sum()).backward()
            vis = (meta["radii"] > 0).all(-1)
            grads.append([p.grad for p in params] + ([bg.grad] if use_bg else [])
                         + [meta["means2d"].grad[vis]])
        assert all(g is not None for g in grads[0][:4])  # geometry always gets gradients
        for gf, gr in zip(*grads):
            assert (gf is None) == (gr is None)  # features are unused in "ED" mode
            if gf is None:
                continue
            assert float(gr.abs().max()) > 0
            torch.testing.assert_close(gf, gr, rtol=1e-7, atol=1e-9)


def test_gradients_match_reference_at_clamped_alphas(backward_path):
    """Opacity-1 Gaussians centred exactly on pixel centres: alpha hits the 0.999 clamp, where
    d alpha / d logit must be 0."""
    g = torch.Generator().manual_seed(4)
    W, H, f = 24, 20, 30.0
    n = 14
    px = torch.randint(2, W - 2, (n,), generator=g).double() + 0.5
    py = torch.randint(2, H - 2, (n,), generator=g).double() + 0.5
    z = 2.0 + 2.0 * torch.rand(n, generator=g, dtype=torch.float64)
    means = torch.stack([(px - W / 2) * z / f, (py - H / 2) * z / f, z], -1)
    opac = torch.where(torch.arange(n) % 2 == 0, 1.0, 0.7).double()
    quats = torch.randn(n, 4, generator=g, dtype=torch.float64)
    scales = 0.02 + 0.08 * torch.rand(n, 3, generator=g, dtype=torch.float64)
    colors = torch.rand(n, 3, generator=g, dtype=torch.float64)
    K = torch.tensor([[[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]]], dtype=torch.float64)
    vm = torch.eye(4, dtype=torch.float64)[None]
    grads = []
    for fn in (rasterization, rasterization_reference):
        params = [t.clone().requires_grad_(True) for t in (means, quats, scales, opac, colors)]
        r, a, _ = fn(*params, vm, K, W, H, render_mode="RGB+ED")
        assert float(a.detach().max()) >= 0.999
        ((r * torch.linspace(0.5, 1.5, 4, dtype=r.dtype)).sum() + a.sum()).backward()
        grads.append([p.grad for p in params])
    for gf, gr in zip(*grads):
        torch.testing.assert_close(gf, gr, rtol=1e-7, atol=1e-9)


def test_detached_geometry_feature_pass(scene_factory):
    """150-channel pass with detached geometry: only the features get gradients, and match."""
    scene = scene_factory(seed=2, features=150, n=80)
    grads = []
    for fn in (rasterization, rasterization_reference):
        feats = scene.colors.clone().requires_grad_(True)
        params = [scene.means, scene.quats, scene.scales, scene.opacities, feats]
        r, a, _ = fn(*scene.args(params))
        assert r.shape[-1] == 150
        (r * torch.linspace(-1, 1, 150, dtype=r.dtype)).sum().backward()
        grads.append(feats.grad)
    assert float(grads[1].abs().max()) > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-12)


def test_threads_and_chunking_do_not_change_results(scene_factory, monkeypatch):
    scene = scene_factory(seed=5, features=3, n=200, opaque=True)
    outs = []
    pool = threads_mod.WorkerPool(2)
    for workers, chunk in ((1, 1 << 17), (2, 1 << 17), (3, 1 << 11), (pool, 1 << 17)):
        monkeypatch.setattr(api, "CPU_CHUNK_ELEMS", chunk)
        params = [p.clone().requires_grad_(True) for p in scene.params()]
        r, a, _ = rasterization(*scene.args(params), render_mode="RGB+ED", cpu_workers=workers)
        (r.square().sum() + a.sum()).backward()
        outs.append([r, a] + [p.grad for p in params])
    pool.close()
    for other in (outs[1], outs[3]):  # threads started per call, or a kept pool: bit-identical (ordered accumulation)
        for o1, o2 in zip(outs[0], other):
            assert torch.equal(o1, o2)
    for o1, o3 in zip(outs[0], outs[2]):
        torch.testing.assert_close(o1, o3, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "opts",
    [
        dict(features=3, render_mode="RGB+ED"),
        dict(features=5, render_mode="RGB"),  # colours pass straight through (a [N, D] output)
        dict(features=None, sh_degree=2, render_mode="RGB+D", n_cameras=2),
        dict(features=4, per_camera_colors=True, n_cameras=2, render_mode="ED"),
    ],
)
def test_split_projection_matches_unsplit(opts, scene_factory, monkeypatch):
    """The projection / SH as two halves of the Gaussians on parallel threads: same renders and gradients as one
    part (to rounding), and bit-identical for 1 or 2 workers."""
    opts = dict(opts)
    mode = opts.pop("render_mode")
    scene = scene_factory(seed=11, n=301, **opts)
    outs = []
    for min_split, workers in ((10**9, 1), (1, 1), (1, 2)):
        monkeypatch.setattr(threads_mod, "SPLIT_MIN_GAUSSIANS", min_split)
        params = [p.clone().requires_grad_(True) for p in scene.params()]
        r, a, meta = rasterization(*scene.args(params), render_mode=mode, cpu_workers=workers, **scene.kwargs)
        (r.square().sum() + a.sum()).backward()
        outs.append([r, a, meta["means2d"], meta["radii"]] + [p.grad for p in params])
    assert float(outs[0][4].abs().max()) > 0
    for o1, o2 in zip(outs[0], outs[1]):
        torch.testing.assert_close(o1, o2, rtol=1e-12, atol=1e-12)
    for o2, o3 in zip(outs[1], outs[2]):
        assert (o2 is None and o3 is None) or torch.equal(o2, o3)  # colours get no gradient in depth modes


def test_split_projection_without_grad_matches_unsplit(scene_factory, monkeypatch):
    scene = scene_factory(seed=2, n=300, sh_degree=1, features=None, n_cameras=2)
    outs = []
    for min_split in (10**9, 1):
        monkeypatch.setattr(threads_mod, "SPLIT_MIN_GAUSSIANS", min_split)
        with torch.no_grad():
            r, a, meta = rasterization(*scene.args(), render_mode="RGB+ED", cpu_workers=2, **scene.kwargs)
        outs.append([r, a, meta["means2d"], meta["radii"]])
    assert int((outs[0][3] > 0).sum()) > 0
    for o1, o2 in zip(*outs):
        torch.testing.assert_close(o1, o2, rtol=1e-12, atol=1e-12)


def test_split_pair_work_gives_the_same_results(scene_factory, monkeypatch):
    """The per-pair work (culling of candidate tiles, pair coefficients and their gradients) in two halves on two
    threads gives exactly what one pass gives."""
    import aligngs.render._tiles as tiles_mod

    scene = scene_factory(seed=4, features=3, n=400, width=64, height=48)
    outs = []
    for min_pairs, workers in ((10**9, 1), (1, 2)):
        monkeypatch.setattr(tiles_mod, "SPLIT_MIN_PAIRS", min_pairs)
        params = [p.clone().requires_grad_(True) for p in scene.params()]
        r, a, meta = rasterization(*scene.args(params), cpu_workers=workers)
        (r.square().sum() + a.sum()).backward()
        outs.append([meta["flatten_ids"], meta["isect_ids"], r, a] + [p.grad for p in params])
    assert outs[0][0].numel() > 100
    for o1, o2 in zip(*outs):
        assert torch.equal(o1, o2)


def test_for_each_parallel_runs_every_index_once_and_reraises():
    seen = []
    with threads_mod.single_threaded_torch():
        threads_mod.for_each_parallel(seen.append, 50, workers=3)
    assert sorted(seen) == list(range(50))

    n_threads = torch.get_num_threads()

    def boom(i):
        if i == 7:
            raise RuntimeError("chunk 7 failed")

    with pytest.raises(RuntimeError, match="chunk 7 failed"):
        with threads_mod.single_threaded_torch():
            threads_mod.for_each_parallel(boom, 50, workers=2)
    assert torch.get_num_threads() == n_threads


def test_worker_pool_keeps_its_threads_and_runs_every_index_once():
    import gc
    import threading
    import time
    import weakref

    n_threads = torch.get_num_threads()
    pool = threads_mod.WorkerPool(3)
    assert torch.get_num_threads() == n_threads
    seen: list = []
    with threads_mod.single_threaded_torch():
        for _ in range(3):
            pool.run(lambda i: seen.append((i, threading.get_ident())) or time.sleep(0.002), 40)
    assert sorted(i for i, _ in seen) == sorted(list(range(40)) * 3)
    others = {t for _, t in seen} - {threading.get_ident()}
    assert others and others <= pool._idents and len(pool._idents) == 2  # the same two threads, every run

    def boom(i):
        if i == 7:
            raise RuntimeError("piece 7 failed")

    with pytest.raises(RuntimeError, match="piece 7 failed"):
        with threads_mod.single_threaded_torch():
            pool.run(boom, 50)

    # a piece that runs the pool again (from a pool thread) runs its pieces itself instead of waiting on itself
    inner: list = []
    with threads_mod.single_threaded_torch():
        pool.run(lambda i: pool.run(inner.append, 4), 6)
    assert sorted(inner) == sorted(list(range(4)) * 6)

    # dropped without close: nothing holds it, its threads exit
    names = {t.ident: t for t in threading.enumerate()}
    pool_threads = [names[i] for i in pool._idents]
    ref = weakref.ref(pool)
    del pool
    gc.collect()
    assert ref() is None
    for t in pool_threads:
        t.join(timeout=10)
        assert not t.is_alive()
    with pytest.raises(ValueError, match="workers must be a positive int"):
        threads_mod.WorkerPool(0)


def test_no_global_state_left_behind(scene_factory):
    scene = scene_factory(seed=0, features=3)
    n_threads = torch.get_num_threads()
    flushed = _denormals_flushed()
    params = [p.clone().requires_grad_(True) for p in scene.params()]
    r, a, _ = rasterization(*scene.args(params))
    assert torch.get_num_threads() == n_threads
    (r.sum() + a.sum()).backward()
    assert torch.get_num_threads() == n_threads
    assert _denormals_flushed() == flushed
    assert torch.is_grad_enabled()


def test_meta_contract(scene_factory):
    scene = scene_factory(seed=1, features=3, n_cameras=2)
    params = [p.clone().requires_grad_(True) for p in scene.params()]
    r, a, meta = rasterization(*scene.args(params))
    C, N = 2, scene.means.shape[0]
    assert meta["radii"].shape == (C, N, 2) and meta["radii"].dtype == torch.int32
    assert meta["means2d"].shape == (C, N, 2) and meta["means2d"].requires_grad
    assert meta["depths"].shape == (C, N) and meta["conics"].shape == (C, N, 3)
    assert meta["opacities"].shape == (C, N)
    assert meta["gaussian_ids"] is None and meta["camera_ids"] is None
    assert (meta["width"], meta["height"], meta["n_cameras"]) == (scene.width, scene.height, C)
    assert meta["tiles_per_gauss"].shape == (C, N)
    vis = (meta["radii"] > 0).all(-1)
    hit = meta["tiles_per_gauss"] > 0  # tiles whose pixels the Gaussian reaches (tight culling)
    assert torch.all(vis[hit]) and int(hit.sum()) > 0.8 * int(vis.sum())
    offs = meta["isect_offsets"]
    assert offs.shape == (C, meta["tile_height"], meta["tile_width"])
    assert int(meta["flatten_ids"].numel()) == int(meta["tiles_per_gauss"].sum())
    # isect_ids sorted like gsplat's: by camera, tile, then depth
    assert torch.all(meta["isect_ids"][1:] >= meta["isect_ids"][:-1])


def test_bad_inputs_raise(scene_factory):
    s = scene_factory(seed=0, features=3, dtype=torch.float32)
    with pytest.raises(ValueError, match="quats"):
        rasterization(s.means, s.quats[:, :3], *s.args()[2:])
    with pytest.raises(ValueError, match="colors"):
        rasterization(*s.args()[:4], s.colors[:-1], *s.args()[5:])
    with pytest.raises(ValueError, match="render_mode"):
        rasterization(*s.args(), render_mode="RGBD")
    with pytest.raises(ValueError, match="packed"):
        rasterization(*s.args(), packed=True)
    with pytest.raises(ValueError, match="sh_degree"):
        rasterization(*s.args()[:4], torch.zeros(s.means.shape[0], 4, 3), *s.args()[5:], sh_degree=2)
    with pytest.raises(ValueError, match="backgrounds"):
        rasterization(*s.args(), backgrounds=torch.zeros(1, 5))
    with pytest.raises(ValueError, match="unsupported"):
        rasterization(*s.args(), camera_model="fisheye")
    with pytest.raises(ValueError, match="float32 or float64"):
        half = [t.half() if torch.is_tensor(t) else t for t in s.args()]
        rasterization(*half)


def test_empty_and_invisible_scenes():
    vm = torch.eye(4)[None]
    K = torch.tensor([[[20.0, 0, 10], [0, 20.0, 8], [0, 0, 1]]])
    for n in (0, 3):
        means = torch.tensor([[0.0, 0.0, -2.0]]).repeat(n, 1)  # all behind the camera
        r, a, meta = rasterization(means, torch.ones(n, 4), torch.ones(n, 3) * 0.1, torch.ones(n) * 0.5,
                                   torch.ones(n, 3), vm, K, 20, 16, backgrounds=torch.tensor([[0.1, 0.2, 0.3]]))
        assert r.shape == (1, 16, 20, 3) and float(a.abs().max()) == 0.0
        assert torch.allclose(r, torch.tensor([0.1, 0.2, 0.3]).expand(1, 16, 20, 3))


def test_no_grad_inference_matches(scene_factory):
    scene = scene_factory(seed=8, features=3, dtype=torch.float32)
    r, a, meta = rasterization(*scene.args(), render_mode="RGB+ED")
    with torch.no_grad():
        params = [p.clone().requires_grad_(True) for p in scene.params()]
        r2, a2, meta2 = rasterization(*scene.args(params), render_mode="RGB+ED")
    assert not r2.requires_grad and not meta2["means2d"].requires_grad
    assert torch.equal(r, r2) and torch.equal(a, a2)
