"""AlignGS's loss terms as pluggable ``LossTerm`` objects (weights and schedules from ``LossConfig``).

Each wraps a pure function from ``aligngs.train.losses`` / ``aligngs.train.losses.normal_maps``; the per-view
priors object (``aligngs.priors.cache.Priors``) supplies teacher scores, argmax labels and the depth prior.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import LossConfig, SemanticConfig
from ..render._isolate import Split, isolated
from ..render._threads import Workers, default_workers, gaussian_parts
from ..render.view import ViewTensors
from . import losses as L
from .losses import normal_maps as N
from .trainer import StepContext


def _labels(ctx: StepContext) -> torch.Tensor | None:
    lab = ctx.cache.get("labels")
    if lab is None and ctx.priors is not None and ctx.priors.labels is not None:
        lab = torch.from_numpy(ctx.priors.labels).long().to(ctx.gt.device)
        ctx.cache["labels"] = lab
    return lab


def _edge_mask(ctx: StepContext, dilation: int) -> torch.Tensor | None:
    if "edges" not in ctx.cache:
        lab = _labels(ctx)
        ctx.cache["edges"] = None if lab is None else L.semantic_edge_mask(lab, dilation)
    return ctx.cache["edges"]


def gaussian_camera_normals(model, view: ViewTensors, workers: Workers | None = None) -> torch.Tensor:
    """Per-Gaussian normals (smallest-scale axis) in camera space, facing the camera. [N,3]. ``workers``: the CPU
    threads for the two halves (default: a count, threads started for the call)."""
    p = model.params  # not model.activated(): the normals need the raw quats and only the argmin of the scales

    def normals(quats, scales, means, viewmat):
        return (N.camera_space_normals(N.gaussian_normals_world(quats, scales), means, viewmat),)

    if p["means"].is_cuda:
        return normals(p["quats"], p["scales"], p["means"], view.viewmat[0])[0]
    # CPU: per-Gaussian work in two halves on two threads, forward and backward, each single-threaded (its ~30
    # small ops each paid a thread wake-up on torch's intra-op threads)
    n = p["means"].shape[0]
    (out,) = isolated(normals, p["quats"], p["scales"], p["means"], view.viewmat[0],
                      split=Split(n=n, in_dims=(0, 0, 0, None), out_dims=(0,), parts=gaussian_parts(n),
                                  workers=default_workers() if workers is None else workers))
    return out


@dataclass
class SemanticDistillation:
    """Soft KL (weight 1.0) + hard CE on the teacher argmax (0.1), from iteration 1, geometry detached."""

    kl_weight: float
    ce_weight: float
    kl_norm: str = "per_pixel"
    decoder: torch.nn.Module | None = None  # compact variant: rendered D channels -> 150 logits
    name: str = "semantic"
    needs: frozenset = frozenset({"semantics"})

    def active(self, step: int) -> bool:
        return self.kl_weight > 0 or self.ce_weight > 0

    def __call__(self, ctx: StepContext) -> torch.Tensor:
        from ..render.view import render_semantics

        pr = ctx.priors
        if pr is None or pr.sem_scores is None:
            return ctx.gt.new_zeros(())
        from .objects import detached_channels

        # [S,H,W]: the detached pass, shared with the identity encodings when the model has them (one rasterization)
        rendered = detached_channels(ctx, "semantics") if "identities" in ctx.model.params else \
            render_semantics(ctx.model, ctx.view, ctx.workers)
        if self.decoder is not None:
            rendered = self.decoder(rendered)
        ctx.cache["semantics"] = rendered
        teacher = torch.from_numpy(pr.sem_scores).float().to(rendered.device)
        valid = None if pr.sem_valid is None else torch.from_numpy(pr.sem_valid).to(rendered.device)
        loss = rendered.new_zeros(())
        if self.kl_weight > 0:
            loss = loss + self.kl_weight * L.semantic_kl(rendered, teacher, valid, norm=self.kl_norm)
        labels = _labels(ctx)
        if self.ce_weight > 0 and labels is not None:
            loss = loss + self.ce_weight * L.semantic_ce(rendered, labels)
        return loss


@dataclass
class DepthPrior:
    """Pearson depth loss against the (monocular or sensor) prior, skipping semantic edges (0.5, after 1500)."""

    weight: float
    from_iter: int
    dilation: int = 0
    edge_mask: bool = True  # LossConfig.depth_edge_mask
    alpha_gate: float = 0.0  # LossConfig.depth_alpha_gate (0 = the reference: no gate)
    patch: int = 0  # LossConfig.depth_patch (0 = one correlation over the image, the reference)
    name: str = "depth"
    needs: frozenset = frozenset()
    render_only: bool = True  # reads the Gaussians only through ctx.render (trainer.image_terms)

    def active(self, step: int) -> bool:
        return self.weight > 0 and step >= self.from_iter

    def __call__(self, ctx: StepContext) -> torch.Tensor:
        pr = ctx.priors
        if pr is None or pr.depth is None:
            return ctx.gt.new_zeros(())
        prior = torch.from_numpy(pr.depth).float().to(ctx.gt.device)
        valid = ctx.render["alpha"].detach() > self.alpha_gate if self.alpha_gate > 0 else \
            torch.ones(prior.shape, dtype=torch.bool, device=prior.device)
        if pr.depth_valid is not None:
            valid = valid & torch.from_numpy(pr.depth_valid).to(valid.device)
        edges = _edge_mask(ctx, self.dilation) if self.edge_mask else None
        if edges is not None:
            valid = valid & ~edges
        if int(valid.sum()) < 16:
            return ctx.gt.new_zeros(())
        return self.weight * L.pearson_depth_loss(ctx.render["depth"], prior, valid, patch=self.patch)


@dataclass
class NormalTerms:
    """Depth-normal consistency (0.05) + semantic-boundary normal term (0.01), after 1500."""

    consistency_weight: float
    boundary_weight: float
    from_iter: int
    sharpness: float = 100.0
    renormalize: bool = False  # LossConfig.normal_renormalize (False = the reference: raw blended normals)
    name: str = "normal"
    needs: frozenset = frozenset({"normals"})
    render_only: bool = True  # reads the Gaussians only through ctx.render (trainer.image_terms)

    def active(self, step: int) -> bool:
        return (self.consistency_weight > 0 or self.boundary_weight > 0) and step >= self.from_iter

    def __call__(self, ctx: StepContext) -> torch.Tensor:
        n_r = ctx.render["normals"]  # alpha-blended unit normals: shorter where alpha < 1 or normals disagree
        if self.renormalize:
            n_r = torch.nn.functional.normalize(n_r, dim=-1, eps=1e-8)
        loss = n_r.new_zeros(())
        if self.consistency_weight > 0:
            n_d = N.depth_to_normals(ctx.render["depth"], ctx.view.K[0]) * ctx.render["alpha"].detach()[..., None]
            loss = loss + self.consistency_weight * L.normal_consistency_loss(n_r, n_d)
        labels = _labels(ctx)
        if self.boundary_weight > 0 and labels is not None:
            loss = loss + self.boundary_weight * L.semantic_boundary_normal_loss(n_r, labels, self.sharpness)
        return loss


@dataclass
class MinScale:
    """PGSR flattening: 100 x mean(min scale) over Gaussians visible in this view, from iteration 1."""

    weight: float
    name: str = "min_scale"
    needs: frozenset = frozenset()

    def active(self, step: int) -> bool:
        return self.weight > 0

    def __call__(self, ctx: StepContext) -> torch.Tensor:
        radii = ctx.meta["radii"][0]
        visible = (radii > 0).all(dim=-1) if radii.dim() == 2 else radii > 0
        scales = torch.exp(ctx.model.params["scales"])
        return self.weight * L.min_scale_loss(scales, visible)


def aligngs_terms(loss: LossConfig, sem: SemanticConfig, decoder: torch.nn.Module | None = None) -> list:
    """The full AlignGS objective beyond the photometric loss. Zero weights drop a term (ablations)."""
    terms: list = []
    if sem.enabled and (loss.semantic_kl > 0 or loss.semantic_ce > 0):
        terms.append(SemanticDistillation(loss.semantic_kl, loss.semantic_ce, loss.semantic_kl_norm, decoder))
    if loss.depth_pearson > 0:
        terms.append(DepthPrior(loss.depth_pearson, loss.depth_from_iter, loss.edge_dilation, loss.depth_edge_mask,
                                loss.depth_alpha_gate, loss.depth_patch))
    if loss.normal_consistency > 0 or loss.normal_semantic_boundary > 0:
        terms.append(NormalTerms(loss.normal_consistency, loss.normal_semantic_boundary, loss.normal_from_iter,
                                 loss.boundary_sharpness, loss.normal_renormalize))
    if loss.min_scale > 0:
        terms.append(MinScale(loss.min_scale))
    return terms
