"""How the AlignGS terms reach (and do not reach) the parameters, on a small real scene (samples/room at 40 px).

These fail when: the semantic pass leaks gradient into geometry; the semantic edge mask is ignored by the depth term;
the normal terms do not reach quats / scales; the depth term gates on alpha although the reference does not; the
normal consistency term re-normalises the rendered normals by default; views are drawn with replacement rather
than from a shuffled per-epoch stack; a compact-semantics run does not resume exactly (with the decoder training).
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from aligngs.config import DataConfig, preset
from aligngs.data.loaders import load_scene
from aligngs.data.split import split_frames
from aligngs.extract.extent import scene_extent
from aligngs.model.gaussians import GaussianModel
from aligngs.model.init import initial_points
from aligngs.model.semantic_decoder import CompactSemanticDecoder
from aligngs.priors.cache import Priors
from aligngs.priors.teachers import labels_to_scores
from aligngs.train import losses as L
from aligngs.train.terms import (DepthPrior, MinScale, NormalTerms, SemanticDistillation, aligngs_terms,
                                 gaussian_camera_normals)
from aligngs.train.trainer import StepContext, Trainer, render

ROOM = Path(__file__).resolve().parents[2] / "samples" / "room"
GEOMETRY = ("means", "quats", "scales", "opacities", "sh0", "shN")


@pytest.fixture(scope="module")
def room():
    cfg = DataConfig(resolution=40)
    scene = load_scene(ROOM, cfg)
    train, _ = split_frames(scene, cfg)
    extent = scene_extent([f.camera for f in scene.frames], scene.points)
    return scene, train[:4], extent


def _priors(frames) -> list[Priors]:
    out = []
    for f in frames:
        scores, valid = labels_to_scores(f.labels)
        lab = f.labels.copy()
        out.append(Priors(sem_scores=scores.astype(np.float16), sem_valid=valid, labels=lab,
                          depth=f.depth.astype(np.float32), depth_valid=f.depth > 0))
    return out


def _model(room, semantic_dim=0, n=3000, seed=0):
    scene, train, extent = room
    pts, cols, _ = initial_points(scene, train, n, seed, extent)
    torch.manual_seed(seed)
    m = GaussianModel.from_points(pts, cols, sh_degree=1, init_opacity=0.5, semantic_dim=semantic_dim, device="cpu")
    if semantic_dim:  # non-zero vectors so the semantic gradient is not trivially symmetric
        m.params["semantics"].data.normal_(0, 0.1)
    return m


def _ctx(room, model, i=0, normals=False, priors=None):
    from aligngs.render.view import ViewTensors

    _, train, _ = room
    f = train[i]
    view = ViewTensors.of(f.camera, "cpu")
    feats = gaussian_camera_normals(model, view) if normals else None
    out, meta = render(model, view, 1, torch.zeros(3), extra_features=feats)
    if normals:
        out["normals"] = out.pop("extra")
    gt = torch.from_numpy(f.image).float()
    return StepContext(1, f, view, model, gt, out, meta, (priors or _priors(train))[i])


def _grads(model):
    return {k: (None if p.grad is None else p.grad.detach().clone()) for k, p in model.params.items()}


def test_semantic_distillation_leaves_geometry_gradients_at_zero(room):
    for decoder in (None, CompactSemanticDecoder(8, 150)):
        model = _model(room, semantic_dim=8 if decoder else 150)
        ctx = _ctx(room, model)
        loss = SemanticDistillation(1.0, 0.1, decoder=decoder)(ctx)
        loss.backward()
        g = _grads(model)
        assert g["semantics"] is not None and float(g["semantics"].abs().sum()) > 0
        for k in GEOMETRY:
            assert g[k] is None or float(g[k].abs().max()) == 0.0, f"semantic loss leaked into {k}"


def test_depth_term_excludes_exactly_the_teacher_edges(room):
    model = _model(room)
    _, train, _ = room
    pri = _priors(train)
    ctx = _ctx(room, model, priors=pri)
    labels = torch.from_numpy(pri[0].labels).long()
    edges = L.semantic_edge_mask(labels)
    assert 0 < int(edges.sum()) < edges.numel()
    # a prior that is wrong exactly on the edge pixels: with the mask the term must not see them
    bad = pri[0].depth.copy()
    bad[edges.numpy()] = 50.0
    pri[0].depth = bad
    depth = ctx.render["depth"]
    valid = torch.from_numpy(pri[0].depth_valid)
    term = DepthPrior(1.0, 0)
    want = L.pearson_depth_loss(depth, torch.from_numpy(bad), valid & ~edges)
    assert float(term(ctx)) == pytest.approx(float(want), rel=1e-6)
    unmasked = DepthPrior(1.0, 0, edge_mask=False)(ctx)
    assert float(unmasked) == pytest.approx(float(L.pearson_depth_loss(depth, torch.from_numpy(bad), valid)), rel=1e-6)
    assert float(unmasked) > float(term(ctx)) + 0.05  # the corrupted edges matter once the mask is off
    # dilation grows the excluded set (the edge mask is cached per step: a new step's context)
    ctx.cache.clear()
    wide = DepthPrior(1.0, 0, dilation=1)(ctx)
    ctx.cache.clear()
    assert float(wide) != pytest.approx(float(term(ctx)), rel=1e-6)


def test_depth_term_has_no_alpha_gate_by_default(room):
    model = _model(room)
    with torch.no_grad():
        model.params["opacities"] -= 2.5  # thin coverage: some pixels below alpha 0.5
    ctx = _ctx(room, model)
    alpha = ctx.render["alpha"].detach()
    assert bool((alpha < 0.5).any()) and bool((alpha > 0.5).any())
    p = ctx.priors
    labels = torch.from_numpy(p.labels).long()
    keep = torch.from_numpy(p.depth_valid) & ~L.semantic_edge_mask(labels)
    prior = torch.from_numpy(p.depth)
    ref = DepthPrior(1.0, 0)(ctx)  # reference: every valid non-edge pixel
    assert float(ref) == pytest.approx(float(L.pearson_depth_loss(ctx.render["depth"], prior, keep)), rel=1e-6)
    gated = DepthPrior(1.0, 0, alpha_gate=0.5)(ctx)
    assert float(gated) == pytest.approx(
        float(L.pearson_depth_loss(ctx.render["depth"], prior, keep & (alpha > 0.5))), rel=1e-6)
    terms = aligngs_terms(preset("paper").train.loss, preset("paper").train.semantics)
    assert next(t for t in terms if isinstance(t, DepthPrior)).alpha_gate == 0.0


def test_normal_consistency_uses_raw_rendered_normals_by_default():
    H, W = 6, 7
    K = torch.tensor([[5.0, 0, 3], [0, 5.0, 3], [0, 0, 1]])
    depth = torch.full((H, W), 2.0)  # a fronto-parallel wall: depth normal (0, 0, -1) inside the frame
    raw = torch.zeros(H, W, 3)
    raw[..., 2] = -0.5  # half-length rendered normals (alpha 0.5), pointing the right way
    ctx = SimpleNamespace(render={"normals": raw, "depth": depth, "alpha": torch.ones(H, W)},
                          view=SimpleNamespace(K=K[None]), cache={}, priors=None, gt=torch.zeros(H, W, 3))
    n_d = L.normal_maps.depth_to_normals(depth, K)
    inner = (n_d[..., 2] != 0).float()
    want_raw = float((1 - 0.5 * inner).mean())
    want_unit = float((1 - inner).mean())
    assert float(NormalTerms(1.0, 0.0, 0)(ctx)) == pytest.approx(want_raw, rel=1e-6)
    assert float(NormalTerms(1.0, 0.0, 0, renormalize=True)(ctx)) == pytest.approx(want_unit, rel=1e-6)


def test_normal_terms_reach_quats_and_scales(room):
    model = _model(room)
    ctx = _ctx(room, model, normals=True)
    NormalTerms(0.05, 0.0, 0)(ctx).backward()
    g = _grads(model)
    for k in ("quats", "scales", "means"):
        assert g[k] is not None and float(g[k].abs().sum()) > 0, f"normal consistency does not reach {k}"
    model.params = {k: v.detach().requires_grad_(True) for k, v in model.params.items()}
    ctx = _ctx(room, model, normals=True)
    NormalTerms(0.0, 1.0, 0)(ctx).backward()  # the semantic-boundary term alone
    g = _grads(model)
    assert g["quats"] is not None and float(g["quats"].abs().sum()) > 0
    model.params = {k: v.detach().requires_grad_(True) for k, v in model.params.items()}
    ctx = _ctx(room, model)
    MinScale(100.0)(ctx).backward()
    assert float(model.params["scales"].grad.abs().sum()) > 0


class _Recorder:
    """A zero loss term that records which view each iteration used."""

    name = "recorder"
    needs = frozenset()

    def __init__(self):
        self.seen = []

    def active(self, step):
        return True

    def __call__(self, ctx):
        self.seen.append(ctx.frame.name)
        return ctx.gt.new_zeros(())


def test_views_are_drawn_from_a_shuffled_stack_per_epoch(room):
    scene, train, extent = room
    cfg = preset("fast", {"train": {"iterations": 12, "densify": {"enabled": False}}}).train
    rec = _Recorder()
    tr = Trainer(_model(room, n=500), train, cfg, extent=extent, terms=[rec], progress_every_s=0)
    tr.train()
    n = len(train)
    epochs = [rec.seen[i:i + n] for i in range(0, 12, n)]
    for e in epochs:
        assert sorted(e) == sorted(f.name for f in train), epochs  # every view exactly once per epoch
    assert len({tuple(e) for e in epochs}) > 1  # and shuffled anew


@pytest.mark.slow
def test_compact_semantics_resume_trains_the_decoder_and_matches(room, tmp_path):
    scene, train, extent = room
    cfg = preset("fast", {"train": {"iterations": 20, "seed": 3, "schedule_iterations": None,
                                    "densify": {"refine_start_iter": 6, "refine_every": 6, "max_gaussians": 2500},
                                    "loss": {"depth_from_iter": 4, "normal_from_iter": 4}}}).train
    pri = _priors(train)

    def make():
        torch.manual_seed(0)
        model = _model(room, semantic_dim=8, n=1500)
        dec = CompactSemanticDecoder(8, 150)
        terms = aligngs_terms(cfg.loss, cfg.semantics, dec)
        return Trainer(model, train, cfg, extent=extent, priors=pri, terms=terms,
                       normal_source=gaussian_camera_normals, extra_modules=[dec], progress_every_s=0), dec

    straight, dec0 = make()
    w0 = dec0.linear.weight.detach().clone()
    straight.train()
    again, _ = make()
    again.train()
    assert again.model.n == straight.model.n, "two identical runs differ: not deterministic"
    assert float((dec0.linear.weight - w0).abs().max()) > 1e-3, "the decoder did not train"
    assert any("semantic" in h and h["semantic"] > 0 for h in straight.history)
    first, _ = make()
    first.train(iterations=11, checkpoint_path=tmp_path / "c.pt")
    resumed, dec2 = make()
    resumed.load_checkpoint(tmp_path / "c.pt")
    resumed.train()
    for k, v in straight.model.params.items():
        assert torch.allclose(v, resumed.model.params[k], atol=1e-5), k
    assert torch.allclose(dec0.linear.weight, dec2.linear.weight, atol=1e-5)
    assert torch.allclose(dec0.linear.bias, dec2.linear.bias, atol=1e-5)


def test_render_only_terms_give_the_same_gradients_when_isolated(room):
    """The trainer evaluates ``render_only`` terms (depth prior, normal terms) single-threaded in one ``isolated``
    call on the render maps (``trainer.image_terms``): same values and the same gradient on every geometry parameter
    as calling them directly, and the gradient does reach the geometry (non-zero)."""
    from aligngs.train.trainer import image_terms

    model = _model(room)
    terms = [DepthPrior(0.5, 0), NormalTerms(0.05, 0.01, 0)]
    assert all(t.render_only for t in terms) and not MinScale(1.0).__dict__.get("render_only", False)
    got = []
    for isolate in (False, True):
        ctx = _ctx(room, model, normals=True)
        values = image_terms(ctx, terms) if isolate else {t.name: t(ctx) for t in terms}
        assert set(values) == {"depth", "normal"}
        sum(values.values()).backward()
        got.append(({k: float(v) for k, v in values.items()}, _grads(model)))
        for p in model.params.values():
            p.grad = None
    (v0, g0), (v1, g1) = got
    assert v0 == pytest.approx(v1, rel=1e-6, abs=1e-9) and v0["depth"] > 0 and v0["normal"] > 0
    for k in ("means", "quats", "scales", "opacities"):
        assert g0[k] is not None and float(g0[k].abs().sum()) > 0, k
        torch.testing.assert_close(g1[k], g0[k], rtol=1e-4, atol=1e-9)


def test_gaussian_camera_normals_in_two_halves_match_the_direct_computation(room, monkeypatch):
    """On CPU the per-Gaussian normals run in two halves on two threads (``isolated`` with a split): same normals
    and the same gradient on the quaternions as the direct computation."""
    import aligngs.render._threads as threads_mod
    from aligngs.render.view import ViewTensors
    from aligngs.train import terms as terms_mod
    from aligngs.train.losses import normal_maps as NM

    monkeypatch.setattr(threads_mod, "SPLIT_MIN_GAUSSIANS", 64)
    monkeypatch.setattr(terms_mod, "default_workers", lambda: 2)
    parts = []
    real = NM.gaussian_normals_world
    monkeypatch.setattr(NM, "gaussian_normals_world", lambda q, s: parts.append(len(q)) or real(q, s))
    model = _model(room, n=500)
    view = ViewTensors.of(room[1][0].camera, "cpu")
    w = torch.randn(model.n, 3, generator=torch.Generator().manual_seed(3))
    got = terms_mod.gaussian_camera_normals(model, view)
    (g_got,) = torch.autograd.grad((got * w).sum(), model.params["quats"])
    assert sorted(parts) == [250, 250]
    p = model.params
    ref = NM.camera_space_normals(real(p["quats"], p["scales"]), p["means"], view.viewmat[0])
    (g_ref,) = torch.autograd.grad((ref * w).sum(), p["quats"])
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(g_got, g_ref)
    p_cam = p["means"].detach() @ view.viewmat[0, :3, :3].T + view.viewmat[0, :3, 3]
    assert float(g_ref.abs().sum()) > 0 and bool(((got.detach() * p_cam).sum(-1) <= 1e-6).all())  # facing the camera
