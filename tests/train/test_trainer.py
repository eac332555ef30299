"""The trainer on a small real scene (samples/room at 40 px): it learns, reports progress, cancels, and resumes
from a checkpoint exactly where an uninterrupted run would be."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from aligngs.config import DataConfig, TrainConfig, preset
from aligngs.data.loaders import load_scene
from aligngs.data.split import split_frames
from aligngs.extract.extent import scene_extent
from aligngs.model.gaussians import GaussianModel
from aligngs.model.init import initial_points
from aligngs.progress import Cancelled
from aligngs.model.semantic_decoder import CompactSemanticDecoder
from aligngs.train.trainer import Trainer, photometric_loss, render

from pathlib import Path

ROOM = Path(__file__).resolve().parents[2] / "samples" / "room"


@pytest.fixture(scope="module")
def room():
    cfg = DataConfig(resolution=40)
    scene = load_scene(ROOM, cfg)
    train, _ = split_frames(scene, cfg)
    extent = scene_extent([f.camera for f in scene.frames], scene.points)
    return scene, train[:6], extent


def make(room, iterations=60, compact=False, **train_overrides) -> Trainer:
    scene, train, extent = room
    cfg = preset("fast", {"train": {"iterations": iterations, "seed": 3, "max_init_points": 3000,
                                    "densify": {"refine_start_iter": 20, "refine_every": 20}} | train_overrides}).train
    torch.manual_seed(0)
    pts, cols, _ = initial_points(scene, train, cfg.max_init_points, cfg.seed, extent)
    decoder = CompactSemanticDecoder(8, 150) if compact else None
    model = GaussianModel.from_points(pts, cols, sh_degree=cfg.sh_degree, init_opacity=cfg.init_opacity,
                                      semantic_dim=8 if compact else 0, device="cpu")
    return Trainer(model, train, cfg, extent=extent, extra_modules=[decoder] if decoder else [], progress_every_s=0)


def mean_photo_loss(tr: Trainer) -> float:
    with torch.no_grad():
        return float(np.mean([float(photometric_loss(render(tr.model, v, tr.sh_degree_at(tr.step), tr.background)[0]["rgb"],
                                                     gt, tr.cfg.loss.ssim_lambda)) for v, gt in zip(tr.views, tr.images)]))


def test_training_lowers_the_photometric_loss_and_densifies(room):
    tr = make(room)
    n0, before = tr.model.n, mean_photo_loss(tr)
    tr.train()
    after = mean_photo_loss(tr)
    assert after < 0.6 * before, (before, after)
    assert tr.model.n != n0  # the strategy grew / pruned
    assert len(tr.history) == 60 and all(np.isfinite(h["total"]) for h in tr.history)


def test_progress_reports_iterations_gaussians_and_eta(room):
    seen = []
    tr = make(room, iterations=12)
    tr.progress = seen.append
    tr.train()
    assert [p.iteration for p in seen] == list(range(1, 13))
    assert all(p.stage == "train" and p.total == 12 and p.n_gaussians == tr.model.n or p.iteration < 12 for p in seen)
    assert seen[-1].fraction == 1.0 and seen[-1].eta_s == 0.0 and "total" in seen[-1].losses


def test_cancel_stops_between_iterations(room):
    tr = make(room, iterations=50)
    tr.should_cancel = lambda: tr.step >= 7
    with pytest.raises(Cancelled):
        tr.train()
    assert tr.step == 7


@pytest.mark.parametrize("compact", [False, True])
def test_resume_from_checkpoint_matches_an_uninterrupted_run(room, tmp_path, compact):
    straight = make(room, iterations=40, compact=compact)
    straight.train()
    first = make(room, iterations=40, compact=compact)
    first.train(iterations=25, checkpoint_path=tmp_path / "ckpt.pt")
    resumed = make(room, iterations=40, compact=compact)
    resumed.load_checkpoint(tmp_path / "ckpt.pt")
    assert resumed.step == 25
    resumed.train()
    for k, v in straight.model.params.items():
        assert torch.allclose(v, resumed.model.params[k], atol=1e-6), k
    for a, b in zip(straight.extra_modules, resumed.extra_modules):
        for (ka, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.allclose(pa, pb, atol=1e-6), ka


def test_rejects_frames_without_camera_or_image(room):
    scene, train, extent = room
    bad = train[0].with_camera(None)
    model = GaussianModel.from_points(np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32), device="cpu")
    with pytest.raises(ValueError, match=f"training frame {bad.name!r} has no camera"):
        Trainer(model, [bad], TrainConfig(), extent=extent)


def test_training_leaves_the_callers_initial_points_alone(room):
    """The model owns its parameters: training (Adam updates the means in place) must not move the points of the
    Scene it was initialised from. Before, a float32 point array was shared with the means, so a second run on the
    same Scene object (the sparse benchmark's AlignGS run after its 3DGS run) started from moved points."""
    import copy

    from aligngs.model.init import backproject_frames

    scene, train, extent = room
    sc = copy.copy(scene)
    sc.points, sc.point_colors = backproject_frames(train)
    sc.points = np.ascontiguousarray(sc.points[:2000], np.float32)
    sc.point_colors = np.ascontiguousarray(sc.point_colors[:2000], np.float32)
    before = sc.points.copy()
    pts, cols, _ = initial_points(sc, train, 3000, 0, extent)
    assert np.shares_memory(pts, sc.points)  # initial_points hands the scene's own array on
    model = GaussianModel.from_points(pts, cols, sh_degree=0, device="cpu")
    cfg = preset("fast", {"train": {"iterations": 5, "densify": {"enabled": False}}}).train
    Trainer(model, train, cfg, extent=extent, progress_every_s=0).train()
    assert not torch.equal(model.params["means"].detach(), torch.from_numpy(before))  # the means did move
    np.testing.assert_array_equal(sc.points, before)
