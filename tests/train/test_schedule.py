"""The schedule scales with the iteration count (gsplat's adjust_steps): every preset at any length keeps the
reference's shape; the strategy skips an opacity reset too close to the end; ``auto`` picks a preset by device."""
from __future__ import annotations

import pytest
import torch

from aligngs.config import (
    PRESETS, SCHEDULE_FIELDS, PipelineConfig, TrainConfig, preset, preset_names, resolve_preset, scale_schedule,
)
from aligngs.train.strategy import ReferenceStrategy

REF = TrainConfig()  # the 7,000-iteration reference


def _steps(t: TrainConfig) -> dict[str, int]:
    return {f"{sub}.{name}" if sub else name: getattr(t if sub is None else getattr(t, sub), name)
            for sub, name, _ in SCHEDULE_FIELDS}


def test_reference_values_unchanged_at_7000():
    t = TrainConfig()
    assert t.schedule_iterations == 7000 == t.iterations
    assert (t.sh_degree_interval, t.lr.means_decay_steps) == (1000, 30_000)
    assert (t.densify.refine_start_iter, t.densify.refine_stop_iter, t.densify.refine_every, t.densify.reset_every) \
        == (500, 15_000, 100, 3000)
    assert (t.loss.depth_from_iter, t.loss.normal_from_iter) == (1500, 1500)


@pytest.mark.parametrize("iterations", [2000, 3000, 600, 14_000])
def test_steps_scale_with_iterations(iterations):
    t = TrainConfig(iterations=iterations)
    f = iterations / 7000
    for key, v in _steps(t).items():
        ref = _steps(REF)[key]
        lo = next(m for s, n, m in SCHEDULE_FIELDS if (f"{s}.{n}" if s else n) == key)
        assert v == max(lo, round(ref * f)), key
    assert t.schedule_iterations == iterations
    # the shape: switch-ons and resets at the same share of the run (within rounding)
    assert abs(t.loss.depth_from_iter / iterations - 1500 / 7000) < 1e-3
    assert t.densify.reset_every == 3000  # absolute: recovery from a reset takes the same steps in any run
    assert t.densify.refine_stop_iter > iterations  # refinement through the whole run, as in the reference


def test_hand_computed_2000():
    t = TrainConfig(iterations=2000)
    assert (t.sh_degree_interval, t.lr.means_decay_steps) == (286, 8571)
    assert (t.densify.refine_start_iter, t.densify.refine_every, t.densify.reset_every, t.densify.refine_stop_iter) \
        == (143, 29, 3000, 4286)
    assert (t.loss.depth_from_iter, t.loss.normal_from_iter) == (429, 429)


def test_short_runs_keep_a_floor_on_refine_every():
    assert TrainConfig(iterations=40).densify.refine_every == 10


def test_round_trip_is_idempotent_and_absolute_steps_stay():
    c = preset("balanced", {"train": {"iterations": 2000}})
    again = PipelineConfig.from_dict(c.to_dict())
    assert again == c and _steps(again.train) == _steps(c.train)
    # schedule_iterations = null: the steps are absolute
    t = PipelineConfig.from_dict({"train": {"iterations": 2000, "schedule_iterations": None,
                                            "densify": {"reset_every": 500}}}).train
    assert t.densify.reset_every == 500 and t.loss.depth_from_iter == 1500
    # steps written for another length
    t = PipelineConfig.from_dict({"train": {"iterations": 1000, "schedule_iterations": 2000,
                                            "loss": {"depth_from_iter": 800}}}).train
    assert t.loss.depth_from_iter == 400


def test_scaling_does_not_mutate_shared_subconfigs():
    t = TrainConfig()
    t2 = TrainConfig(iterations=1400, lr=t.lr, densify=t.densify, loss=t.loss)
    assert t.densify.refine_every == 100 and t2.densify.refine_every == 20
    t.iterations = 700  # changed after construction: an explicit rescale (the trainer does this on a copy)
    scale_schedule(t)
    assert t.densify.refine_every == 10 and t.schedule_iterations == 700


def test_bad_schedule_iterations_raise():
    with pytest.raises(ValueError, match="schedule_iterations"):
        TrainConfig(iterations=100, schedule_iterations=0)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_keeps_the_reference_shape_at_any_length(name):
    for its in (None, 500, 2000, 9000):
        over = {"train": {"iterations": its}} if its else {}
        t = preset(name, over).train
        n = t.iterations
        assert abs(t.loss.depth_from_iter - round(1500 * n / 7000)) <= 1
        assert abs(t.loss.normal_from_iter - round(1500 * n / 7000)) <= 1
        assert t.densify.reset_every == 3000
        assert abs(t.sh_degree_interval - round(1000 * n / 7000)) <= 1
        assert abs(t.lr.means_decay_steps - round(30_000 * n / 7000)) <= 1
        assert t.densify.refine_stop_iter >= n
        # SH growth reaches the preset's degree inside the run
        assert t.sh_degree * t.sh_degree_interval < n


