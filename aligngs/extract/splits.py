"""Split a labelled mesh and point cloud into one part per class, with 3-D instances inside each class.

Per present class (ADE20K id >= 0) a :class:`ClassSplit` holds the sub-mesh of the faces of that class
(re-indexed), the points of that class, and an instance id per sub-mesh vertex and per point.

Instances are connected components of one graph per class whose nodes are the class's sub-mesh vertices
and points, linked by (a) mesh edges (faces connect their 3 vertices), (b) point pairs closer than
``instance_radius`` (scipy ``cKDTree.query_pairs`` + ``scipy.sparse.csgraph.connected_components``), and
(c) each point to its nearest sub-mesh vertex when that is closer than ``instance_radius`` — so a chair's
mesh piece and its points share one instance id, and two separated chairs get two. Components with fewer
than ``min_instance_points`` points AND fewer than ``min_instance_faces`` faces are noise: their elements
get instance -1 (kept in the class part unless ``drop_small``) and are not listed. Instance ids are
0..K-1 by decreasing size (faces + points).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from aligngs.data.types import Camera, TriMesh
from aligngs.wire import ResultPart
from aligngs.priors.ade20k import CLASS_NAMES, NUM_CLASSES, PALETTE, colorize
from aligngs.extract.labeling import SemanticPoints, as_semantic_points

__all__ = [
    "InstanceInfo",
    "ClassSplit",
    "submesh",
    "face_classes",
    "default_instance_radius",
    "split_by_class",
    "class_display",
    "mesh_colors",
    "to_result_parts",
]


@dataclass
class InstanceInfo:
    id: int
    n_points: int
    n_faces: int

    def to_dict(self) -> dict:
        return {"id": int(self.id), "n_points": int(self.n_points), "n_faces": int(self.n_faces)}


@dataclass
class ClassSplit:
    class_id: int
    name: str
    color: tuple[int, int, int]  # ADE20K palette, 0..255
    mesh: TriMesh | None = None  # faces of this class, re-indexed; vertex_attrs carried over
    mesh_instance: np.ndarray | None = None  # i32 [n_vertices of the sub-mesh], -1 = none
    points: SemanticPoints | None = None
    points_instance: np.ndarray | None = None  # i32 [n_points], -1 = none
    instances: list[InstanceInfo] = field(default_factory=list)

    @property
    def n_points(self) -> int:
        return 0 if self.points is None else len(self.points)

    @property
    def n_faces(self) -> int:
        return 0 if self.mesh is None else int(self.mesh.faces.shape[0])

    @property
    def n_vertices(self) -> int:
        return 0 if self.mesh is None else int(self.mesh.vertices.shape[0])


def class_display(cid: int) -> tuple[str, tuple[int, int, int]]:
    """(name, palette colour) of an ADE20K id; ids beyond the table get a generic name and grey."""
    if 0 <= cid < NUM_CLASSES:
        return CLASS_NAMES[cid], tuple(int(c) for c in PALETTE[cid])
    return f"class_{cid}", (128, 128, 128)


def submesh(mesh: TriMesh, face_mask: np.ndarray) -> tuple[TriMesh, np.ndarray]:
    """The faces selected by ``face_mask`` (bool [M] or an index array) with only their vertices, re-indexed.

    Colours and every per-vertex array in ``vertex_attrs`` are carried over. Returns (sub-mesh, old vertex
    index of each new vertex).
    """
    faces = np.asarray(mesh.faces)
    sel = faces[face_mask]
    used, inverse = np.unique(sel.reshape(-1), return_inverse=True)
    new_faces = inverse.reshape(-1, 3).astype(np.int32)
    colors = None if mesh.colors is None else np.asarray(mesh.colors)[used]
    attrs = {}
    for k, a in mesh.vertex_attrs.items():
        a = np.asarray(a)
        if a.shape[:1] == (mesh.vertices.shape[0],):
            attrs[k] = a[used]
    return TriMesh(np.asarray(mesh.vertices, dtype=np.float32)[used], new_faces, colors, attrs), used


def face_classes(faces: np.ndarray, vertex_class: np.ndarray, rule: str = "majority") -> np.ndarray:
    """Class per face from its vertices' classes: int32 [M], -1 = none.

    rule="all": the 3 vertices share one known class. rule="majority": a known class held by at least 2 of
    the 3 vertices (a face whose 3 vertices all differ, or whose majority is unknown, gets -1).
    """
    if rule not in ("majority", "all"):
        raise ValueError(f"face_classes: rule must be 'majority' or 'all', got {rule!r}")
    c = np.asarray(vertex_class)[np.asarray(faces)]  # [M,3]
    a, b, d = c[:, 0], c[:, 1], c[:, 2]
    if rule == "all":
        out = np.where((a == b) & (b == d), a, -1)
    else:
        out = np.where((a == b) | (a == d), a, np.where(b == d, b, -1))
    return np.where(out >= 0, out, -1).astype(np.int32)


def default_instance_radius(positions: np.ndarray, factor: float = 3.0, sample: int = 20000, seed: int = 0) -> float:
    """``factor`` x the median nearest-neighbour distance of (a sample of) the points; 0 for < 2 points."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.shape[0] < 2:
        return 0.0
    tree = cKDTree(pos)
    q = pos
    if pos.shape[0] > sample:
        q = pos[np.random.default_rng(seed).choice(pos.shape[0], sample, replace=False)]
    d, _ = tree.query(q, k=2)
    return float(factor * np.median(d[:, 1]))


