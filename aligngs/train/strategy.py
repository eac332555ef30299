"""Densification: gsplat's ``DefaultStrategy`` with the reference schedule, two fixes and a size cap.

gsplat 1.5.3's ``DefaultStrategy.step_post_backward`` guards the opacity reset with
``step % self.reset_every == 0 & step > 0``, which Python parses as the chained comparison
``(step % reset_every == (0 & step)) and ((0 & step) > 0)`` -- always false, so opacities are never reset.
The 3DGS/PGSR reference resets every 3,000 steps; ``ReferenceStrategy`` restores that. It also implements the
reference's screen-size prune (radius > 20 px after the first reset) in pixels, skips an opacity reset that would
leave fewer than ``reset_min_remaining`` iterations to recover from it (scaled schedules of short runs), and has an
optional cap on the number of Gaussians (growth stops at the cap; pruning continues).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from gsplat.strategy import DefaultStrategy
from gsplat.strategy.ops import remove, reset_opa

from ..config import DensifyConfig


@dataclass
class ReferenceStrategy(DefaultStrategy):
    prune_screen_px: float = 20.0
    max_gaussians: int | None = None
    iterations: int | None = None  # the run's length: no opacity reset in its last ``reset_min_remaining`` steps
    reset_min_remaining: int = 0

    @classmethod
    def from_config(cls, cfg: DensifyConfig, iterations: int | None = None) -> "ReferenceStrategy":
        return cls(
            iterations=iterations,
            reset_min_remaining=cfg.reset_min_remaining,
            prune_opa=cfg.prune_opa,
            grow_grad2d=cfg.grow_grad2d,
            refine_start_iter=cfg.refine_start_iter,
            refine_stop_iter=cfg.refine_stop_iter if cfg.enabled else 0,
            reset_every=cfg.reset_every,
            refine_every=cfg.refine_every,
            prune_screen_px=cfg.prune_too_big_screen_px,
            max_gaussians=cfg.max_gaussians,
            # track per-Gaussian screen radii for the whole run so the pixel prune can use them
            refine_scale2d_stop_iter=cfg.refine_stop_iter if cfg.enabled else 0,
            grow_scale2d=float("inf"),  # the reference does not split on screen size
            prune_scale2d=float("inf"),  # replaced by the pixel rule below
        )

    def step_post_backward(self, params, optimizers, state: dict[str, Any], step: int, info: dict[str, Any], packed: bool = False):
        if step >= self.refine_stop_iter:
            return
        self._update_state(params, state, info, packed=packed)
        state["max_side"] = float(max(info["width"], info["height"]))
        if step > self.refine_start_iter and step % self.refine_every == 0 and step % self.reset_every >= self.pause_refine_after_reset:
            if self.max_gaussians is None or len(params["means"]) < self.max_gaussians:
                self._grow_gs(params, optimizers, state, step)
            self._prune_gs(params, optimizers, state, step)
            state["grad2d"].zero_()
            state["count"].zero_()
            state["radii"].zero_()
        if step > 0 and step % self.reset_every == 0 and self._reset_allowed(step):
            reset_opa(params=params, optimizers=optimizers, state=state, value=self.prune_opa * 2.0)

    @torch.no_grad()
    def _update_state(self, params, state: dict[str, Any], info: dict[str, Any], packed: bool = False) -> None:
        """gsplat's running statistics (screen-space gradient norm, visible count, max screen radius), written as
        dense ops for one camera without packing (the trainer's case): no ``nonzero``/``index_add_`` round trip.
        Bit-identical to ``DefaultStrategy._update_state`` (tested); 60k Gaussians on CPU: 4.1 -> 2.1 ms per
        step. Other cases go to gsplat's code."""
        grad = info[self.key_for_gradient].absgrad if self.absgrad else info[self.key_for_gradient].grad
        if packed or info["n_cameras"] != 1 or grad.dim() != 3 or any(state[k] is None for k in ("grad2d", "count")) \
                or (self.refine_scale2d_stop_iter > 0 and state["radii"] is None):
            return super()._update_state(params, state, info, packed=packed)
        w, h = float(info["width"]), float(info["height"])
        scale = grad.new_tensor([w / 2.0, h / 2.0])  # gsplat's normalisation (x n_cameras = 1)
        radii = info["radii"][0]
        sel = (radii > 0.0).all(dim=-1)
        state["grad2d"].add_(torch.where(sel, (grad[0] * scale).norm(dim=-1), 0.0))
        state["count"].add_(sel)
        if self.refine_scale2d_stop_iter > 0:
            r = radii.max(dim=-1).values / max(w, h)
            torch.maximum(state["radii"], torch.where(sel, r, 0.0), out=state["radii"])

    def _reset_allowed(self, step: int) -> bool:
        return self.iterations is None or self.iterations - step >= self.reset_min_remaining

    @torch.no_grad()
    def _prune_gs(self, params, optimizers, state, step: int) -> int:
        is_prune = torch.sigmoid(params["opacities"].flatten()) < self.prune_opa
        if step > self.reset_every:
            is_prune |= torch.exp(params["scales"]).max(dim=-1).values > self.prune_scale3d * state["scene_scale"]
            is_prune |= state["radii"] * state["max_side"] > self.prune_screen_px
        n = int(is_prune.sum().item())
        if n > 0:
            remove(params=params, optimizers=optimizers, state=state, mask=is_prune)
        return n
