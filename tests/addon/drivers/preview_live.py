"""Watch the live preview during a real backend.serve job: the preview object appears, is rewritten in place (same
datablocks, new coordinates) as previews arrive, follows the colour toggle, and is gone when the result lands.

Args: --address host:port, --images DIR (control.json asks for point previews), --timeout S.
"""
from __future__ import annotations

import time

from _common import MODULE, TimerCapture, bpy, install, parse, sub, write

args = parse({"--address": {"required": True}, "--images": {"required": True},
              "--timeout": {"type": float, "default": 120.0}})
install(args.zip)
timers = TimerCapture()
runtime = sub("blender.runtime")
preview = sub("blender.preview")
prefs = bpy.context.preferences.addons[MODULE].preferences
prefs.address = args.address
prefs.timeout_s = 10.0
scene = bpy.context.scene
st = scene.aligngs
s = runtime.get_session()
bpy.ops.aligngs.test_connection()
timers.pump(until=lambda: s.info is not None or s.status == "error", timeout=30)
st.image_dir = args.images
st.preset = "fast"

seen = []  # (object pointer, mesh pointer, n vertices, first x, active colour attribute, material attribute)
tick_with_preview = []


def snapshot():
    obj = preview.find(scene)
    if obj is None:
        return None
    mesh = obj.data
    x0 = mesh.vertices[0].co.x if len(mesh.vertices) else None
    mat = bpy.data.materials.get(preview.MATERIAL)
    return (obj.as_pointer(), mesh.as_pointer(), len(mesh.vertices), round(x0, 3) if x0 is not None else None,
            mesh.color_attributes.active_color_name, mat.node_tree.nodes["colour"].attribute_name)


def done():
    return s.job.phase in ("done", "failed", "cancelled")


op = bpy.ops.aligngs.reconstruct()
t0 = time.time()
switched = False
while not done() and time.time() - t0 < args.timeout:
    for fn in list(timers.callbacks):  # what Blender's timer loop would do, one snapshot per tick
        t1 = time.perf_counter()
        nxt = fn()
        dt = time.perf_counter() - t1
        snap = snapshot()
        if snap is not None and (not seen or seen[-1] != snap):
            seen.append(snap)
            tick_with_preview.append(dt)
        if nxt is None:
            timers.callbacks.remove(fn)
    if len(seen) >= 2 and not switched:
        st.preview_color = "CLASS"  # the panel's toggle, while previews keep arriving
        switched = True
    time.sleep(0.01)

objects_after = [o.name for o in scene.objects if o.get(preview.TAG) is not None]
write(args.out, {
    "op": list(op), "phase": s.job.phase, "error": s.job.error, "seen": seen,
    "max_tick_with_preview_s": max(tick_with_preview) if tick_with_preview else None,
    "preview_after": objects_after, "preview_mesh_left": preview.PREVIEW_NAME in bpy.data.meshes,
    "root": s.last_import.collection.name if s.last_import else None,
})
