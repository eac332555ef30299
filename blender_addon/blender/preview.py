"""The live preview: ONE point object that follows the Gaussians while the job trains.

Each point preview of a ``progress`` event rewrites the same mesh datablock in place (``foreach_set``; resized with
``clear_geometry`` + ``vertices.add`` when the count changes), so a long run creates no datablocks per update and
the undo history stays untouched. A Geometry Nodes modifier (Mesh to Points + Set Material) draws the vertices as
points in the viewport and in renders. Two colour attributes travel with it, the Gaussians' colour (``Col``) and
their current class colour (``ClassCol``); the panel's toggle (``AlignGSSceneProps.preview_color``) switches which
one the material and the viewport show, without touching the geometry. The object is removed when the final result
lands, the job fails or is cancelled.
"""
from __future__ import annotations

import numpy as np

import bpy

from ..core import geometry as geo

PREVIEW_NAME = "AlignGS Live Preview"
RGB_ATTR = "Col"
CLASS_ATTR = "ClassCol"
NODE_GROUP = "AlignGS Preview Points"
MATERIAL = "AlignGS Preview"
TAG = "aligngs_preview"  # custom property on the object: the job it previews


def find(scene):
    """The scene's preview object, or None."""
    for obj in scene.objects:
        if obj.get(TAG) is not None:
            return obj
    return None


def _material():
    mat = bpy.data.materials.get(MATERIAL)
    if mat is not None and mat.get(TAG) == "material":
        return mat
    mat = bpy.data.materials.new(MATERIAL)
    mat[TAG] = "material"
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    nt = mat.node_tree
    bsdf = next(n for n in nt.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    attr = nt.nodes.new("ShaderNodeAttribute")
    attr.name = "colour"
    attr.attribute_type = "GEOMETRY"
    attr.attribute_name = RGB_ATTR
    attr.location = (bsdf.location.x - 300, bsdf.location.y)
    nt.links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
    nt.links.new(attr.outputs["Color"], bsdf.inputs["Emission Color"])
    bsdf.inputs["Emission Strength"].default_value = 0.5  # readable in an unlit scene
    bsdf.inputs["Roughness"].default_value = 1.0
    return mat


def _node_group(material, radius: float):
    ng = bpy.data.node_groups.get(NODE_GROUP)
    if ng is None or ng.get(TAG) != "points":
        ng = bpy.data.node_groups.new(NODE_GROUP, "GeometryNodeTree")
        ng[TAG] = "points"
        ng.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
        ng.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
        gin, gout = ng.nodes.new("NodeGroupInput"), ng.nodes.new("NodeGroupOutput")
        to_points = ng.nodes.new("GeometryNodeMeshToPoints")
        to_points.name = "to_points"
        set_mat = ng.nodes.new("GeometryNodeSetMaterial")
        set_mat.name = "set_material"
        ng.links.new(gin.outputs[0], to_points.inputs["Mesh"])
        ng.links.new(to_points.outputs["Points"], set_mat.inputs["Geometry"])
        ng.links.new(set_mat.outputs["Geometry"], gout.inputs[0])
    ng.nodes["set_material"].inputs["Material"].default_value = material
    ng.nodes["to_points"].inputs["Radius"].default_value = radius
    return ng


def _color_attr(mesh, name: str, n: int):
    attr = mesh.color_attributes.get(name)
    if attr is None or attr.domain != "POINT" or attr.data_type != "FLOAT_COLOR" or len(attr.data) != n:
        if attr is not None:
            mesh.color_attributes.remove(attr)
        attr = mesh.color_attributes.new(name, "FLOAT_COLOR", "POINT")
    return attr


def update(scene, points, job: str, color_by: str = "RGB"):
    """Show ``points`` (a ``wire.PointsPreview``) in ``scene``: the preview object, created once, then rewritten."""
    n = points.n
    pos = points.positions.astype(np.float32)
    if points.up is not None:
        pos = geo.rotate_points(pos, geo.rotation_to_z(points.up))
    obj = find(scene)
    if obj is None:
        mesh = bpy.data.meshes.new(PREVIEW_NAME)
        obj = bpy.data.objects.new(PREVIEW_NAME, mesh)
        obj[TAG] = job
        scene.collection.objects.link(obj)
        mod = obj.modifiers.new("Points", "NODES")
        mod.node_group = _node_group(_material(), geo.auto_point_radius(pos) if n else 0.01)
    mesh = obj.data
    obj[TAG] = job
    if len(mesh.vertices) != n:
        mesh.clear_geometry()
        mesh.vertices.add(n)
    if n:
        mesh.attributes["position"].data.foreach_set("vector", np.ascontiguousarray(pos).reshape(-1))
        _color_attr(mesh, RGB_ATTR, n).data.foreach_set("color", geo.srgb8_to_linear_rgba(points.colors))
        classes = points.class_colors if points.class_colors is not None else points.colors
        _color_attr(mesh, CLASS_ATTR, n).data.foreach_set("color", geo.srgb8_to_linear_rgba(classes))
    set_color_mode(obj, color_by)
    mesh.update()
    return obj


def set_color_mode(obj, color_by: str) -> None:
    """Show the RGB or the class colours (material attribute and the viewport's active colour attribute)."""
    name = CLASS_ATTR if color_by == "CLASS" else RGB_ATTR
    mesh = obj.data
    if name in mesh.color_attributes and hasattr(mesh.color_attributes, "active_color_name"):
        mesh.color_attributes.active_color_name = name
    mat = bpy.data.materials.get(MATERIAL)
    if mat is not None and mat.node_tree is not None and "colour" in mat.node_tree.nodes:
        mat.node_tree.nodes["colour"].attribute_name = name


def remove(scene) -> bool:
    """Remove the scene's preview object and its mesh; True if there was one."""
    obj = find(scene)
    if obj is None:
        return False
    mesh = obj.data
    bpy.data.objects.remove(obj, do_unlink=True)
    if mesh is not None and mesh.users == 0:
        bpy.data.meshes.remove(mesh)
    return True
