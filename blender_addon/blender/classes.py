"""The per-scene class list (Results panel): fill it from an import, and show / hide / isolate class collections;
per class, the list of its named instances (one collection each) with their own show / hide toggles.

A class's visibility is its collection's eye in the view layer(s) (``LayerCollection.hide_viewport``) plus the
collection's render toggle (``Collection.hide_render``), so what is hidden in the viewport is hidden in renders too.
"""
from __future__ import annotations

import bpy


def find_layer_collection(layer_coll, coll):
    """The LayerCollection of ``coll`` below ``layer_coll`` (depth-first), or None."""
    if layer_coll.collection == coll:
        return layer_coll
    for child in layer_coll.children:
        found = find_layer_collection(child, coll)
        if found is not None:
            return found
    return None


def set_collection_visible(scene, coll, visible: bool) -> None:
    if coll is None:
        return
    for vl in scene.view_layers:
        lc = find_layer_collection(vl.layer_collection, coll)
        if lc is not None:
            lc.hide_viewport = not visible
    coll.hide_render = not visible


def _scene_of(item):
    # class and instance items alike: id_data is the Scene that owns the settings
    scene = item.id_data
    return scene if isinstance(scene, bpy.types.Scene) else None


def on_visible_changed(item, context) -> None:
    scene = _scene_of(item)
    if scene is not None:
        set_collection_visible(scene, item.collection, item.visible)


def on_color_changed(item, context) -> None:
    if item.collection is None:
        return
    lin = [float(c) for c in (item.color[0], item.color[1], item.color[2])]
    # COLOR_GAMMA values are sRGB; object colours are scene-linear.
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in lin]
    for obj in item.collection.all_objects:
        obj.color = (*lin, 1.0)


def fill_class_list(scene, result) -> None:
    """Replace the scene's class list with the classes of an ImportResult."""
    s = scene.aligngs
    s.classes.clear()
    s.root = result.collection
    for c in sorted(result.classes, key=lambda c: (-c.n_points - c.n_faces, c.name)):
        item = s.classes.add()
        item.name = c.name
        item.class_id = c.class_id
        item.n_points = c.n_points
        item.n_faces = c.n_faces
        item.instances = c.instances
        item.collection = c.collection
        # set without triggering the update callbacks' side effects twice
        item["color"] = [float(v) for v in c.color]
        item["visible"] = True
        item.instance_items.clear()
        for label, coll in sorted(getattr(c, "instance_collections", {}).items()):
            inst = item.instance_items.add()
            inst.name = coll.name
            inst.instance = int(label)
            inst.collection = coll
            inst["visible"] = True
        item.active_instance = 0
    s.active_class = 0


def set_all_visible(scene, visible: bool) -> None:
    for item in scene.aligngs.classes:
        item.visible = visible


def isolate(scene, index: int) -> None:
    """Show only the class at ``index``; isolating the only visible class again shows all."""
    items = scene.aligngs.classes
    if not 0 <= index < len(items):
        return
    only_this = items[index].visible and all(not it.visible for i, it in enumerate(items) if i != index)
    for i, it in enumerate(items):
        it.visible = True if only_this else (i == index)
