"""Reconstruct a synthetic room through the add-on against a running backend.serve (the demo's settings), then
report the per-instance collections and what each instance toggle hides. Runs under .venv-blender.

Args: --address host:port, --images DIR, --iterations N, --resolution PX, --timeout S. Writes facts to --out.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "addon" / "drivers"))

from _common import TimerCapture, bpy, install, parse, sub, write  # noqa: E402

args = parse({"--address": {"required": True}, "--images": {"required": True},
              "--iterations": {"type": int, "default": 120}, "--resolution": {"type": int, "default": 112},
              "--timeout": {"type": float, "default": 1500.0}})
install(args.zip)
timers = TimerCapture()
runtime = sub("blender.runtime")
MODULE_PREFS = bpy.context.preferences.addons["bl_ext.user_default.aligngs"].preferences
MODULE_PREFS.address = args.address
MODULE_PREFS.timeout_s = 30.0
scene = bpy.context.scene
st = scene.aligngs
s = runtime.get_session()
st.image_dir = args.images
st.preset = "fast"
st.use_advanced = True
st.iterations = args.iterations
st.resolution = args.resolution
t0 = time.time()
op = bpy.ops.aligngs.reconstruct()
timers.pump(until=lambda: s.job.phase in ("done", "failed", "cancelled"), timeout=args.timeout)
facts: dict = {"op": list(op), "phase": s.job.phase, "error": s.job.error, "seconds": time.time() - t0}
res = s.last_import
vl = bpy.context.view_layer
if res is not None:
    root = res.collection
    classes = {}
    for item in st.classes:
        coll = item.collection
        meshes = [o for o in coll.all_objects if o.type == "MESH" and not o.name.endswith("· points")
                  and len(o.data.polygons) > 0]
        classes[item.name] = {
            "collection": coll.name,
            "children": [c.name for c in coll.children],
            "instance_items": [it.name for it in item.instance_items],
            "item_collections": [it.collection.name if it.collection else None for it in item.instance_items],
            "n_mesh_objects": len(meshes),
            "loose_objects": [o.name for o in coll.objects],
            "per_instance": {c.name: sorted(o.name for o in c.objects) for c in coll.children},
        }
    facts["classes"] = classes
    all_objs = list(root.all_objects)
    # every instance toggle: hide it, record which objects became invisible, show it again
    toggles = []
    for item in st.classes:
        for it in item.instance_items:
            before = {o.name for o in all_objs if o.visible_get(view_layer=vl)}
            it.visible = False
            after = {o.name for o in all_objs if o.visible_get(view_layer=vl)}
            render_hidden = it.collection.hide_render
            it.visible = True
            restored = {o.name for o in all_objs if o.visible_get(view_layer=vl)}
            toggles.append({"class": item.name, "instance": it.name, "hidden": sorted(before - after),
                            "expected": sorted(o.name for o in it.collection.all_objects),
                            "render_hidden": render_hidden, "restored": restored == before})
    facts["toggles"] = toggles
    # a class toggle still hides the whole class, instances included
    item = st.classes[0]
    before = {o.name for o in all_objs if o.visible_get(view_layer=vl)}
    item.visible = False
    facts["class_toggle"] = {"class": item.name, "hidden": sorted(before - {o.name for o in all_objs
                                                                             if o.visible_get(view_layer=vl)}),
                             "expected": sorted(o.name for o in item.collection.all_objects)}
    item.visible = True
write(args.out, facts)
