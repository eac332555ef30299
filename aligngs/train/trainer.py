"""The optimisation loop: reference schedule, pluggable loss terms, densification strategy, progress, cancel, resume.

One iteration (AlignGS reference, docs/method.md §5):
  pick the next view of a shuffled per-epoch stack (the reference's viewpoint stack) -> render RGB + expected
  depth (+ camera-space normals when a normal term is active) -> photometric loss (1-0.2) L1 + 0.2 (1-SSIM) ->
  + every active ``LossTerm`` -> backward -> strategy (densify/prune/reset) -> Adam step -> position-LR decay.

Loss terms are objects with ``name``, ``needs`` (subset of {"normals", "semantics"}), ``active(step)`` and
``__call__(ctx) -> weighted scalar``; AlignGS's terms live in ``aligngs.train.terms``.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config import TrainConfig, scale_schedule
from ..data.types import Frame
from ..metrics.image import SSIM_SIGMA, SSIM_WINDOW, gaussian_window
from ..metrics.image import ssim as reference_ssim  # noqa: F401  (the metric; ``ssim`` below is the same value)
from ..model.gaussians import GaussianModel
from ..progress import CancelFn, Progress, ProgressFn, check_cancel
from ..render import WorkerPool, default_workers
from ..render._cpp import kernel as compiled_kernel
from ..render._isolate import isolated
from ..render._threads import Workers, for_each_parallel, single_threaded_torch, spans
from ..render.view import ViewTensors, render, render_semantics, sh_colors  # noqa: F401  (re-exported)
from .preview import point_preview
from .strategy import ReferenceStrategy

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available on this machine")
    return torch.device(name)


@dataclass
class StepContext:
    """What a loss term may look at in one iteration."""

    step: int
    frame: Frame
    view: ViewTensors
    model: GaussianModel
    gt: torch.Tensor  # [H,W,3]
    render: dict[str, torch.Tensor]
    meta: dict[str, Any]
    priors: Any = None  # per-view priors object (teacher scores, labels, depth prior) or None
    cache: dict[str, Any] = field(default_factory=dict)  # terms share derived tensors here (e.g. semantics)
    workers: Workers | None = None  # the trainer's CPU rasterizer threads, for a term's own renders (None on CUDA)


class LossTerm(Protocol):
    """``render_only`` (optional attribute, default False): the term depends on the Gaussians only through the
    maps of ``ctx.render`` (not ``ctx.model``); on CPU the trainer then evaluates it single-threaded, forward and
    backward, with those maps as the inputs of one ``isolated`` call (see ``image_terms``)."""

    name: str
    needs: frozenset[str]

    def active(self, step: int) -> bool: ...

    def __call__(self, ctx: StepContext) -> torch.Tensor: ...


class NormalFeatureSource(Protocol):
    """Supplies per-Gaussian camera-space normals for a view (the "normals" need)."""

    def __call__(self, model: GaussianModel, view: ViewTensors, workers: Workers | None = None) -> torch.Tensor: ...


def ssim(pred: torch.Tensor, gt: torch.Tensor, window_size: int = SSIM_WINDOW,
         sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """``aligngs.metrics.image.ssim`` (3DGS's SSIM) for [B,C,H,W] batches, computed with the 11x11 Gaussian window
    split into two 1-D passes and the five filtered maps (x, y, x^2, y^2, xy) in one grouped convolution per pass:
    the same value up to float rounding, ~1/5 of the multiply-adds and 2 instead of 5 convolution calls (forward
    and backward)."""
    c = pred.shape[1]
    x = torch.cat([pred, gt, pred * pred, gt * gt, pred * gt], dim=1)  # [B, 5C, H, W]
    g = gaussian_window(window_size, sigma, pred.dtype, str(pred.device))
    k = 5 * c
    pad = window_size // 2
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(k, 1, 1, window_size), padding=(0, pad), groups=k)
    x = F.conv2d(x, g.view(1, 1, -1, 1).expand(k, 1, window_size, 1), padding=(pad, 0), groups=k)
    mu1, mu2, e11, e22, e12 = x.split(c, dim=1)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s1, s2, s12 = e11 - mu1_sq, e22 - mu2_sq, e12 - mu12
    C1, C2 = 0.01 ** 2, 0.03 ** 2
    ssim_map = ((2 * mu12 + C1) * (2 * s12 + C2)) / ((mu1_sq + mu2_sq + C1) * (s1 + s2 + C2))
    return ssim_map.mean()


def photometric_loss(pred: torch.Tensor, gt: torch.Tensor, ssim_lambda: float, workers: Workers | None = None,
                     kernel: str = "auto") -> torch.Tensor:
    """(1 - lambda) L1 + lambda (1 - SSIM) of [H, W, C] images (differentiable w.r.t. ``pred``).

    On CPU, ``kernel`` ("auto", "cpp" or "torch", as the rasterizer's ``cpu_kernel``) picks the C++ loss
    (``render/csrc/photometric.cpp``: value and gradient in one pass, two bands of rows on ``workers``) or the torch
    ops. The torch ops run single-threaded, forward and backward (``render._isolate.isolated``): they are small
    (57,600 elements on a 160x120 view) and with torch's two intra-op threads each pays a thread wake-up
    (OMP_WAIT_POLICY=PASSIVE). Measured fwd + bwd on that view: 12-13 ms on two threads, 6.5 ms on one (the same
    ops split into two row bands on two threads: 7 ms, the per-call cost of the small convolutions stays); the C++
    loss: see ``_PhotometricCpu``. Where the C++ kernel cannot be built, "auto" uses the torch ops."""
    if pred.is_cuda:
        return _photometric(pred, gt, ssim_lambda)
    cpp = compiled_kernel(kernel)
    if cpp is not None and pred.dim() == 3 and gt.shape == pred.shape and gt.dtype == pred.dtype \
            and not gt.requires_grad:
        return _PhotometricCpu.apply(pred, gt, float(ssim_lambda), cpp, 1 if workers is None else workers)
    (loss,) = isolated(lambda p, g: (_photometric(p, g, ssim_lambda)[None],), pred, gt)
    return loss[0]


class _PhotometricCpu(torch.autograd.Function):
    """``photometric_loss`` by the C++ kernel: the forward computes the value and the gradient w.r.t. ``pred`` in one
    pass, in two bands of image rows (a fixed split, so the result does not depend on ``workers``); the backward
    scales the stored gradient. A 160x120 view, fwd + bwd: ~10 ms in the torch ops at 100 % CPU, against ~2-2.5 ms
    here (a training step of the shelf-rgbd benchmark: 99 -> 93 ms, CPU utilisation 175 -> 182 %)."""

    @staticmethod
    def forward(ctx, pred, gt, ssim_lambda, cpp, workers):  # type: ignore[override]
        p, g = pred.detach().contiguous(), gt.detach().contiguous()
        n = p.numel()
        grad = torch.empty_like(p) if ctx.needs_input_grad[0] else None
        bands = spans(p.shape[0], 2)
        sums: list = [None] * len(bands)
        window = gaussian_window(SSIM_WINDOW, SSIM_SIGMA, p.dtype)

        def band(i: int) -> None:
            s, rows = bands[i]
            sums[i] = cpp.photometric_rows(p, g, s, rows, window, (1.0 - ssim_lambda) / n,
                                           -ssim_lambda / n, grad)

        with single_threaded_torch():
            for_each_parallel(band, len(bands), workers)
        l1 = sum(v[0] for v in sums) / n
        loss = l1 if ssim_lambda <= 0 else (1.0 - ssim_lambda) * l1 + ssim_lambda * (1.0 - sum(v[1] for v in sums) / n)
        ctx.save_for_backward(grad if grad is not None else p)
        return p.new_tensor(loss)

    @staticmethod
    def backward(ctx, g_loss):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return (grad * g_loss if ctx.needs_input_grad[0] else None), None, None, None, None


def image_terms(ctx: StepContext, terms: Sequence[LossTerm]) -> dict[str, torch.Tensor]:
    """The values of ``render_only`` terms, evaluated on CPU single-threaded, forward and backward, in one
    ``isolated`` call whose inputs are the render maps (like ``photometric_loss``: their ops are image-sized and
    each paid a thread wake-up on torch's two intra-op threads; shelf-rgbd aligngs-mode step with the depth and
    normal terms, steps interleaved in one process: 132 -> 119 ms median). On CUDA (or with no such term): {}."""
    if not terms or ctx.gt.is_cuda:
        return {}
    keys = [k for k, v in ctx.render.items() if torch.is_tensor(v) and v.is_floating_point()]

    def run(*maps: torch.Tensor) -> tuple[torch.Tensor, ...]:
        local = dataclasses.replace(ctx, render={**ctx.render, **dict(zip(keys, maps))})
        return tuple(t(local).reshape(1) for t in terms)

    out = isolated(run, *[ctx.render[k] for k in keys])
    return {t.name: v[0] for t, v in zip(terms, out)}


def _photometric(pred: torch.Tensor, gt: torch.Tensor, ssim_lambda: float) -> torch.Tensor:
    l1 = (pred - gt).abs().mean()
    if ssim_lambda <= 0:
        return l1
    s = ssim(pred.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None])
    return (1.0 - ssim_lambda) * l1 + ssim_lambda * (1.0 - s)


def position_lr(step: int, cfg: TrainConfig, extent: float) -> float:
    t = min(max(step / max(cfg.lr.means_decay_steps, 1), 0.0), 1.0)
    lr0, lr1 = cfg.lr.means * extent, cfg.lr.means_final * extent
    return math.exp(math.log(lr0) * (1 - t) + math.log(lr1) * t)


class Trainer:
    """Owns the optimisers and the strategy for one GaussianModel and runs the schedule."""

    def __init__(
        self,
        model: GaussianModel,
        frames: Sequence[Frame],
        cfg: TrainConfig,
        *,
        extent: float,
        priors: Sequence[Any] | None = None,
        terms: Sequence[LossTerm] = (),
        normal_source: NormalFeatureSource | None = None,
        extra_modules: Sequence[torch.nn.Module] = (),
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
        progress_every_s: float = 0.5,
    ):
        if not frames:
            raise ValueError("no training frames")
        for f in frames:
            if f.camera is None or f.image is None:
                raise ValueError(f"training frame {f.name!r} has no camera or no image")
        # a config whose ``iterations`` changed after it was built gets its schedule rescaled here (a copy)
        cfg = scale_schedule(dataclasses.replace(cfg)) if cfg.schedule_iterations not in (None, cfg.iterations) else cfg
        self.model, self.cfg, self.extent = model, cfg, float(extent)
        self.device = model.device
        self.frames = list(frames)
        self.priors = list(priors) if priors is not None else [None] * len(self.frames)
        self.terms = list(terms)
        self.normal_source = normal_source
        self.progress, self.should_cancel = progress, should_cancel
        self.progress_every_s = progress_every_s
        self.views = [ViewTensors.of(f.camera, self.device) for f in self.frames]
        self.images = [torch.from_numpy(np.ascontiguousarray(f.image)).float().to(self.device) for f in self.frames]
        self.background = torch.tensor(cfg.background, dtype=torch.float32, device=self.device)
        # CPU: the rasterizer's threads, kept for the whole run instead of started for each parallel piece
        self.workers = WorkerPool(default_workers()) if torch.device(self.device).type == "cpu" else None
        self.strategy = ReferenceStrategy.from_config(cfg.densify, iterations=cfg.iterations)
        self.strategy_state = self.strategy.initialize_state(scene_scale=self.extent)
        # the compact semantic variant (features + decoder) has its own rate; the 150-d vector keeps the reference's
        self.semantic_lr = cfg.lr.compact_semantics if cfg.semantics.compact_dim else cfg.lr.semantics
        self.optimizers = self._make_optimizers()
        self.extra_modules = list(extra_modules)
        self.extra_optimizer = (
            # a module may carry its own rate (``lr`` attribute, e.g. the identity classifier); else the semantic one
            torch.optim.Adam([{"params": list(m.parameters()), "lr": getattr(m, "lr", self.semantic_lr)}
                              for m in self.extra_modules], lr=self.semantic_lr, eps=cfg.lr.eps)
            if self.extra_modules else None
        )
        self.step = 0
        self.rng = np.random.default_rng(cfg.seed)
        self.view_stack: list[int] = []  # the reference's viewpoint stack: every view once per epoch, shuffled
        self.history: list[dict[str, float]] = []

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        lr = self.cfg.lr
        lrs = {
            "means": lr.means * self.extent, "scales": lr.scales, "quats": lr.quats, "opacities": lr.opacities,
            "sh0": lr.sh0, "shN": lr.shN, "semantics": self.semantic_lr,
            "identities": self.cfg.identity.lr,  # Gaussian Grouping encodings (aligngs.model.identity)
        }
        # fused: one multi-threaded kernel per parameter instead of ~10 elementwise passes (about 4x faster on CPU
        # at 200k Gaussians; same update up to float rounding); the strategy's ops edit its state like the default's
        fused = all(p.dtype in (torch.float32, torch.float64) and p.device.type in ("cpu", "cuda")
                    for p in self.model.params.values())
        return {
            k: torch.optim.Adam([{"params": p, "lr": lrs[k], "name": k}], eps=lr.eps, fused=fused)
            for k, p in self.model.params.items()
        }

    def sh_degree_at(self, step: int) -> int:
        return min(step // max(self.cfg.sh_degree_interval, 1), self.model.sh_degree)

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        step = self.step
        if not self.view_stack:  # reference: refill with all training views, pop a random one each iteration
            self.view_stack = list(range(len(self.frames)))
        i = self.view_stack.pop(int(self.rng.integers(len(self.view_stack))))
        view, gt = self.views[i], self.images[i]
        active = [t for t in self.terms if t.active(step)]
        needs = frozenset().union(*(t.needs for t in active)) if active else frozenset()
        normals = self.normal_source(self.model, view, self.workers) if ("normals" in needs and self.normal_source) \
            else None
        out, meta = render(self.model, view, self.sh_degree_at(step), self.background, extra_features=normals,
                           workers=self.workers)
        if normals is not None:
            out["normals"] = out.pop("extra")
        self.strategy.step_pre_backward(self.model.params, self.optimizers, self.strategy_state, step, meta)
        ctx = StepContext(step, self.frames[i], view, self.model, gt, out, meta, self.priors[i], workers=self.workers)
        loss = photometric_loss(out["rgb"], gt, cfg.loss.ssim_lambda, self.workers)
        losses = {"photo": float(loss.detach())}
        values = image_terms(ctx, [t for t in active if getattr(t, "render_only", False)])
        for t in active:
            v = values[t.name] if t.name in values else t(ctx)
            losses[t.name] = float(v.detach())
            loss = loss + v
        losses["total"] = float(loss.detach())
        if not math.isfinite(losses["total"]):
            raise FloatingPointError(f"loss became non-finite at iteration {step}: {losses}")
        loss.backward()
        self.strategy.step_post_backward(self.model.params, self.optimizers, self.strategy_state, step, meta, packed=False)
        for opt in self.optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        if self.extra_optimizer is not None:
            self.extra_optimizer.step()
            self.extra_optimizer.zero_grad(set_to_none=True)
        self.step += 1
        for g in self.optimizers["means"].param_groups:
            g["lr"] = position_lr(self.step, cfg, self.extent)
        return losses

    def train(self, iterations: int | None = None, *, checkpoint_path: Path | None = None) -> list[dict[str, float]]:
        total = self.cfg.iterations if iterations is None else iterations
        t0, last_report = time.perf_counter(), 0.0
        start = self.step
        while self.step < total:
            check_cancel(self.should_cancel)
            losses = self.train_step()
            self.history.append(losses)
            now = time.perf_counter()
            points = self._point_preview(total)
            if self.progress and (points is not None or now - last_report >= self.progress_every_s
                                  or self.step == total):
                last_report = now
                done = self.step - start
                eta = (now - t0) / max(done, 1) * (total - self.step)
                self.progress(Progress("train", self.step / total, f"iteration {self.step}/{total}", self.step, total,
                                       losses, self.model.n, eta, points=points))
            if checkpoint_path and self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                self.save_checkpoint(checkpoint_path)
        if checkpoint_path:
            self.save_checkpoint(checkpoint_path)
        return self.history

    def _point_preview(self, total: int):
        """The live point preview when one is due (``TrainConfig.preview_every``) and someone listens, else None."""
        every = self.cfg.preview_every
        if every is None:
            every = 100 if self.device.type == "cuda" else 25
        if not self.progress or every <= 0 or (self.step % every and self.step != total):
            return None
        decoder = next((m for m in self.extra_modules if hasattr(m, "decode_features")), None)
        return point_preview(self.model, max_points=self.cfg.preview_max_points, decoder=decoder)

    # --- checkpoints (tensors + plain numbers; loaded with weights_only=True) -----------------------
    def save_checkpoint(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "strategy": {k: v for k, v in self.strategy_state.items() if isinstance(v, (torch.Tensor, float, int))},
            "extra": [m.state_dict() for m in self.extra_modules],
            "extra_optimizer": self.extra_optimizer.state_dict() if self.extra_optimizer is not None else {},
            "rng": self.rng.bit_generator.state,  # the whole state (PCG64: state, inc and the buffered uint32)
            "torch_rng": torch.get_rng_state(),  # densification's split samples from torch's global generator
            "view_stack": torch.tensor(self.view_stack, dtype=torch.int64),
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(state, tmp)
        tmp.replace(path)

    def load_checkpoint(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=True)
        model = GaussianModel.from_state_dict(state["model"], device=self.device)
        self.model.params = model.params
        self.model.sh_degree = model.sh_degree
        self.optimizers = self._make_optimizers()
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        self.strategy_state.update(state["strategy"])
        for m, sd in zip(self.extra_modules, state["extra"]):
            m.load_state_dict(sd)
        if self.extra_optimizer is not None and state.get("extra_optimizer"):
            self.extra_optimizer.load_state_dict(state["extra_optimizer"])
        self.view_stack = [int(v) for v in state.get("view_stack", torch.zeros(0, dtype=torch.int64)).tolist()]
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"].cpu())
        rng = state["rng"]
        # older checkpoints kept only the inner state dict
        self.rng.bit_generator.state = rng if "bit_generator" in rng else {**self.rng.bit_generator.state, "state": rng}
        self.step = int(state["step"])
