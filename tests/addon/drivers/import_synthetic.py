"""Install the add-on and import synthetic results with it; report what is in the scene (facts for pytest)."""
from __future__ import annotations

import tempfile

import numpy as np

from _common import bpy, install, parse, sub, write

args = parse({"--up": {"default": "0,0,1"}})
install(args.zip)
importer = sub("blender.importer")
classes = sub("blender.classes")
session = sub("blender.actions")
runtime = sub("blender.runtime")
from benchmarks.blender_import import synthetic_result  # noqa: E402  (the test data generator, from the source tree)

up = [float(v) for v in args.up.split(",")]
manifest, parts = synthetic_result(n_points=30_000, n_tris=6_000, n_classes=5, n_cameras=6, seed=3, up=up)
by_name = {p.name: p for p in parts}
scene = bpy.context.scene
res = importer.import_parts(scene, manifest, parts)
classes.fill_class_list(scene, res)
facts: dict = {"root": res.collection.name, "n_points": res.n_points, "n_faces": res.n_faces,
               "n_cameras": res.n_cameras, "blender": list(bpy.app.version)}


def tree(coll):
    return {"objects": sorted(o.name for o in coll.objects), "children": {c.name: tree(c) for c in coll.children}}


facts["tree"] = tree(res.collection)
facts["root_linked"] = res.collection.name in scene.collection.children


def attrs(data):
    return {a.name: {"type": a.data_type, "domain": a.domain, "len": len(a.data)} for a in data.attributes
            if not a.name.startswith(".")}


def get(data, name, prop, width, dtype):
    a = data.attributes[name]
    buf = np.empty(len(a.data) * width, dtype)
    a.data.foreach_get(prop, buf)
    return buf.reshape(len(a.data), width) if width > 1 else buf


mesh_obj = next(o for o in res.collection.objects if o.type == "MESH")
pts_obj = next(o for o in res.collection.objects if o is not mesh_obj)
facts["mesh"] = {"name": mesh_obj.name, "type": mesh_obj.type, "n_verts": len(mesh_obj.data.vertices),
                 "n_faces": len(mesh_obj.data.polygons), "attrs": attrs(mesh_obj.data),
                 "material": [m.name for m in mesh_obj.data.materials],
                 "matrix_identity": np.allclose(np.array(mesh_obj.matrix_world), np.eye(4))}
mat = mesh_obj.data.materials[0]
facts["mesh"]["color_node"] = [(n.bl_idname, getattr(n, "layer_name", None)) for n in mat.node_tree.nodes
                               if n.bl_idname == "ShaderNodeVertexColor"]
facts["mesh"]["color_node_linked"] = any(link.from_node.bl_idname == "ShaderNodeVertexColor"
                                         and link.to_socket.name == "Base Color" for link in mat.node_tree.links)
src_mesh = by_name["mesh"].arrays
corner = get(mesh_obj.data, ".corner_vert", "value", 1, np.int32)
facts["mesh"]["faces_match"] = bool(np.array_equal(corner.reshape(-1, 3), src_mesh["faces"]))
facts["mesh"]["class_id_match"] = bool(np.array_equal(get(mesh_obj.data, "class_id", "value", 1, np.int32),
                                                      src_mesh["class_id"]))
src_pts = by_name["points"].arrays
pd = pts_obj.data
facts["points"] = {"name": pts_obj.name, "type": pts_obj.type, "attrs": attrs(pd)}
pos = get(pd, "position", "vector", 3, np.float32)
facts["points"]["positions"] = pos[:5].tolist()
facts["points"]["src_positions"] = np.asarray(src_pts["positions"][:5]).tolist()
facts["points"]["class_id_match"] = bool(np.array_equal(get(pd, "class_id", "value", 1, np.int32),
                                                        src_pts["class_id"]))
facts["points"]["confidence_match"] = bool(np.allclose(get(pd, "confidence", "value", 1, np.float32),
                                                       src_pts["confidence"]))
lin = get(pd, "Col", "color", 4, np.float32)[:, :3].astype(np.float64)
srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.clip(lin, 0, None) ** (1 / 2.4) - 0.055)
facts["points"]["color_max_err"] = float(np.abs(srgb * 255 - src_pts["colors"]).max())

# classes: per-instance objects and counts
cls_parts = [p for p in parts if p.kind == "class"]
facts["classes"] = {}
for p in cls_parts:
    coll = next(c.collection for c in res.classes if c.name == p.meta["name"])
    inst_pts = np.asarray(p.arrays["points_instance"])
    objs = {}
    for o in coll.objects:
        if o.type == "MESH" and "points" not in o.name:
            objs[o.name] = {"kind": "mesh", "faces": len(o.data.polygons), "instance": o.get("aligngs_instance")}
        else:
            n = len(o.data.points) if o.type == "POINTCLOUD" else len(o.data.vertices)
            objs[o.name] = {"kind": "points", "n": n, "instance": o.get("aligngs_instance"),
                            "expected_n": int((inst_pts == o.get("aligngs_instance")).sum())}
    facts["classes"][p.meta["name"]] = {"objects": objs, "n_faces": len(p.arrays["mesh_faces"]),
                                        "n_points": len(inst_pts), "instances": p.meta["instances"]}

