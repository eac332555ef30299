"""Objects from the learned identities: per-instance splits, names, and remove / extract / highlight by instance.

Per Gaussian, the identity classifier's argmax is its object id (:meth:`IdentityClassifier.object_ids`); per mesh
vertex, the object id is the majority vote of the rendered object-id maps over the views that see it (the same
depth-tested vote as the class labels, :func:`aligngs.extract.labeling.label_vertices_by_views`).

:func:`split_by_identity` then builds the usual :class:`~aligngs.extract.splits.ClassSplit` list (faces / points per
class exactly as :func:`~aligngs.extract.splits.split_by_class` selects them) with instances from the identities:

1. every object id gets ONE class: the majority class of the mesh vertices carrying it (of the points when there
   is no mesh);
2. inside class c, an instance is an object id whose class is c holding at least ``min_instance_faces`` faces and
   ``min_share`` of the class's faces (a face counts for the object of its first vertex, as in ``split_by_class``);
   without a mesh, points and ``min_instance_points`` decide instead. With a mesh, points take the instance of
   their nearest vertex (mesh and points of one object stay together);
3. the class's other elements (object ids of another class, too small, or unseen) join the instance of their
   nearest assigned element in 3-D, so hiding an instance hides the whole object and no fragment is left over;
4. a class where no object id qualifies falls back to connected components (``split_by_class``'s rule).

Instances are numbered 0..K-1 per class by decreasing size (faces + points) and named ``<class>_<index>``
(:func:`instance_name`); each records its object id and whether it came from ``identity`` or ``components``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.spatial import cKDTree

from aligngs.data.types import TriMesh
from aligngs.extract.labeling import SemanticPoints, as_semantic_points
from aligngs.extract.splits import ClassSplit, InstanceInfo, split_by_class, submesh

__all__ = [
    "ObjectInstance",
    "instance_name",
    "split_by_identity",
    "object_classes",
    "select_gaussians_by_object",
    "objects_of_instances",
    "filter_mesh_by_instance",
    "highlight_colors",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9]+")


def instance_name(class_name: str, index: int) -> str:
    """``<class>_<index>`` with the class name made file- and Blender-safe (``coffee table`` -> ``coffee_table_0``)."""
    base = _UNSAFE.sub("_", str(class_name)).strip("_") or "object"
    return f"{base}_{int(index)}"


@dataclass
class ObjectInstance(InstanceInfo):
    """An instance of a class split with its name, the identity object id it came from (-1 for components) and
    its source ("identity" | "components")."""

    name: str = ""
    object_id: int = -1
    source: str = "identity"

    def to_dict(self) -> dict:
        return super().to_dict() | {"name": self.name, "object_id": int(self.object_id), "source": self.source}


def object_classes(object_ids: np.ndarray, class_ids: np.ndarray) -> dict[int, int]:
    """{object id: majority class} over elements with both known (ties -> lowest class id)."""
    o = np.asarray(object_ids, np.int64)
    c = np.asarray(class_ids, np.int64)
    ok = (o >= 0) & (c >= 0)
    if not ok.any():
        return {}
    o, c = o[ok], c[ok]
    pairs, counts = np.unique(np.stack([o, c], 1), axis=0, return_counts=True)
    best: dict[int, tuple[int, int]] = {}
    for (oi, ci), n in zip(pairs.tolist(), counts.tolist()):
        if oi not in best or n > best[oi][0] or (n == best[oi][0] and ci < best[oi][1]):
            best[oi] = (n, ci)
    return {k: v[1] for k, v in best.items()}


def _fill_nearest(positions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Copy each unlabelled (-1) element's label from its nearest labelled element."""
    out = labels.copy()
    have = out >= 0
    if have.all() or not have.any():
        return out
    _, j = cKDTree(positions[have]).query(positions[~have], k=1)
    out[~have] = out[have][j]
    return out


def _owned_by(obj: np.ndarray, owner: dict[int, int], class_id: int) -> np.ndarray:
    """bool per element: its object id's class (``owner``) is ``class_id``."""
    if not len(obj) or not owner:
        return np.zeros(len(obj), bool)
    lut = np.full(max(max(owner), int(obj.max())) + 2, -2, np.int64)
    for o, c in owner.items():
        lut[o] = c
    return (obj >= 0) & (lut[np.where(obj >= 0, obj, len(lut) - 1)] == class_id)