def _components(
    vertices: np.ndarray | None,
    faces: np.ndarray | None,
    points: np.ndarray | None,
    radius: float,
) -> np.ndarray:
    """Component label per node (sub-mesh vertices first, then points)."""
    nv = 0 if vertices is None else vertices.shape[0]
    npt = 0 if points is None else points.shape[0]
    rows, cols = [], []
    if faces is not None and faces.shape[0]:
        rows += [faces[:, 0], faces[:, 1]]
        cols += [faces[:, 1], faces[:, 2]]
    if npt:
        ptree = cKDTree(points)
        pairs = ptree.query_pairs(radius, output_type="ndarray")
        if pairs.shape[0]:
            rows.append(nv + pairs[:, 0])
            cols.append(nv + pairs[:, 1])
        if nv:
            d, j = cKDTree(vertices).query(points, k=1, distance_upper_bound=radius)
            hit = np.isfinite(d)
            rows.append(nv + np.nonzero(hit)[0])
            cols.append(j[hit])
    n = nv + npt
    if rows:
        r = np.concatenate(rows).astype(np.int64)
        c = np.concatenate(cols).astype(np.int64)
    else:
        r = c = np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(r.shape[0], np.int8), (r, c)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def split_by_class(
    mesh: TriMesh | None = None,
    points: SemanticPoints | dict | None = None,
    *,
    min_instance_points: int = 50,
    min_instance_faces: int | None = None,
    instance_radius: float | None = None,
    face_rule: str = "majority",
    drop_small: bool = False,
) -> list[ClassSplit]:
    """One :class:`ClassSplit` per class present in ``mesh`` (``vertex_attrs["class_id"]``) or ``points``
    (a :class:`SemanticPoints` or a mapping accepted by :func:`~aligngs.extract.labeling.as_semantic_points`).

    ``min_instance_faces`` defaults to ``min_instance_points``; ``instance_radius`` (scene units) defaults to
    :func:`default_instance_radius` of all labelled points (3 x their median spacing). Face classes follow
    :func:`face_classes` with ``face_rule``. ``drop_small`` removes the elements of too-small components
    instead of keeping them with instance -1. Sorted by class id.
    """
    if min_instance_faces is None:
        min_instance_faces = min_instance_points
    if points is not None:
        points = as_semantic_points(points)
    fcls = None
    if mesh is not None:
        if "class_id" not in mesh.vertex_attrs:
            raise ValueError("split_by_class: mesh.vertex_attrs has no 'class_id' (label the vertices first)")
        vcls = np.asarray(mesh.vertex_attrs["class_id"])
        if vcls.shape != (mesh.vertices.shape[0],):
            raise ValueError(f"split_by_class: mesh class_id must be [V]={mesh.vertices.shape[0]}, got {vcls.shape}")
        fcls = face_classes(mesh.faces, vcls, face_rule)
    present = set()
    if fcls is not None:
        present |= set(np.unique(fcls[fcls >= 0]).tolist())
    if points is not None and len(points):
        present |= set(np.unique(points.class_id[points.class_id >= 0]).tolist())
    if instance_radius is None:
        instance_radius = 0.0
        if points is not None:
            instance_radius = default_instance_radius(points.positions[points.class_id >= 0])
    if instance_radius < 0:
        raise ValueError(f"split_by_class: instance_radius must be >= 0, got {instance_radius}")

    splits = []
    for cid in sorted(int(c) for c in present):
        name, color = class_display(cid)
        sub, sub_pts = None, None
        if fcls is not None and (fcls == cid).any():
            sub, _ = submesh(mesh, fcls == cid)
        if points is not None:
            sel = points.class_id == cid
            if sel.any():
                sub_pts = points.subset(sel)
        nv = 0 if sub is None else sub.vertices.shape[0]
        labels = _components(
            None if sub is None else sub.vertices.astype(np.float64),
            None if sub is None else sub.faces,
            None if sub_pts is None else sub_pts.positions.astype(np.float64),
            instance_radius,
        )
        ncomp = int(labels.max()) + 1 if labels.size else 0
        n_faces = np.bincount(labels[sub.faces[:, 0]], minlength=ncomp) if sub is not None else np.zeros(ncomp, np.int64)
        n_pts = np.bincount(labels[nv:], minlength=ncomp) if sub_pts is not None else np.zeros(ncomp, np.int64)
        keep = (n_pts >= min_instance_points) | (n_faces >= min_instance_faces)
        kept = np.nonzero(keep)[0]
        order = kept[np.argsort(-(n_faces[kept] + n_pts[kept]), kind="stable")]
        remap = np.full(ncomp, -1, np.int32)
        remap[order] = np.arange(order.shape[0], dtype=np.int32)
        inst = remap[labels]
        instances = [InstanceInfo(i, int(n_pts[c]), int(n_faces[c])) for i, c in enumerate(order)]
        mesh_inst = None if sub is None else inst[:nv]
        pts_inst = None if sub_pts is None else inst[nv:]
        if drop_small:
            if sub is not None:
                good = mesh_inst[sub.faces[:, 0]] >= 0
                sub, used = submesh(sub, good) if good.any() else (None, None)
                mesh_inst = None if sub is None else mesh_inst[used]
            if sub_pts is not None:
                good = pts_inst >= 0
                sub_pts = sub_pts.subset(good) if good.any() else None
                pts_inst = None if sub_pts is None else pts_inst[good]
            if sub is None and sub_pts is None:
                continue
        splits.append(ClassSplit(cid, name, color, sub, mesh_inst, sub_pts, pts_inst, instances))
    return splits


