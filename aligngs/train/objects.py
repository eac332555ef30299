"""Objects during training: Gaussian Grouping identity encodings as a loss term, and the shared detached pass.

:func:`detached_channels` renders every per-Gaussian channel block the model carries (``semantics`` and/or
``identities``) in ONE rasterization whose means/quats/scales/opacities are detached (AlignGS's semantic pass,
docs/method.md §2), through the same renderer seam (:func:`aligngs.render.api.rasterization`); the blocks
are split apart afterwards and cached per step, so the semantic and identity terms share one pass.

:class:`IdentityGrouping` is Gaussian Grouping's objective (weights in :class:`aligngs.config.IdentityConfig`):
every step, ``weight`` x CE(classifier(rendered identities), object-id map) / log K; every ``reg3d_every`` steps
also ``reg3d_weight`` x the KNN KL regulariser on ``reg3d_sample`` Gaussians (k = ``reg3d_k``). Only the identity
encodings and the classifier receive gradients.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..render.api import rasterization
from ..render.view import ViewTensors
from .losses.identity import identity_ce, identity_knn_kl

log = logging.getLogger(__name__)

__all__ = ["CHANNEL_KEYS", "detached_channels", "render_channels", "IdentityGrouping"]

CHANNEL_KEYS = ("semantics", "identities")


def render_channels(model, view: ViewTensors, keys: Sequence[str] | None = None,
                    workers: Any = None) -> dict[str, torch.Tensor]:
    """Render the per-Gaussian channel blocks ``keys`` (default: all of :data:`CHANNEL_KEYS` the model has) with
    detached geometry in one pass -> {key: [D_key, H, W]}. ``workers``: ``rasterization``'s ``cpu_workers``."""
    keys = [k for k in (CHANNEL_KEYS if keys is None else keys) if k in model.params]
    if not keys:
        return {}
    a = model.activated()
    feats = torch.cat([model.params[k] for k in keys], dim=-1)
    out, _, _ = rasterization(
        a["means"].detach(), a["quats"].detach(), a["scales"].detach(), a["opacities"].detach(),
        feats, view.viewmat, view.K, view.width, view.height, render_mode="RGB", cpu_workers=workers,
    )
    img = out[0].permute(2, 0, 1)
    res, s = {}, 0
    for k in keys:
        d = model.params[k].shape[1]
        res[k] = img[s:s + d]
        s += d
    return res


def detached_channels(ctx, key: str) -> torch.Tensor:
    """The rendered block ``key`` of this step's detached pass ([D,H,W]); the pass runs once per step."""
    cache = ctx.cache.get("detached_channels")
    if cache is None:
        cache = render_channels(ctx.model, ctx.view, workers=ctx.workers)
        ctx.cache["detached_channels"] = cache
    if key not in cache:
        raise KeyError(f"the model has no per-Gaussian {key!r} channels")
    return cache[key]


@dataclass
class IdentityGrouping:
    """Gaussian Grouping's identity loss: 2-D CE / log K every step + the 3-D KNN KL every ``reg3d_every`` steps.

    ``object_maps``: one int64 [H,W] object-id map per training frame (0 = no object), in the trainer's frame
    order; the term finds the current frame's map by ``ctx.frame.name``.
    """

    classifier: torch.nn.Module
    object_maps: dict[str, np.ndarray]
    weight: float = 1.0
    reg3d_weight: float = 2.0
    reg3d_k: int = 5
    reg3d_every: int = 5
    reg3d_sample: int = 1000
    reg3d_max_points: int = 200_000
    seed: int = 0
    name: str = "identity"
    needs: frozenset = frozenset({"identities"})
    _gen: Any = field(default=None, repr=False)
    _targets: dict = field(default_factory=dict, repr=False)

    def active(self, step: int) -> bool:
        return self.weight > 0 or self.reg3d_weight > 0

    def _target(self, ctx) -> torch.Tensor | None:
        name = ctx.frame.name
        t = self._targets.get(name)
        if t is None:
            m = self.object_maps.get(name)
            if m is None:
                return None
            t = torch.from_numpy(np.asarray(m, np.int64)).to(ctx.gt.device)
            self._targets[name] = t
        return t

    def __call__(self, ctx) -> torch.Tensor:
        loss = ctx.gt.new_zeros(())
        if self.weight > 0:
            target = self._target(ctx)
            if target is not None:
                logits = self.classifier(detached_channels(ctx, "identities"))
                loss = loss + self.weight * identity_ce(logits, target)
        if self.reg3d_weight > 0 and self.reg3d_every > 0 and ctx.step % self.reg3d_every == 0:
            # the sample depends only on (seed, step): a resumed run draws what an uninterrupted one would
            self._gen = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(ctx.step))
            probs = torch.softmax(self.classifier.classify(ctx.model.params["identities"]), dim=-1)
            loss = loss + self.reg3d_weight * identity_knn_kl(
                ctx.model.params["means"], probs, self.reg3d_k, self.reg3d_sample, self.reg3d_max_points, self._gen)
        return loss


# ------------------------------------------------------------------------------------------------ pipeline set-up
@dataclass
class ObjectsSetup:
    """What :func:`setup_objects` adds to a run: loss terms, extra trainable modules, the identity classifier."""

    terms: list = field(default_factory=list)
    modules: list = field(default_factory=list)
    classifier: torch.nn.Module | None = None
    info: dict = field(default_factory=dict)


def _resolve_masks(cfg, frames) -> str:
    ic = cfg.train.identity
    if ic.masks not in ("auto", "provided", "associated", "none"):
        raise ValueError(f"train.identity.masks must be auto | provided | associated | none, got {ic.masks!r}")
    if ic.masks != "auto":
        return ic.masks
    return "provided" if frames and all(f.extras.get("instance") is not None for f in frames) else "associated"