def split_by_identity(
    mesh: TriMesh | None,
    points: SemanticPoints | dict | None,
    mesh_object: np.ndarray | None,
    points_object: np.ndarray | None,
    *,
    min_instance_points: int = 50,
    min_instance_faces: int | None = None,
    instance_radius: float | None = None,
    face_rule: str = "majority",
    min_share: float = 0.02,
) -> list[ClassSplit]:
    """Class splits whose instances come from per-vertex / per-point object ids (module docstring).

    ``mesh_object`` int [V] (object id per mesh vertex, -1 unknown) goes with ``mesh`` (which must carry
    ``vertex_attrs["class_id"]``), ``points_object`` int [N] with ``points``. Either pair may be None.
    """
    if min_instance_faces is None:
        min_instance_faces = min_instance_points
    if points is not None:
        points = as_semantic_points(points)
    if mesh is not None:
        if mesh_object is None or np.asarray(mesh_object).shape != (mesh.vertices.shape[0],):
            raise ValueError(f"split_by_identity: mesh_object must be [V]={mesh.vertices.shape[0]}, got "
                             f"{None if mesh_object is None else np.asarray(mesh_object).shape}")
        mesh = TriMesh(mesh.vertices, mesh.faces, mesh.colors,
                       dict(mesh.vertex_attrs, object_id=np.asarray(mesh_object, np.int32)))
    if points is not None and (points_object is None or np.asarray(points_object).shape != (len(points),)):
        raise ValueError(f"split_by_identity: points_object must be [N]={len(points)}, got "
                         f"{None if points_object is None else np.asarray(points_object).shape}")
    base = split_by_class(mesh, points, min_instance_points=min_instance_points,
                          min_instance_faces=min_instance_faces, instance_radius=instance_radius, face_rule=face_rule)
    # one class per object id: over the mesh vertices when there is a mesh (their ids come from the depth-tested vote
    # of rendered object maps), else over the points
    if mesh is not None:
        owner = object_classes(np.asarray(mesh_object, np.int64), np.asarray(mesh.vertex_attrs["class_id"], np.int64))
    elif points is not None:
        owner = object_classes(np.asarray(points_object, np.int64), points.class_id.astype(np.int64))
    else:
        owner = {}

    out = []
    for sp in base:
        has_faces = sp.mesh is not None and sp.mesh.faces.shape[0] > 0
        nv = 0 if sp.mesh is None else sp.mesh.vertices.shape[0]
        m_obj = None if sp.mesh is None else np.asarray(sp.mesh.vertex_attrs["object_id"], np.int64)
        p_obj = None
        if sp.points is not None:
            p_obj = np.asarray(points_object, np.int64)[points.class_id == sp.class_id]
        parts = [a for a in (m_obj, p_obj) if a is not None]
        obj = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        cand = np.where(_owned_by(obj, owner, sp.class_id), obj, -1)
        if has_faces:  # the mesh decides (what the artist sees); points follow their nearest vertex
            cand[nv:] = -1
            fo = cand[:nv][sp.mesh.faces[:, 0]]
            u, c = np.unique(fo[fo >= 0], return_counts=True)
            size, total, floor_ = dict(zip(u.tolist(), c.tolist())), sp.mesh.faces.shape[0], min_instance_faces
        else:
            u, c = np.unique(cand[nv:][cand[nv:] >= 0], return_counts=True)
            size, total, floor_ = dict(zip(u.tolist(), c.tolist())), max(len(cand) - nv, 1), min_instance_points
        kept = [o for o in sorted(size) if size[o] >= floor_ and size[o] >= min_share * total]
        if not kept:
            # fallback: connected components (already computed by split_by_class)
            sp.instances = [ObjectInstance(i.id, i.n_points, i.n_faces, instance_name(sp.name, i.id), -1, "components")
                            for i in sp.instances]
            if sp.mesh is not None:
                sp.mesh.vertex_attrs.pop("object_id", None)
            out.append(sp)
            continue
        lab = np.where(np.isin(cand, kept), cand, -1)
        pos = np.concatenate([a for a in (None if sp.mesh is None else sp.mesh.vertices.astype(np.float64),
                                          None if sp.points is None else sp.points.positions.astype(np.float64))
                              if a is not None])
        lab = _fill_nearest(pos, lab)
        f_cnt = {o: 0 for o in kept}
        p_cnt = {o: 0 for o in kept}
        if has_faces:
            u, c = np.unique(lab[:nv][sp.mesh.faces[:, 0]], return_counts=True)
            f_cnt.update(dict(zip(u.tolist(), c.tolist())))
        if sp.points is not None:
            u, c = np.unique(lab[nv:], return_counts=True)
            p_cnt.update(dict(zip(u.tolist(), c.tolist())))
        order = sorted(kept, key=lambda o: (-(f_cnt[o] + p_cnt[o]), o))
        lut = np.full(max(kept) + 2, -1, np.int32)
        for i, o in enumerate(order):
            lut[o] = i
        inst = lut[np.where(lab >= 0, lab, len(lut) - 1)]
        sp.instances = [ObjectInstance(i, int(p_cnt[o]), int(f_cnt[o]), instance_name(sp.name, i), int(o), "identity")
                        for i, o in enumerate(order)]
        if sp.mesh is not None:
            sp.mesh_instance = inst[:nv]
            sp.mesh.vertex_attrs.pop("object_id", None)
        if sp.points is not None:
            sp.points_instance = inst[nv:]
        out.append(sp)
    return out


