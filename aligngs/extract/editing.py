"""Semantic editing as in the reference (``calculate_edit_mask``): extract or remove classes.

Per Gaussian: p = softmax(semantic logits), pred = argmax p, score = sum of p over the target classes.

- extract: a Gaussian is selected when ``pred`` is a target AND ``score >= threshold``;
- remove ("deletion"): a Gaussian is selected when ``pred`` is a target OR ``score >= threshold``.

With ``threshold=None`` only the argmax test is used (the reference's "leave it empty if using argmax";
its example configs use 0.014 for deletion). :func:`select_gaussians` returns the mask of Gaussians to
KEEP (the reference zeroes the opacity of the others at render time; we also use the mask to write files).
:func:`filter_mesh_by_class` does the same for a mesh with per-vertex classes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from aligngs.data.types import TriMesh
from aligngs.extract.splits import submesh

__all__ = ["select_gaussians", "filter_mesh_by_class"]

_MODES = ("extract", "remove")


def _targets(target_class_ids: Sequence[int], num_classes: int, where: str) -> list[int]:
    t = sorted({int(c) for c in target_class_ids})
    if not t:
        raise ValueError(f"{where}: target_class_ids is empty")
    if t[0] < 0 or t[-1] >= num_classes:
        raise ValueError(f"{where}: target class ids must lie in 0..{num_classes - 1}, got {t}")
    return t


def select_gaussians(sem_logits, target_class_ids: Sequence[int], threshold: float | None = None, mode: str = "extract"):
    """Bool keep-mask [N] from per-Gaussian semantic logits [N,C] (torch in -> torch out, numpy -> numpy).

    mode="extract": keep = argmax in targets AND summed target probability >= threshold.
    mode="remove": keep = NOT (argmax in targets OR summed target probability >= threshold).
    """
    if mode not in _MODES:
        raise ValueError(f"select_gaussians: mode must be one of {_MODES}, got {mode!r}")
    is_np = not isinstance(sem_logits, torch.Tensor)
    t = torch.as_tensor(np.asarray(sem_logits)) if is_np else sem_logits.detach()
    if t.dim() != 2:
        raise ValueError(f"select_gaussians: sem_logits must be [N,C], got {list(t.shape)}")
    targets = _targets(target_class_ids, t.shape[1], "select_gaussians")
    with torch.no_grad():
        probs = torch.softmax(t.float(), dim=-1)
        pred = probs.argmax(dim=-1)
        tt = torch.tensor(targets, device=t.device)
        hit = torch.isin(pred, tt)
        if threshold is not None:
            score = probs[:, tt].sum(dim=-1)
            hit = (hit | (score >= threshold)) if mode == "remove" else (hit & (score >= threshold))
        keep = hit if mode == "extract" else ~hit
    return keep.cpu().numpy() if is_np else keep


def filter_mesh_by_class(
    mesh: TriMesh,
    target_class_ids: Sequence[int],
    mode: str = "extract",
    *,
    min_confidence: float | None = None,
    num_classes: int = 150,
) -> TriMesh:
    """Keep (extract) or drop (remove) the target classes of a mesh with ``vertex_attrs["class_id"]``.

    A vertex is selected when its class is a target (a mesh has no per-class probabilities, so the summed
    score of :func:`select_gaussians` is not available); for extract, ``min_confidence`` additionally
    requires ``vertex_attrs["confidence"] >= min_confidence``. Faces are kept when all 3 vertices are kept;
    unreferenced vertices are dropped and the rest re-indexed (attributes carried over).
    """
    if mode not in _MODES:
        raise ValueError(f"filter_mesh_by_class: mode must be one of {_MODES}, got {mode!r}")
    if "class_id" not in mesh.vertex_attrs:
        raise ValueError("filter_mesh_by_class: mesh.vertex_attrs has no 'class_id'")
    cls = np.asarray(mesh.vertex_attrs["class_id"])
    if cls.shape != (mesh.vertices.shape[0],):
        raise ValueError(f"filter_mesh_by_class: class_id must be [V]={mesh.vertices.shape[0]}, got {cls.shape}")
    targets = _targets(target_class_ids, num_classes, "filter_mesh_by_class")
    hit = np.isin(cls, targets)
    if mode == "extract" and min_confidence is not None:
        if "confidence" not in mesh.vertex_attrs:
            raise ValueError("filter_mesh_by_class: min_confidence given but mesh.vertex_attrs has no 'confidence'")
        hit &= np.asarray(mesh.vertex_attrs["confidence"]) >= min_confidence
    keep_v = hit if mode == "extract" else ~hit
    keep_f = keep_v[np.asarray(mesh.faces)].all(axis=1)
    sub, _ = submesh(mesh, keep_f)
    return sub
