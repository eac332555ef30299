"""Semantic files for the user: labelled mesh / point PLYs, per-class and per-instance PLYs, classes.json.

All PLY files go through :mod:`aligngs.export.ply` (binary little-endian, atomic). Layout under ``out``::

    mesh_semantic.ply        labelled mesh: colour = class palette, properties class_id (int), confidence
    points_semantic.ply      semantic points: colour = class palette, properties class_id, confidence
    classes.json             per class: id, name, colour, counts, instances, files (paths relative to out)
    classes/<id>_<name>/mesh.ply                  the class's faces (RGB colours, class_id, instance)
    classes/<id>_<name>/points.ply                the class's points (RGB colours, class_id, confidence, instance)
    classes/<id>_<name>/instance_<k>_mesh.ply     one file per instance (``per_instance``)
    classes/<id>_<name>/instance_<k>_points.ply

The pipeline writes the RGB-coloured ``mesh.ply`` / ``semantic_points.ply`` itself (with the same
properties); :func:`write_labelled_mesh_ply` / :func:`write_semantic_points_ply` produce either colouring.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from aligngs.data.types import TriMesh
from aligngs.export.ply import write_mesh_ply, write_points_ply
from aligngs.export.report import write_json_atomic
from aligngs.wire.names import safe_name
from aligngs.priors.ade20k import NUM_CLASSES, colorize
from aligngs.extract.labeling import SemanticPoints, as_semantic_points
from aligngs.extract.splits import ClassSplit, mesh_colors, submesh

__all__ = [
    "CLASSES_JSON_VERSION",
    "write_labelled_mesh_ply",
    "write_semantic_points_ply",
    "write_class_files",
    "classes_json",
    "export_semantic_files",
]

CLASSES_JSON_VERSION = 1


def _colors(kind: str, rgb: np.ndarray, class_id: np.ndarray | None, where: str) -> np.ndarray:
    if kind == "rgb":
        return rgb
    if kind == "class":
        if class_id is None:
            raise ValueError(f"{where}: color_by='class' needs class ids")
        return colorize(np.asarray(class_id).astype(np.int64))
    raise ValueError(f"{where}: color_by must be 'rgb' or 'class', got {kind!r}")


def write_labelled_mesh_ply(path, mesh: TriMesh, color_by: str = "rgb") -> Path:
    """Mesh PLY with vertex colours (the mesh's RGB, or its class palette with ``color_by='class'``) and every
    ``vertex_attrs`` entry (``class_id`` int32, ``confidence`` float32, ...) as a vertex property."""
    if "class_id" not in mesh.vertex_attrs:
        raise ValueError(f"write_labelled_mesh_ply({path}): mesh.vertex_attrs has no 'class_id'")
    cls = np.asarray(mesh.vertex_attrs["class_id"])
    colors = _colors(color_by, mesh_colors(mesh), cls, f"write_labelled_mesh_ply({path})")
    attrs = {k: np.asarray(v) for k, v in mesh.vertex_attrs.items()}
    attrs["class_id"] = cls.astype(np.int32)
    return write_mesh_ply(path, TriMesh(mesh.vertices, mesh.faces, colors, attrs))


def write_semantic_points_ply(path, points, color_by: str = "rgb", instance: np.ndarray | None = None) -> Path:
    """Point PLY: colours (RGB or class palette), ``class_id`` int32, ``confidence`` float32 (+ ``instance``)."""
    sp = as_semantic_points(points)
    attrs = {"class_id": sp.class_id, "confidence": sp.confidence}
    if instance is not None:
        attrs["instance"] = np.asarray(instance, dtype=np.int32)
    return write_points_ply(path, sp.positions, _colors(color_by, sp.colors, sp.class_id, f"write_semantic_points_ply({path})"), attrs)


def _class_dir(split: ClassSplit) -> str:
    return f"{split.class_id:03d}_{safe_name(split.name, default='class', strip='_')}"


def _class_mesh(split: ClassSplit, face_mask: np.ndarray | None = None) -> TriMesh:
    m = split.mesh
    attrs = dict(m.vertex_attrs)
    attrs["class_id"] = np.full(m.vertices.shape[0], split.class_id, np.int32)
    attrs["instance"] = np.asarray(split.mesh_instance, dtype=np.int32)
    full = TriMesh(m.vertices, m.faces, mesh_colors(m), attrs)
    if face_mask is None:
        return full
    sub, _ = submesh(full, face_mask)
    return sub


def write_class_files(out, splits: list[ClassSplit], per_instance: bool = True) -> dict[int, dict]:
    """Per-class (and per-instance) PLYs under ``out/classes``; returns {class_id: {"mesh": rel, "points": rel,
    "instances": {k: {"mesh": rel, "points": rel}}}} with paths relative to ``out``."""
    out = Path(out)
    written: dict[int, dict] = {}
    for sp in splits:
        rel = Path("classes") / _class_dir(sp)
        entry: dict = {"instances": {}}
        if sp.mesh is not None and sp.n_faces:
            write_mesh_ply(out / rel / "mesh.ply", _class_mesh(sp))
            entry["mesh"] = str(rel / "mesh.ply")
        if sp.points is not None and sp.n_points:
            write_semantic_points_ply(out / rel / "points.ply", sp.points, instance=sp.points_instance)
            entry["points"] = str(rel / "points.ply")
        if per_instance:
            for inst in sp.instances:
                files = {}
                if sp.mesh is not None and inst.n_faces:
                    fmask = np.asarray(sp.mesh_instance)[sp.mesh.faces[:, 0]] == inst.id
                    name = rel / f"instance_{inst.id:03d}_mesh.ply"
                    write_mesh_ply(out / name, _class_mesh(sp, fmask))
                    files["mesh"] = str(name)
                if sp.points is not None and inst.n_points:
                    pmask = np.asarray(sp.points_instance) == inst.id
                    name = rel / f"instance_{inst.id:03d}_points.ply"
                    write_semantic_points_ply(out / name, sp.points.subset(pmask),
                                              instance=np.asarray(sp.points_instance)[pmask])
                    files["points"] = str(name)
                entry["instances"][inst.id] = files
        written[sp.class_id] = entry
    return written


def classes_json(splits: list[ClassSplit], files: dict[int, dict] | None = None) -> dict:
    """The classes.json document: {"version", "num_classes", "classes": [{id, name, color, n_points, n_faces,
    n_vertices, instances: [{id, n_points, n_faces, files}], files}]} (files only when given)."""
    files = files or {}
    classes = []
    for sp in splits:
        f = files.get(sp.class_id, {})
        inst_files = f.get("instances", {})
        classes.append({
            "id": int(sp.class_id),
            "name": sp.name,
            "color": [int(c) for c in sp.color],
            "n_points": sp.n_points,
            "n_faces": sp.n_faces,
            "n_vertices": sp.n_vertices,
            "n_instances": len(sp.instances),
            "instances": [dict(i.to_dict(), files=inst_files.get(i.id, {})) for i in sp.instances],
            "files": {k: v for k, v in f.items() if k in ("mesh", "points")},
        })
    return {"version": CLASSES_JSON_VERSION, "num_classes": NUM_CLASSES, "classes": classes}


def export_semantic_files(
    out,
    mesh: TriMesh | None,
    points: SemanticPoints | dict | None,
    splits: list[ClassSplit],
    *,
    per_instance: bool = True,
) -> dict[str, str]:
    """Write the class-coloured labelled mesh / points, the per-class (per-instance) PLYs and classes.json.

    Returns {role: path relative to ``out``}: "mesh_semantic", "points_semantic" (when given and labelled),
    "classes" (classes.json) and "class_files" (the classes/ folder, when any split exists).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    roles: dict[str, str] = {}
    if mesh is not None and "class_id" in mesh.vertex_attrs:
        write_labelled_mesh_ply(out / "mesh_semantic.ply", mesh, color_by="class")
        roles["mesh_semantic"] = "mesh_semantic.ply"
    if points is not None:
        sp = as_semantic_points(points)
        write_semantic_points_ply(out / "points_semantic.ply", sp, color_by="class")
        roles["points_semantic"] = "points_semantic.ply"
    files = write_class_files(out, splits, per_instance=per_instance)
    if splits:
        roles["class_files"] = "classes"
    write_json_atomic(out / "classes.json", classes_json(splits, files))
    roles["classes"] = "classes.json"
    return roles
