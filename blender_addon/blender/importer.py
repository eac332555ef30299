"""Build Blender data from an AlignGS result (manifest + parts), fast and in small steps.

Scene layout (one collection tree per import)::

    AlignGS · <scene>
        Mesh               mesh: POINT colour attribute "Col" (FLOAT_COLOR) + INT "class_id", colour material
        Semantic Points    loose-vertex mesh with "Col", "class_id", "confidence", "radius";
                           a native point cloud on Blender >= 5.0 (object.convert(target='POINTCLOUD'))
        Classes
            <class name>   one collection per class: "<name>" / "<name>.001" ... (mesh, one object per instance)
                           and "<name> · points" / "<name>.001 · points" (points); when the class part names
                           its instances (meta.instances[].name, e.g. "chair_0" from the identity encodings),
                           one child collection per instance instead, "<instance name>", holding the instance's
                           mesh "<instance name>" and points "<instance name> · points" (its own toggle)
        Cameras            one camera per view (OpenCV c2w -> Blender; intrinsics as lens + shift)

Coordinates: see ``geometry`` (the manifest's ``up`` is rotated to +Z by the minimal rotation, baked into the data).
All geometry goes through ``foreach_set``; no per-element Python loops.

``SceneImport`` builds datablocks part by part (``add_part`` validates, ``step(budget_s)`` builds for about that
long) and ``finish()`` creates the collections and links everything in one go. It pushes no undo step: the caller
does (an operator with the UNDO flag, or ``ed.undo_push`` after a timer-driven import).
``import_parts`` and ``import_result_folder`` are the blocking one-call forms.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import bpy
import numpy as np
from mathutils import Matrix

from .._vendor.wire import CHECKED_KINDS, check_manifest, check_part, read_parts
from ..core import geometry as geo
from ..core.errors import StateError

log = logging.getLogger(__name__)

COLOR_ATTR = "Col"
MESH_MATERIAL = "AlignGS Colors"
POINT_MATERIAL = "AlignGS Point Colors"
ROOT_PREFIX = "AlignGS · "
ROOT_TAG = "aligngs_root"  # custom property on the root collection: the result's scene name
HAS_POINTCLOUD_CONVERT = bpy.app.version >= (5, 0, 0)


@dataclass
class ImportOptions:
    collection_name: str | None = None  # default "AlignGS · <manifest scene>"
    point_radius: float | None = None  # None: from the point density
    native_pointcloud: bool | None = None  # None: on Blender >= 5.0
    set_render_resolution: bool = True  # set the scene's render size to the cameras' image size


@dataclass
class ClassSummary:
    class_id: int
    name: str
    color: tuple  # sRGB 0..1
    n_points: int
    n_faces: int
    instances: int
    collection: object = None  # bpy.types.Collection after finish()
    instance_names: dict = field(default_factory=dict)  # instance id -> name (named instances get a collection)
    instance_collections: dict = field(default_factory=dict)  # instance id -> bpy.types.Collection after finish()


@dataclass
class ImportResult:
    collection: object
    objects: list
    classes: list[ClassSummary]
    n_points: int
    n_faces: int
    n_cameras: int
    warnings: list[str] = field(default_factory=list)
    build_s: float = 0.0
    link_s: float = 0.0


@dataclass
class _Pending:
    obj: object
    where: str  # "root", "cameras", "class:<index>" or "class:<index>:<instance id>" (a named instance)
    name: str  # intended name (restored at link time, once a replaced import is gone)


def _set_attr(data, name: str, kind: str, prop: str, values: np.ndarray, domain: str = "POINT"):
    attr = data.attributes.new(name, kind, domain)
    attr.data.foreach_set(prop, values)
    return attr


def _new_mesh(name: str, vertices: np.ndarray, faces: np.ndarray | None) -> "bpy.types.Mesh":
    mesh = bpy.data.meshes.new(name)
    n = len(vertices)
    mesh.vertices.add(n)
    if n:
        mesh.attributes["position"].data.foreach_set("vector", np.ascontiguousarray(vertices, np.float32).reshape(-1))
    if faces is not None and len(faces):
        m = len(faces)
        mesh.loops.add(3 * m)
        mesh.attributes[".corner_vert"].data.foreach_set("value", np.ascontiguousarray(faces, np.int32).reshape(-1))
        mesh.polygons.add(m)
        mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * m, 3, dtype=np.int32))
    mesh.update()
    return mesh


def _add_colors(data, colors: np.ndarray | None, n: int) -> None:
    if colors is None:
        colors = np.full((n, 3), 200, np.uint8)
    attr = data.color_attributes.new(COLOR_ATTR, "FLOAT_COLOR", "POINT")
    attr.data.foreach_set("color", geo.srgb8_to_linear_rgba(colors))
    if hasattr(data.color_attributes, "active_color_name"):
        data.color_attributes.active_color_name = COLOR_ATTR
        data.color_attributes.default_color_name = COLOR_ATTR


def _mesh_material() -> "bpy.types.Material":
    mat = bpy.data.materials.get(MESH_MATERIAL)
    if mat is not None and mat.get("aligngs_material") == "mesh":
        return mat
    mat = bpy.data.materials.new(MESH_MATERIAL)
    mat["aligngs_material"] = "mesh"
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    nt = mat.node_tree
    bsdf = next(n for n in nt.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    col = nt.nodes.new("ShaderNodeVertexColor")  # the "Color Attribute" node
    col.layer_name = COLOR_ATTR
    col.location = (bsdf.location.x - 300, bsdf.location.y)
    nt.links.new(col.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = 0.8
    return mat


def _point_material() -> "bpy.types.Material":
    mat = bpy.data.materials.get(POINT_MATERIAL)
    if mat is not None and mat.get("aligngs_material") == "points":
        return mat
    mat = bpy.data.materials.new(POINT_MATERIAL)
    mat["aligngs_material"] = "points"
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    nt = mat.node_tree
    bsdf = next(n for n in nt.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    attr = nt.nodes.new("ShaderNodeAttribute")  # works on meshes and point clouds alike
    attr.attribute_type = "GEOMETRY"
    attr.attribute_name = COLOR_ATTR
    attr.location = (bsdf.location.x - 300, bsdf.location.y)
    nt.links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = 0.9
    return mat


def _to_pointcloud(obj) -> None:
    """Convert a loose-vertex mesh object to a native point cloud (Blender >= 5.0) in a throw-away scene."""
    tmp = bpy.data.scenes.new("AlignGS convert")
    try:
        tmp.collection.objects.link(obj)
        with bpy.context.temp_override(scene=tmp, view_layer=tmp.view_layers[0], active_object=obj, object=obj,
                                       selected_objects=[obj], selected_editable_objects=[obj]):
            old = obj.data
            bpy.ops.object.convert(target="POINTCLOUD")
        tmp.collection.objects.unlink(obj)
        if obj.type == "POINTCLOUD" and old is not obj.data and old.users == 0:
            bpy.data.meshes.remove(old)
    finally:
        bpy.data.scenes.remove(tmp)


class SceneImport:
    """Incremental import of one result into ``scene``: add parts as they arrive, build in budgeted steps, link."""

    def __init__(self, scene, manifest: dict, options: ImportOptions | None = None):
        self.scene = scene
        self.options = options or ImportOptions()
        info = check_manifest(manifest)
        self.scene_name = info["scene"]
        self.rot = geo.rotation_to_z(info["up"])
        self.native_pc = HAS_POINTCLOUD_CONVERT if self.options.native_pointcloud is None else (
            self.options.native_pointcloud and HAS_POINTCLOUD_CONVERT)
        self._units: list[Callable[[], None]] = []
        self._pending: list[_Pending] = []
        self._classes: list[ClassSummary] = []
        self._radius: float | None = self.options.point_radius
        self.warnings: list[str] = []
        self.n_points = 0
        self.n_faces = 0
        self.n_cameras = 0
        self.camera_size: tuple[int, int] | None = None
        self.build_s = 0.0
        self._finished = False

    # -- queueing -------------------------------------------------------------------------------------------
    def add_part(self, part) -> None:
        """Validate ``part`` now (ResultFormatError on bad data) and queue its build work."""
        if part.kind == "file":
            # a file the pipeline wrote (the 3DGS PLY): Blender has no Gaussian-splat type to build from it; it
            # stays in the job's output folder on the server (protocol.md section 7)
            return
        if part.kind not in CHECKED_KINDS:
            self.warnings.append(f"skipped result part {part.name!r} of unknown kind {part.kind!r}")
            return
        data = check_part(part)
        if part.kind == "mesh":
            self.n_faces += len(data["faces"])
            self._units.append(lambda d=data: self._build_mesh("Mesh", d, "root"))
        elif part.kind == "points":
            self.n_points += len(data["positions"])
            if self._radius is None:
                self._radius = geo.auto_point_radius(data["positions"])
            self._units.append(lambda d=data: self._build_points("Semantic Points", d, "root"))
        elif part.kind == "cameras":
            self.n_cameras += len(data["c2w"])
            self._units.append(lambda d=data: self._build_cameras(d))
        else:
            self._queue_class(data)

    def add_parts(self, parts) -> None:
        for p in parts:
            self.add_part(p)

    @property
    def pending_units(self) -> int:
        return len(self._units)

    def step(self, budget_s: float = 0.05) -> bool:
        """Build queued work for about ``budget_s`` (at least one unit). True when nothing is left queued."""
        t0 = time.perf_counter()
        while self._units:
            unit = self._units.pop(0)
            unit()
            if time.perf_counter() - t0 >= budget_s:
                break
        self.build_s += time.perf_counter() - t0
        return not self._units

    def finish(self, replace=None) -> ImportResult:
        """Build whatever is left, then create the collection tree and link every object (one go).

        ``replace``: a previous import's root collection, removed (with its objects) just before linking, so the
        new collections and objects get the plain names.
        """
        if self._finished:
            raise StateError("SceneImport.finish() called twice")
        self.step(float("inf"))
        t0 = time.perf_counter()
        if replace is not None:
            try:
                remove_import(replace)
            except ReferenceError:
                pass
            for p in self._pending:
                if p.obj.name != p.name:
                    p.obj.name = p.name
                    if p.obj.data is not None and p.obj.data.users == 1:
                        p.obj.data.name = p.name
        name = self.options.collection_name or f"{ROOT_PREFIX}{self.scene_name}"
        root = bpy.data.collections.new(name)
        root[ROOT_TAG] = self.scene_name
        classes_coll = bpy.data.collections.new("Classes") if self._classes else None
        cams_coll = bpy.data.collections.new("Cameras") if self.n_cameras else None
        targets = {"root": root, "cameras": cams_coll}
        for i, c in enumerate(self._classes):
            c.collection = bpy.data.collections.new(c.name)
            c.collection["aligngs_class_id"] = c.class_id
            classes_coll.children.link(c.collection)
            targets[f"class:{i}"] = c.collection
            for label, iname in sorted(c.instance_names.items()):
                ic = bpy.data.collections.new(iname)
                ic["aligngs_class_id"] = c.class_id
                ic["aligngs_instance"] = int(label)
                c.collection.children.link(ic)
                c.instance_collections[label] = ic
                targets[f"class:{i}:{label}"] = ic
        for p in self._pending:
            targets[p.where].objects.link(p.obj)
        if classes_coll is not None:
            root.children.link(classes_coll)
        if cams_coll is not None:
            root.children.link(cams_coll)
        self.scene.collection.children.link(root)
        if self.options.set_render_resolution and self.camera_size is not None:
            self.scene.render.resolution_x, self.scene.render.resolution_y = self.camera_size
            self.scene.render.resolution_percentage = 100
        self._finished = True
        link_s = time.perf_counter() - t0
        return ImportResult(root, [p.obj for p in self._pending], list(self._classes), self.n_points, self.n_faces,
                            self.n_cameras, list(self.warnings), self.build_s, link_s)

    def abort(self) -> None:
        """Drop everything built so far (nothing is linked before finish())."""
        self._units.clear()
        for p in self._pending:
            _remove_object(p.obj)
        self._pending.clear()
        self._finished = True

    # -- builders -------------------------------------------------------------------------------------------
    def _new_object(self, name: str, data, where: str, *, class_id: int | None = None, instance: int | None = None,
                    color: tuple | None = None):
        obj = bpy.data.objects.new(name, data)
        self._pending.append(_Pending(obj, where, name))
        if class_id is not None:
            obj["aligngs_class_id"] = class_id
        if instance is not None:
            obj["aligngs_instance"] = instance
        if color is not None:
            lin = geo.srgb8_to_linear_rgba(np.asarray([color], np.uint8))
            obj.color = tuple(float(x) for x in lin)
        return obj

    def _build_mesh(self, name: str, d: dict, where: str, **tags):
        verts = geo.rotate_points(d["vertices"], self.rot)
        mesh = _new_mesh(name, verts, d["faces"])
        _add_colors(mesh, d.get("colors"), len(verts))
        if "class_id" in d:
            _set_attr(mesh, "class_id", "INT", "value", d["class_id"])
        mesh.materials.append(_mesh_material())
        return self._new_object(name, mesh, where, **tags)

    def _build_points(self, name: str, d: dict, where: str, **tags):
        pos = geo.rotate_points(d["positions"], self.rot)
        n = len(pos)
        mesh = _new_mesh(name, pos, None)
        _add_colors(mesh, d.get("colors"), n)
        if "class_id" in d:
            _set_attr(mesh, "class_id", "INT", "value", d["class_id"])
        if "confidence" in d:
            _set_attr(mesh, "confidence", "FLOAT", "value", d["confidence"])
        radius = self._radius if self._radius is not None else geo.auto_point_radius(pos)
        _set_attr(mesh, "radius", "FLOAT", "value", np.full(n, radius, np.float32))
        obj = self._new_object(name, mesh, where, **tags)
        if self.native_pc:
            _to_pointcloud(obj)
        obj.data.materials.append(_point_material())
        return obj

    def _build_cameras(self, d: dict) -> None:
        for i, nm in enumerate(d["names"]):
            p = geo.camera_params(d["K"][i], d["size"][i])
            cam = bpy.data.cameras.new(os.path.splitext(nm)[0] or f"camera_{i:03d}")
            cam.sensor_fit = "HORIZONTAL"
            cam.sensor_width = p.sensor_width
            cam.lens = p.lens
            cam.shift_x = p.shift_x
            cam.shift_y = p.shift_y
            cam.display_size = 0.2
            obj = self._new_object(cam.name, cam, "cameras")
            obj.matrix_world = Matrix(geo.camera_matrix_world(d["c2w"][i], self.rot).tolist())  # rows
            if self.camera_size is None:
                self.camera_size = (p.width, p.height)

    def _queue_class(self, d: dict) -> None:
        idx = len(self._classes)
        mesh, pts = d.get("mesh"), d.get("points")
        ids = []
        for part in (mesh, pts):
            if part is not None and "instance" in part:
                ids.append(np.unique(part["instance"]))
        inst_ids = np.unique(np.concatenate(ids)) if ids else np.zeros(0, np.int32)
        inst_ids = inst_ids[inst_ids >= 0]
        rank = {int(v): k + 1 for k, v in enumerate(inst_ids)}
        instances = d["instances"] if isinstance(d["instances"], int) else len(inst_ids)
        names = _instance_names(d["instances"], inst_ids)
        summary = ClassSummary(d["class_id"], d["name"], tuple(c / 255.0 for c in d["color"]),
                               0 if pts is None else len(pts["positions"]),
                               0 if mesh is None else len(mesh["faces"]), int(instances), instance_names=names)
        self._classes.append(summary)
        tags = {"class_id": d["class_id"], "color": d["color"]}

        def label_name(label: int) -> str:
            if label in names:
                return names[label]
            return d["name"] if label < 0 else f"{d['name']}.{rank[label]:03d}"

        def where(label: int) -> str:  # a named instance lives in its own collection under the class's
            return f"class:{idx}:{label}" if label in names else f"class:{idx}"

        if mesh is not None:
            self._units.append(lambda: self._build_class_mesh(mesh, where, label_name, tags))
        if pts is not None:
            self._units.append(lambda: self._build_class_points(pts, where, label_name, tags))

    def _build_class_mesh(self, m: dict, where: str, label_name, tags) -> None:
        if "instance" not in m or np.all(m["instance"] == m["instance"][0]):
            lab = int(m["instance"][0]) if "instance" in m and len(m["instance"]) else -1
            self._build_mesh(label_name(lab), m, where(lab), instance=lab, **tags)
            return
        for piece in geo.split_mesh(m["vertices"], m["faces"], m["instance"]):
            sub = {"vertices": piece.vertices, "faces": piece.faces}
            for key in ("colors", "class_id"):
                if key in m:
                    sub[key] = m[key][piece.vertex_index]
            self._build_mesh(label_name(piece.label), sub, where(piece.label), instance=piece.label, **tags)

    def _build_class_points(self, p: dict, where: str, label_name, tags) -> None:
        if "instance" not in p or np.all(p["instance"] == p["instance"][0]):
            lab = int(p["instance"][0]) if "instance" in p and len(p["instance"]) else -1
            self._build_points(label_name(lab) + " · points", p, where(lab), instance=lab, **tags)
            return
        for lab, idx in geo.split_indices(p["instance"]):
            sub = {k: v[idx] for k, v in p.items() if k != "instance"}
            self._build_points(label_name(lab) + " · points", sub, where(lab), instance=lab, **tags)


def _instance_names(meta_instances, inst_ids) -> dict[int, str]:
    """{instance id: name} from a class part's ``meta.instances`` when it lists named instances (the pipeline's
    identity splits: [{id, name, ...}]); {} for a bare count or unnamed entries (the flat layout)."""
    if not isinstance(meta_instances, list):
        return {}
    out = {}
    for it in meta_instances:
        if isinstance(it, dict) and isinstance(it.get("name"), str) and it["name"] and isinstance(it.get("id"), int):
            out[int(it["id"])] = it["name"]
    present = {int(v) for v in inst_ids}
    return {k: v for k, v in out.items() if k in present}


def import_parts(scene, manifest: dict, parts, options: ImportOptions | None = None, *,
                 replace=None) -> ImportResult:
    """Blocking import of ``parts`` (objects with name, kind, arrays, meta) into ``scene``.

    Every part is validated before anything is built; ``replace`` (a previous import's root collection) is removed
    only once the new result is known to be readable.
    """
    imp = SceneImport(scene, manifest, options)
    try:
        imp.add_parts(parts)
        return imp.finish(replace=replace)
    except Exception:
        imp.abort()
        raise


def import_result_folder(scene, result_dir, options: ImportOptions | None = None, *, replace=None) -> ImportResult:
    """Read a result folder (manifest.json + .npy, ``allow_pickle=False``) and import it."""
    manifest, parts = read_parts(result_dir)
    return import_parts(scene, manifest, parts, options, replace=replace)


def _remove_object(obj) -> None:
    data = obj.data
    bpy.data.objects.remove(obj, do_unlink=True)
    if data is not None and data.users == 0:
        if isinstance(data, bpy.types.Mesh):
            bpy.data.meshes.remove(data)
        elif isinstance(data, bpy.types.Camera):
            bpy.data.cameras.remove(data)
        elif hasattr(bpy.types, "PointCloud") and isinstance(data, bpy.types.PointCloud):
            bpy.data.pointclouds.remove(data)


def remove_import(collection) -> None:
    """Delete an imported collection tree with its objects and their (now unused) data."""
    colls = [collection]
    i = 0
    while i < len(colls):
        colls.extend(colls[i].children)
        i += 1
    for c in colls:
        for obj in list(c.objects):
            _remove_object(obj)
    for c in reversed(colls):
        bpy.data.collections.remove(c)


def find_imports(scene) -> list:
    """Root collections of AlignGS imports linked into ``scene``."""
    return [c for c in scene.collection.children if c.get(ROOT_TAG) is not None]