# cameras: project world points with Blender's camera matrices and with OpenCV K / c2w
cam = by_name["cameras"].arrays
rng = np.random.default_rng(0)
R = None
errs = []
dg = bpy.context.evaluated_depsgraph_get()
cams = sorted((o for o in res.collection.children["Cameras"].objects), key=lambda o: o.name)
facts["camera_names"] = [o.name for o in cams]

geo = sub("core.geometry")
R = geo.rotation_to_z(up)
for i, o in enumerate(cams):
    W, H = (int(v) for v in cam["size"][i])
    K, c2w = cam["K"][i].astype(np.float64), cam["c2w"][i].astype(np.float64)
    w2c = np.linalg.inv(c2w)
    proj = np.array(o.calc_matrix_camera(dg, x=W, y=H))
    view = np.array(o.matrix_world.inverted())
    for _ in range(20):
        Xc = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(2, 6)])  # in front of the camera
        X = (c2w @ np.append(Xc, 1))[:3]
        uv = K @ Xc
        u, v = uv[0] / uv[2], uv[1] / uv[2]
        Xb = R @ X
        clip = proj @ view @ np.append(Xb, 1)
        nx, ny = clip[0] / clip[3], clip[1] / clip[3]
        ub, vb = (nx + 1) / 2 * W, H - (ny + 1) / 2 * H
        errs.append(max(abs(ub - u), abs(vb - v)))
facts["camera_max_px_err"] = float(max(errs))
facts["render_size"] = [scene.render.resolution_x, scene.render.resolution_y]
facts["camera_sensor_fit"] = cams[0].data.sensor_fit

# visibility: one class off, isolate, hide all, show all
vl = bpy.context.view_layer


def visible_classes():
    out = {}
    for item in scene.aligngs.classes:
        out[item.name] = [o.visible_get(view_layer=vl) for o in item.collection.objects]
    return out


items = scene.aligngs.classes
name0 = items[0].name
items[0].visible = False
facts["vis_one_off"] = visible_classes()
facts["vis_one_off_root"] = [o.visible_get(view_layer=vl) for o in res.collection.objects]
facts["vis_one_off_render"] = {it.name: it.collection.hide_render for it in items}
items[0].visible = True
res_op = bpy.ops.aligngs.class_visibility(action="ISOLATE", index=1)
facts["vis_isolate"] = {"op": list(res_op), "name": items[1].name, "state": visible_classes()}
bpy.ops.aligngs.class_visibility(action="HIDE_ALL")
facts["vis_hide_all"] = visible_classes()
bpy.ops.aligngs.class_visibility(action="SHOW_ALL")
facts["vis_show_all"] = visible_classes()
facts["class_list"] = [{"name": it.name, "n_points": it.n_points, "n_faces": it.n_faces,
                        "instances": it.instances, "color": list(it.color)} for it in items]

# result folder written by the pipeline's own writer, then re-imported through the session (replaces the old one)
from aligngs.wire import ResultPart, write_parts  # noqa: E402

tmp = tempfile.mkdtemp()
write_parts(tmp, [ResultPart(p.name, p.kind, p.arrays, p.meta) for p in parts], scene="from_folder", up=up)
s = runtime.get_session()
n_objects_before = len(bpy.data.objects)
res2 = session.import_folder(s, scene, tmp)
facts["folder"] = {"root": res2.collection.name, "n_points": res2.n_points, "n_faces": res2.n_faces,
                   "roots_in_scene": [c.name for c in importer.find_imports(scene)],
                   "objects_before": n_objects_before, "objects_after": len(bpy.data.objects),
                   "scene_root": scene.aligngs.root.name}
# bad folders give readable errors
errors = {}
for label, folder in (("missing", tmp + "/nope"), ("empty", tempfile.mkdtemp())):
    try:
        session.import_folder(s, scene, folder)
        errors[label] = None
    except session.UserError as e:
        errors[label] = str(e)

bad = tempfile.mkdtemp()
write_parts(bad, [ResultPart("mesh", "mesh", {"vertices": np.zeros((3, 3), np.float32),
                                              "faces": np.array([[0, 1, 5]], np.int32)})], scene="bad")
try:
    session.import_folder(s, scene, bad)
    errors["bad_index"] = None
except session.UserError as e:
    errors["bad_index"] = str(e)
facts["folder_errors"] = errors
facts["objects_after_errors"] = len(bpy.data.objects)
write(args.out, facts)