# ------------------------------------------------------------------------------------------- editing by instance
def select_gaussians_by_object(object_probs, target_object_ids: Sequence[int], threshold: float | None = 0.3,
                               mode: str = "extract") -> np.ndarray:
    """Gaussian Grouping's object selection -> bool keep-mask [N] from per-Gaussian object probabilities [N,K].

    A Gaussian is selected when its argmax object is a target, or (``threshold`` given) when its summed probability
    of the targets exceeds ``threshold`` (the reference's removal rule, 0.3). mode="extract" keeps the selected,
    mode="remove" keeps the rest.
    """
    if mode not in ("extract", "remove"):
        raise ValueError(f"select_gaussians_by_object: mode must be 'extract' or 'remove', got {mode!r}")
    p = np.asarray(object_probs, np.float64)
    if p.ndim != 2:
        raise ValueError(f"select_gaussians_by_object: object_probs must be [N,K], got {p.shape}")
    t = sorted({int(x) for x in target_object_ids})
    if not t or t[0] < 0 or t[-1] >= p.shape[1]:
        raise ValueError(f"select_gaussians_by_object: target ids must be a non-empty subset of 0..{p.shape[1] - 1}, got {t}")
    hit = np.isin(p.argmax(axis=1), t)
    if threshold is not None:
        hit |= p[:, t].sum(axis=1) > threshold
    return hit if mode == "extract" else ~hit


def objects_of_instances(splits: Sequence[ClassSplit], targets: Sequence[tuple[int, int]]) -> list[int]:
    """Identity object ids of the (class id, instance index) pairs ``targets`` (components-only instances have
    none and raise)."""
    by = {(sp.class_id, i.id): i for sp in splits for i in sp.instances}
    out = []
    for key in targets:
        inst = by.get((int(key[0]), int(key[1])))
        if inst is None:
            raise ValueError(f"objects_of_instances: no instance {key[1]} in class {key[0]}")
        oid = getattr(inst, "object_id", -1)
        if oid < 0:
            raise ValueError(f"objects_of_instances: instance {key} comes from connected components, not identities")
        out.append(int(oid))
    return out


def filter_mesh_by_instance(mesh: TriMesh, vertex_instance: np.ndarray, targets: Sequence[int],
                            mode: str = "extract") -> TriMesh:
    """Keep (extract) or drop (remove) the vertices whose instance / object id is in ``targets``; faces survive when
    all 3 vertices do; attributes carried over (:func:`~aligngs.extract.splits.submesh`)."""
    if mode not in ("extract", "remove"):
        raise ValueError(f"filter_mesh_by_instance: mode must be 'extract' or 'remove', got {mode!r}")
    vi = np.asarray(vertex_instance)
    if vi.shape != (mesh.vertices.shape[0],):
        raise ValueError(f"filter_mesh_by_instance: vertex_instance must be [V]={mesh.vertices.shape[0]}, got {vi.shape}")
    hit = np.isin(vi, list(targets))
    keep_v = hit if mode == "extract" else ~hit
    sub, _ = submesh(mesh, keep_v[np.asarray(mesh.faces)].all(axis=1))
    return sub


def highlight_colors(colors: np.ndarray, selected: np.ndarray, color=(255, 200, 0), dim: float = 0.35) -> np.ndarray:
    """u8 [N,3]: the selected elements in ``color``, the others darkened to ``dim`` of their colour."""
    c = np.asarray(colors, np.float64)
    s = np.asarray(selected, bool)
    if c.shape != (s.shape[0], 3):
        raise ValueError(f"highlight_colors: colors must be [N,3] with N={s.shape[0]}, got {c.shape}")
    out = np.where(s[:, None], np.asarray(color, np.float64)[None], c * dim)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------- from a trained model
def object_splits(model, classifier, frames, renders, mesh: TriMesh | None, points: dict, keep: np.ndarray,
                  min_instance_points: int, extent: float):
    """(class splits from the identities, object id per Gaussian) for a trained model (``extract_outputs``' hook).

    Per Gaussian: the classifier's argmax. Per mesh vertex: the depth-tested majority of the object-id maps rendered
    at ``frames`` (``renders``: their :class:`~aligngs.extract.views.ViewRender` with depth / alpha). The points are
    the Gaussians selected by ``keep``.
    """
    import torch

    from ..render.view import ViewTensors
    from ..train.objects import render_channels
    from .labeling import label_vertices_by_views

    enc = model.params["identities"].detach()
    g_obj, _ = classifier.object_ids(enc)
    mesh_obj = None
    if mesh is not None:
        maps, confs = [], []
        with torch.no_grad():
            for f, r in zip(frames, renders):
                img = render_channels(model, ViewTensors.of(f.camera, model.device), ["identities"])["identities"]
                prob = torch.softmax(classifier(img), dim=0)
                c, i = prob.max(dim=0)
                lab = i.int().cpu().numpy()
                lab[r.alpha < 0.5] = -1
                maps.append(lab)
                confs.append(c.cpu().numpy())
        mesh_obj, _ = label_vertices_by_views(mesh.vertices, [f.camera for f in frames], maps,
                                              [r.depth for r in renders], confs, max(0.02 * extent, 1e-3),
                                              num_classes=classifier.num_objects)
    sp = split_by_identity(mesh, points, mesh_obj, g_obj[keep] if points is not None else None,
                           min_instance_points=min_instance_points)
    return sp, g_obj
