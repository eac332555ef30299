"""The demo's semantic renders (Blender side): the same view coloured by class, and again with one class hidden.

Runs inside the demo's Blender session after ``scene.png``: the per-class objects the add-on imported are shown
with their class colour (the object colour the importer set, through a material reading Object Info), the whole
mesh and every point object hidden; then one class collection is switched off through the add-on's own class
toggle (``scene.aligngs.classes[i].visible``, the eye an artist clicks in the Results panel) and the view is
rendered again. Materials and visibility are restored afterwards, so the saved .blend is what the add-on made.
"""
from __future__ import annotations

from pathlib import Path

import bpy

CLASS_MATERIAL = "AlignGS Demo Class Colour"
STRUCTURAL = ("wall", "floor", "ceiling")  # hiding one of these shows little: the demo hides an object class


def class_material():
    mat = bpy.data.materials.get(CLASS_MATERIAL)
    if mat is not None:
        return mat
    mat = bpy.data.materials.new(CLASS_MATERIAL)
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    nt = mat.node_tree
    bsdf = next(n for n in nt.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    info = nt.nodes.new("ShaderNodeObjectInfo")
    nt.links.new(info.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = 0.9
    return mat


def pick_class_to_hide(items) -> int | None:
    """Index of the class to hide: a bed when there is one, else the largest non-structural class."""
    names = [it.name for it in items]
    if "bed" in names:
        return names.index("bed")
    candidates = [i for i, it in enumerate(items) if it.name not in STRUCTURAL and it.n_faces > 0]
    return max(candidates, key=lambda i: items[i].n_faces) if candidates else None


def render_semantic_views(scene, root, mesh, render_png, classes_png: str, hidden_png: str) -> dict:
    """Render ``classes_png`` (class colours) and ``hidden_png`` (one class toggled off); returns what they show."""
    items = scene.aligngs.classes
    class_meshes = [o for o in root.all_objects if o.type == "MESH" and o.get("aligngs_class_id") is not None
                    and len(o.data.polygons) > 0]
    if not class_meshes:
        raise RuntimeError("the import has no per-class meshes to colour")
    others = [o for o in root.all_objects if o not in class_meshes and o.type != "CAMERA" and not o.hide_render]
    saved = {o.name: [s.material for s in o.material_slots] for o in class_meshes}
    mat = class_material()
    samples = scene.cycles.samples
    scene.cycles.samples = max(4, samples // 2)  # flat class colours converge faster than the textured mesh
    for o in others:
        o.hide_render = True
    try:
        for o in class_meshes:
            for slot in o.material_slots:
                slot.material = mat
        render_png(classes_png)
        hide = pick_class_to_hide(items)
        hidden_name = None
        if hide is not None:
            hidden_name = items[hide].name
            items[hide].visible = False  # the Results panel's eye: viewport and render
            try:
                render_png(hidden_png)
            finally:
                items[hide].visible = True
    finally:
        for o in class_meshes:
            for slot, m in zip(o.material_slots, saved[o.name]):
                slot.material = m
        for o in others:
            o.hide_render = False
        scene.cycles.samples = samples
    legend = [{"name": it.name, "color": [round(255 * c) for c in it.color], "faces": it.n_faces}
              for it in items if it.n_faces > 0]
    return {"classes_png": classes_png, "hidden_png": hidden_png if hidden_name else None,
            "hidden_class": hidden_name, "legend": legend}


def exists(path: str | None) -> bool:
    return bool(path) and Path(path).is_file()