def mesh_colors(mesh: TriMesh) -> np.ndarray:
    """u8 [V,3] vertex colours: the mesh's own, else its class palette colours, else light grey."""
    n = mesh.vertices.shape[0]
    if mesh.colors is not None:
        return np.ascontiguousarray(mesh.colors, dtype=np.uint8)
    if "class_id" in mesh.vertex_attrs:
        return colorize(np.asarray(mesh.vertex_attrs["class_id"]).astype(np.int64))
    return np.full((n, 3), 200, np.uint8)


def _part_name(split: ClassSplit) -> str:
    return f"class_{split.class_id:03d}_{split.name}"


def to_result_parts(
    mesh: TriMesh | None,
    points: SemanticPoints | dict | None,
    splits: list[ClassSplit],
    cameras: list[Camera] | None = None,
    camera_names: list[str] | None = None,
) -> list[ResultPart]:
    """The result parts of :mod:`aligngs.wire.results` for a labelled mesh, semantic points and class splits.

    - "mesh" (kind mesh): vertices f32[N,3], faces i32[M,3], colors u8[N,3] (:func:`mesh_colors`),
      class_id i32[N] when the mesh is labelled;
    - "semantic_points" (kind points): positions f32, colors u8, class_id i32, confidence f32;
    - "cameras" (kind cameras, only when ``cameras`` is given): c2w f32[V,4,4], K f32[V,3,3], size i32[V,2]
      (width, height); meta names;
    - one "class_<id>_<name>" (kind class) per split: meta {class_id, name, color [r,g,b], instances
      [{id, n_points, n_faces}], n_points, n_faces}; arrays mesh_vertices, mesh_faces, mesh_colors,
      mesh_instance (per sub-mesh vertex) and/or points_positions, points_colors, points_confidence,
      points_instance.
    """
    parts: list[ResultPart] = []
    if mesh is not None:
        arrays = {
            "vertices": np.ascontiguousarray(mesh.vertices, dtype=np.float32),
            "faces": np.ascontiguousarray(mesh.faces, dtype=np.int32),
            "colors": mesh_colors(mesh),
        }
        if "class_id" in mesh.vertex_attrs:
            arrays["class_id"] = np.ascontiguousarray(mesh.vertex_attrs["class_id"], dtype=np.int32)
        parts.append(ResultPart("mesh", "mesh", arrays))
    if points is not None:
        sp = as_semantic_points(points)
        parts.append(ResultPart("semantic_points", "points", {
            "positions": sp.positions, "colors": sp.colors, "class_id": sp.class_id, "confidence": sp.confidence,
        }))
    if cameras:
        if camera_names is not None and len(camera_names) != len(cameras):
            raise ValueError(f"to_result_parts: {len(camera_names)} camera names for {len(cameras)} cameras")
        parts.append(ResultPart("cameras", "cameras", {
            "c2w": np.stack([c.c2w for c in cameras]).astype(np.float32),
            "K": np.stack([c.K for c in cameras]).astype(np.float32),
            "size": np.array([[c.width, c.height] for c in cameras], np.int32),
        }, {"names": list(camera_names) if camera_names is not None else [f"view_{i:04d}" for i in range(len(cameras))]}))
    for sp in splits:
        arrays: dict[str, np.ndarray] = {}
        if sp.mesh is not None:
            arrays["mesh_vertices"] = np.ascontiguousarray(sp.mesh.vertices, dtype=np.float32)
            arrays["mesh_faces"] = np.ascontiguousarray(sp.mesh.faces, dtype=np.int32)
            arrays["mesh_colors"] = mesh_colors(sp.mesh)
            arrays["mesh_instance"] = np.ascontiguousarray(sp.mesh_instance, dtype=np.int32)
        if sp.points is not None:
            arrays["points_positions"] = sp.points.positions
            arrays["points_colors"] = sp.points.colors
            arrays["points_confidence"] = sp.points.confidence
            arrays["points_instance"] = np.ascontiguousarray(sp.points_instance, dtype=np.int32)
        meta = {
            "class_id": int(sp.class_id),
            "name": sp.name,
            "color": [int(c) for c in sp.color],
            "instances": [i.to_dict() for i in sp.instances],
            "n_points": sp.n_points,
            "n_faces": sp.n_faces,
        }
        parts.append(ResultPart(_part_name(sp), "class", arrays, meta))
    return parts