def test_auto_preset_by_device():
    assert "auto" in preset_names() and "auto" not in PRESETS
    assert resolve_preset("auto", "cuda") == "balanced" and resolve_preset("auto", "cuda:1") == "balanced"
    assert resolve_preset("auto", "cpu") == "fast"
    assert resolve_preset("auto", "auto") == ("balanced" if torch.cuda.is_available() else "fast")
    assert resolve_preset("paper", "cpu") == "paper"
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_preset("quick")
    assert preset("auto", {"train": {"device": "cpu"}}) == preset("fast", {"train": {"device": "cpu"}})
    assert preset("auto", {"train": {"device": "cuda"}}) == preset("balanced", {"train": {"device": "cuda"}})


def _opacity_after(strategy: ReferenceStrategy, step: int) -> float:
    n = 8
    params = torch.nn.ParameterDict({
        "means": torch.zeros(n, 3), "scales": torch.zeros(n, 3), "quats": torch.ones(n, 4),
        "opacities": torch.full((n,), 2.0),
    })
    opt = {k: torch.optim.Adam([{"params": p, "lr": 1e-3, "name": k}]) for k, p in params.items()}
    state = strategy.initialize_state()
    means2d = torch.zeros(1, n, 2, requires_grad=True)
    means2d.sum().backward()
    info = {"means2d": means2d, "radii": torch.ones(1, n, 2, dtype=torch.int32), "width": 10, "height": 10,
            "n_cameras": 1, "gaussian_ids": None}
    strategy.step_post_backward(params, opt, state, step, info)
    return float(torch.sigmoid(params["opacities"].detach()).max())


def test_no_opacity_reset_too_close_to_the_end():
    s = ReferenceStrategy(refine_start_iter=10_000, refine_stop_iter=10_000, reset_every=50, iterations=240,
                          reset_min_remaining=100)
    assert _opacity_after(s, 100) < 0.011  # 140 left: reset to 2 x prune_opa
    assert _opacity_after(s, 150) > 0.8  # 90 left: skipped
    unbounded = ReferenceStrategy(refine_start_iter=10_000, refine_stop_iter=10_000, reset_every=50)
    assert _opacity_after(unbounded, 150) < 0.011


def test_dense_update_state_is_bit_identical_to_gsplat():
    """ReferenceStrategy's one-camera running statistics (dense ops) equal gsplat's ``DefaultStrategy._update_state``
    exactly, over several steps with Gaussians in and out of view and odd image sizes."""
    from gsplat.strategy import DefaultStrategy

    from aligngs.config import DensifyConfig

    n = 5000
    g = torch.Generator().manual_seed(0)
    ours = ReferenceStrategy.from_config(DensifyConfig())
    assert ours.refine_scale2d_stop_iter > 0
    ref = DefaultStrategy(refine_scale2d_stop_iter=ours.refine_scale2d_stop_iter)
    params = {"means": torch.zeros(n, 3)}
    states = [{"grad2d": None, "count": None, "radii": None} for _ in range(2)]
    calls = []
    real = DefaultStrategy._update_state
    for step, (w, h) in enumerate([(160, 120), (45, 37), (64, 48), (161, 119)]):
        means2d = torch.zeros(1, n, 2)
        means2d.grad = torch.randn(1, n, 2, generator=g) * 1e-3
        radii = (torch.rand(1, n, 2, generator=g) * 12).int() * (torch.rand(1, n, 1, generator=g) > 0.3).int()
        info = {"width": w, "height": h, "n_cameras": 1, "radii": radii, "gaussian_ids": None, "means2d": means2d}
        DefaultStrategy._update_state = lambda *a, **k: calls.append(step) or real(*a, **k)
        try:
            ours._update_state(params, states[0], info)
        finally:
            DefaultStrategy._update_state = real
        ref._update_state(params, states[1], info)
    assert calls == [0]  # gsplat's code only initialised the state; the dense path ran from then on
    for key in ("grad2d", "count", "radii"):
        assert torch.equal(states[0][key], states[1][key]), key
    assert float(states[0]["count"].max()) >= 3 and float(states[0]["grad2d"].sum()) > 0


def test_sparse_preset_is_fast_plus_the_sparse_view_settings():
    fast, sparse = preset("fast").to_dict(), preset("sparse").to_dict()
    changed = {(sec, k) for sec in ("train", "mesh") for k in sparse[sec] if sparse[sec][k] != fast[sec][k]}
    assert changed == {("train", "init_orientation"), ("train", "loss"), ("mesh", "largest_component"),
                       ("mesh", "weight_threshold"), ("mesh", "depth")}
    loss = {k for k in sparse["train"]["loss"] if sparse["train"]["loss"][k] != fast["train"]["loss"][k]}
    assert loss == {"depth_patch", "depth_pearson"}
    assert sparse["data"] == fast["data"] and sparse["mode"] == fast["mode"]
