"""View-consistent object-id maps for the identity encodings (Gaussian Grouping needs masks that agree across views).

Two sources, picked by :attr:`aligngs.config.IdentityConfig.masks`:

``provided``
    The input's own instance maps (``Frame.extras["instance"]``, e.g. the synthetic rooms' ``instances/*.png``,
    0 = none). Their ids are already global, so they are only re-numbered to 1..M in increasing id order
    (:func:`provided_object_maps`).

``associated``
    No instance maps: 2-D segments are taken from the semantic teacher's label map of each view (connected
    components of each class, at least ``min_area`` pixels; the teacher's per-query masks are not kept by the
    prior cache, so a class's touching objects form one segment in that view) and matched ACROSS views in 3-D
    (:func:`associate_segments`): every segment pixel with a depth is back-projected with the view's camera into
    a voxel grid (voxel = ``voxel`` scene units); two segments of the same class in different views are the same
    object when their voxel sets overlap by at least ``min_overlap`` of the smaller set (overlap coefficient);
    matches are merged transitively (union-find). The depth is the sensor depth where the input has it, else the
    depth rendered from the current (initial) Gaussians -- the caller passes it. Gaussian Grouping uses a video
    tracker (DEVA) for this step; the 3-D overlap plays the tracker's part for unordered photo sets.

Objects are numbered 1..M by decreasing total pixel area; more than ``max_objects - 1`` objects keep the largest
and map the rest to 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from ..data.types import Camera, Frame

__all__ = ["ObjectMaps", "provided_object_maps", "label_segments", "associate_segments", "backproject_voxels"]


@dataclass
class ObjectMaps:
    """Per-view object-id maps (int64 [H,W], 0 = no object) and what each id came from."""

    maps: list[np.ndarray]
    num_objects: int  # M: ids 1..M are used
    source: str  # "provided" | "associated"
    origin: dict[int, int]  # object id -> the input's instance id (provided) or the object's class (associated)


def provided_object_maps(frames: Sequence[Frame], max_objects: int = 256) -> ObjectMaps | None:
    """Object maps from ``Frame.extras["instance"]`` when EVERY frame has one, else None."""
    raw = [f.extras.get("instance") for f in frames]
    if not raw or any(r is None for r in raw):
        return None
    ids = np.unique(np.concatenate([np.unique(np.asarray(r)) for r in raw]))
    ids = ids[ids > 0]
    if len(ids) >= max_objects:
        raise ValueError(f"instance maps hold {len(ids)} distinct instance ids; identity.max_instances={max_objects} "
                         f"allows at most {max_objects - 1} (raise identity.max_instances)")
    lut = {int(v): i + 1 for i, v in enumerate(ids)}
    maps = []
    for f, r in zip(frames, raw):
        r = np.asarray(r).astype(np.int64)
        if f.image is not None and r.shape != f.image.shape[:2]:
            raise ValueError(f"frame {f.name!r}: instance map {r.shape} does not match the image {f.image.shape[:2]}")
        out = np.zeros(r.shape, np.int64)
        for v, k in lut.items():
            out[r == v] = k
        maps.append(out)
    return ObjectMaps(maps, len(ids), "provided", {k: v for v, k in lut.items()})


def label_segments(labels: np.ndarray, min_area: int = 64) -> tuple[np.ndarray, list[int]]:
    """2-D segments of a label map [H,W] (-1 = unknown): connected components (4-connected) of each class with at
    least ``min_area`` pixels. Returns (segment map int64 [H,W], 0 = none / 1..S, class of segment s at [s-1])."""
    lab = np.asarray(labels)
    seg = np.zeros(lab.shape, np.int64)
    classes: list[int] = []
    for c in np.unique(lab[lab >= 0]):
        comps, n = ndimage.label(lab == c)
        if n == 0:
            continue
        area = np.bincount(comps.ravel(), minlength=n + 1)
        for k in np.nonzero(area[1:] >= min_area)[0] + 1:
            classes.append(int(c))
            seg[comps == k] = len(classes)
    return seg, classes


def backproject_voxels(mask: np.ndarray, depth: np.ndarray, camera: Camera, voxel: float) -> np.ndarray:
    """Unique voxel keys (int64 [V,3]) of the pixels of ``mask`` with depth > 0 (planar z-depth, OpenCV camera)."""
    rows, cols = np.nonzero(mask & (depth > 0))
    if len(rows) == 0:
        return np.zeros((0, 3), np.int64)
    z = depth[rows, cols].astype(np.float64)
    K = camera.K
    x = (cols - K[0, 2]) / K[0, 0] * z
    y = (rows - K[1, 2]) / K[1, 1] * z
    pc = np.stack([x, y, z], axis=1)
    pw = pc @ camera.c2w[:3, :3].T + camera.c2w[:3, 3]
    return np.unique(np.floor(pw / voxel).astype(np.int64), axis=0)


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def associate_segments(
    segments: Sequence[np.ndarray],
    segment_classes: Sequence[Sequence[int]],
    depths: Sequence[np.ndarray],
    cameras: Sequence[Camera],
    voxel: float,
    min_overlap: float = 0.25,
    max_objects: int = 256,
) -> ObjectMaps:
    """Match per-view segments across views by the overlap of their back-projected voxels (module docstring)."""
    n = len(segments)
    if not (len(segment_classes) == len(depths) == len(cameras) == n):
        raise ValueError("associate_segments: need one segment map, class list, depth map and camera per view")
    if not voxel > 0:
        raise ValueError(f"associate_segments: voxel must be > 0, got {voxel}")
    nodes: list[tuple[int, int, int]] = []  # (view, segment id, class)
    keys: list[set] = []
    areas: list[int] = []
    for v in range(n):
        seg = np.asarray(segments[v])
        dep = np.asarray(depths[v], np.float64)
        if dep.shape != seg.shape:
            raise ValueError(f"associate_segments: view {v}: depth {dep.shape} != segment map {seg.shape}")
        for s, c in enumerate(segment_classes[v], start=1):
            m = seg == s
            vox = backproject_voxels(m, dep, cameras[v], voxel)
            nodes.append((v, s, int(c)))
            keys.append(set(map(tuple, vox.tolist())))
            areas.append(int(m.sum()))
    parent = list(range(len(nodes)))
    for a in range(len(nodes)):
        for b in range(a + 1, len(nodes)):
            if nodes[a][0] == nodes[b][0] or nodes[a][2] != nodes[b][2]:
                continue
            ka, kb = keys[a], keys[b]
            small = min(len(ka), len(kb))
            if small == 0:
                continue
            if len(ka & kb) >= min_overlap * small:
                ra, rb = _find(parent, a), _find(parent, b)
                if ra != rb:
                    parent[rb] = ra
    roots: dict[int, int] = {}
    for i in range(len(nodes)):
        r = _find(parent, i)
        roots[r] = roots.get(r, 0) + areas[i]
    order = sorted(roots, key=lambda r: (-roots[r], r))[: max_objects - 1]
    obj = {r: i + 1 for i, r in enumerate(order)}
    maps = [np.zeros(np.asarray(s).shape, np.int64) for s in segments]
    origin: dict[int, int] = {}
    for i, (v, s, c) in enumerate(nodes):
        k = obj.get(_find(parent, i), 0)
        if k:
            maps[v][np.asarray(segments[v]) == s] = k
            origin[k] = c
    return ObjectMaps(maps, len(order), "associated", origin)