@torch.no_grad()
def _view_depths(model, frames) -> list[np.ndarray]:
    """Sensor depth per frame where every frame has it, else the depth rendered from the model (alpha > 0.5)."""
    from ..render.view import render

    if all(f.depth is not None for f in frames):
        return [np.asarray(f.depth, np.float64) for f in frames]
    out = []
    bg = torch.zeros(3, device=model.device)
    for f in frames:
        r, _ = render(model, ViewTensors.of(f.camera, model.device), 0, bg)
        a = r["alpha"].cpu().numpy()
        out.append(np.where(a > 0.5, r["depth"].cpu().numpy(), 0.0))
    return out


def object_maps_for(cfg, model, frames, priors, extent: float):
    """The identity loss's object-id maps for ``frames`` (see :mod:`aligngs.priors.instances`), or None."""
    from ..priors.instances import associate_segments, label_segments, provided_object_maps

    ic = cfg.train.identity
    how = _resolve_masks(cfg, frames)
    if how == "none":
        return None
    if how == "provided":
        om = provided_object_maps(frames, ic.max_instances)
        if om is None:
            raise ValueError("train.identity.masks='provided' but not every training view has an instance map "
                             "(Frame.extras['instance'], e.g. instance_file_path in transforms.json)")
        return om
    labels = []
    for i, f in enumerate(frames):
        pr = priors[i] if priors is not None else None
        lab = pr.labels if (pr is not None and pr.labels is not None) else f.labels
        if lab is None:
            log.info("identity encodings off: view %r has neither instance maps nor teacher labels", f.name)
            return None
        labels.append(lab)
    segs = [label_segments(lab, min_area=max(16, lab.size // 400)) for lab in labels]
    return associate_segments([s for s, _ in segs], [c for _, c in segs], _view_depths(model, frames),
                              [f.camera for f in frames], voxel=max(extent / 64.0, 1e-3),
                              max_objects=ic.max_instances)


def _virtual_teacher(cfg, scene, device, sem: str):
    """The teacher for virtual views: a hook in ``scene.meta['virtual_teacher']`` (e.g. a benchmark's
    :class:`~aligngs.train.virtual_views.MeshLabelTeacher` with its simulated teacher), else the run's network teacher
    on the render; None when there is none. Provided labels have no network to run on a render; the ground-truth mesh
    of a synthetic room is NOT used on its own: the run cannot know whether its labels were degraded (a benchmark's
    simulated teacher), and clean mesh labels would leak the ground truth into it."""
    hook = scene.meta.get("virtual_teacher") if scene is not None else None
    if hook is not None:
        return hook, getattr(hook, "description", "scene hook")
    if sem in ("provided", "gt"):
        return None, "provided labels: no teacher network to run on the renders (Scene.meta['virtual_teacher'])"
    if sem == "none":
        return None, "no semantic teacher"
    from ..priors.teachers import make_semantic_teacher
    from .virtual_views import RenderTeacher

    sc = cfg.train.semantics
    return RenderTeacher(make_semantic_teacher(sem, sc.teacher_model, str(device))), f"{sem} on the render"


def setup_objects(cfg, model, frames, priors, scene, extent: float, device, decoder=None,
                  semantic_teacher: str = "provided") -> ObjectsSetup:
    """Identity encodings (adds ``identities`` to ``model``) and virtual views for an AlignGS run, per the config.

    ``semantic_teacher``: the run's resolved semantic teacher name (``aligngs.pipeline.resolve_teachers``)."""
    from ..model.identity import IdentityClassifier, add_identities
    from .virtual_views import VirtualViewConsistency

    res = ObjectsSetup()
    if cfg.mode != "aligngs" or not cfg.train.semantics.enabled:
        return res
    ic, vc = cfg.train.identity, cfg.train.virtual_views
    if ic.enabled:
        om = object_maps_for(cfg, model, frames, priors, extent)
        if om is not None:
            add_identities(model, ic.dim, cfg.train.seed)
            clf = IdentityClassifier(ic.dim, ic.max_instances, ic.classifier_lr).to(device)
            maps = {f.name: m for f, m in zip(frames, om.maps)}
            res.terms.append(IdentityGrouping(clf, maps, ic.weight, ic.reg3d_weight, ic.reg3d_k, ic.reg3d_every,
                                              ic.reg3d_sample, ic.reg3d_max_points, cfg.train.seed))
            res.modules.append(clf)
            res.classifier = clf
            res.info["identity"] = {"masks": om.source, "objects": om.num_objects}
    if vc.enabled and (cfg.train.loss.semantic_kl > 0 or cfg.train.loss.semantic_ce > 0):
        teacher, what = _virtual_teacher(cfg, scene, device, semantic_teacher)
        if teacher is None:
            log.info("virtual views off: %s", what)
            res.info["virtual_views"] = {"off": what}
        else:
            from_step = int(round(vc.from_fraction * cfg.train.iterations))
            depths = [f.depth for f in frames]
            res.terms.append(VirtualViewConsistency(
                [f.camera for f in frames], teacher, from_step, vc.kl_weight, vc.ce_weight, vc.every, vc.pool,
                decoder, depths if all(d is not None for d in depths) else None, cfg.train.seed,
                {"interpolate_share": vc.interpolate_share, "max_shift": vc.max_shift,
                 "max_rotation_deg": vc.max_rotation_deg}, cfg.train.loss.semantic_kl_norm))
            res.info["virtual_views"] = {"teacher": what, "from_step": from_step}
    return res
