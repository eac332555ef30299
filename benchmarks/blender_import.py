"""The Blender add-on's import benchmark, and the synthetic results the add-on tests use.

    .venv-blender/bin/python -m benchmarks blender_import [--points 1000000] [--tris 200000] [--classes 10] [--json PATH]
    .venv-blender/bin/python -m benchmarks blender_import --stream [...]

Default: times the add-on's import of an in-memory result (every array already received, nothing built yet) until
every object is linked into the scene: a point cloud, a triangle mesh, per-class parts split into instances, and
cameras (median of --repeats). ``--stream``: the real path over a backend.serve, from the last result byte to
every object in the scene (see ``run_stream``). Prints the figures; ``--json`` writes {import_s, n_points, n_faces,
n_classes, ...}.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from aligngs.wire.results import ResultPart

PALETTE = [(120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3), (120, 120, 80),
           (140, 140, 140), (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7)]
NAMES = ["wall", "floor", "ceiling", "bed", "window", "cabinet", "table", "chair", "sofa", "lamp", "shelf", "door"]


def _grid_patch(center, size, g):
    """A g x g vertex grid on a bumpy horizontal patch: vertices [g*g,3], triangles [2(g-1)^2,3]."""
    u = np.linspace(-0.5, 0.5, g, dtype=np.float32)
    x, y = np.meshgrid(u, u, indexing="ij")
    z = 0.05 * np.sin(6 * x) * np.cos(6 * y)
    v = np.stack([x * size[0], y * size[1], z * size[2]], -1).reshape(-1, 3) + np.asarray(center, np.float32)
    i = np.arange(g * g, dtype=np.int32).reshape(g, g)
    a, b, c, d = i[:-1, :-1].ravel(), i[1:, :-1].ravel(), i[1:, 1:].ravel(), i[:-1, 1:].ravel()
    f = np.concatenate([np.stack([a, b, c], -1), np.stack([a, c, d], -1)])
    return v.astype(np.float32), f


def synthetic_result(n_points: int = 1_000_000, n_tris: int = 200_000, n_classes: int = 10, n_cameras: int = 24,
                     seed: int = 0, up=(0.0, 0.0, 1.0)) -> tuple[dict, list[ResultPart]]:
    """A room-like result in the results.py format: mesh + points + cameras + one ``class`` part per class
    (1-3 instances each, as objects on a grid of boxes). Returns (manifest, parts)."""
    rng = np.random.default_rng(seed)
    n_classes = min(n_classes, len(NAMES))
    inst_class, inst_center, inst_size = [], [], []
    for c in range(n_classes):
        for _ in range(1 + c % 3):
            inst_class.append(c)
            inst_center.append(rng.uniform([-3, -3, 0], [3, 3, 2.5]))
            inst_size.append(rng.uniform(0.3, 1.2, 3))
    n_inst = len(inst_class)
    inst_class = np.asarray(inst_class, np.int32)
    # points: on the surface of each instance's box
    p_inst = rng.integers(0, n_inst, n_points).astype(np.int32)
    u = rng.uniform(-0.5, 0.5, (n_points, 3)).astype(np.float32)
    axis = rng.integers(0, 3, n_points)
    u[np.arange(n_points), axis] = np.where(rng.random(n_points) < 0.5, -0.5, 0.5)
    pos = (u * np.asarray(inst_size, np.float32)[p_inst] + np.asarray(inst_center, np.float32)[p_inst]).astype(
        np.float32)
    p_cls = inst_class[p_inst]
    pal = np.asarray(PALETTE, np.uint8)
    p_col = np.clip(pal[p_cls].astype(np.int16) + rng.integers(-20, 20, (n_points, 3)), 0, 255).astype(np.uint8)
    conf = rng.random(n_points).astype(np.float32)
    # mesh: one grid patch per instance, ~n_tris in all
    g = max(2, int(np.sqrt(n_tris / (2 * n_inst))) + 1)
    verts, faces, v_inst = [], [], []
    off = 0
    for k in range(n_inst):
        v, f = _grid_patch(inst_center[k], inst_size[k], g)
        verts.append(v)
        faces.append(f + off)
        v_inst.append(np.full(len(v), k, np.int32))
        off += len(v)
    verts, faces, v_inst = np.concatenate(verts), np.concatenate(faces), np.concatenate(v_inst)
    v_cls = inst_class[v_inst]
    v_col = pal[v_cls]
    parts = [
        ResultPart("mesh", "mesh", {"vertices": verts, "faces": faces, "colors": v_col, "class_id": v_cls}),
        ResultPart("points", "points", {"positions": pos, "colors": p_col, "class_id": p_cls, "confidence": conf}),
    ]
    # cameras on a circle looking at the centre (OpenCV axes)
    c2w = np.zeros((n_cameras, 4, 4), np.float32)
    for i in range(n_cameras):
        a = 2 * np.pi * i / n_cameras
        eye = np.array([4.5 * np.cos(a), 4.5 * np.sin(a), 1.5])
        fwd = -eye * np.array([1, 1, 0]) / np.linalg.norm(eye[:2])
        right = np.cross(fwd, [0, 0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        c2w[i, :3, 0], c2w[i, :3, 1], c2w[i, :3, 2], c2w[i, :3, 3], c2w[i, 3, 3] = right, down, fwd, eye, 1
    K = np.tile(np.array([[500, 0, 330], [0, 500, 235], [0, 0, 1]], np.float32), (n_cameras, 1, 1))
    size = np.tile(np.array([640, 480], np.int32), (n_cameras, 1))
    parts.append(ResultPart("cameras", "cameras", {"c2w": c2w, "K": K, "size": size},
                      {"names": [f"frame_{i:04d}.jpg" for i in range(n_cameras)]}))
    # class parts: the class's own vertices (re-indexed) and points
    for c in range(n_classes):
        vm = v_cls == c
        vidx = np.nonzero(vm)[0]
        remap = np.full(len(verts), -1, np.int64)
        remap[vidx] = np.arange(len(vidx))
        fm = vm[faces[:, 0]]
        pm = p_cls == c
        arrays = {
            "mesh_vertices": verts[vidx], "mesh_faces": remap[faces[fm]].astype(np.int32),
            "mesh_colors": v_col[vidx], "mesh_instance": v_inst[vidx],
            "points_positions": pos[pm], "points_colors": p_col[pm], "points_confidence": conf[pm],
            "points_instance": p_inst[pm],
        }
        parts.append(ResultPart(f"class_{NAMES[c]}", "class", arrays, {
            "class_id": c, "name": NAMES[c], "color": list(PALETTE[c]), "instances": int((inst_class == c).sum())}))
    manifest = {"version": 1, "scene": "synthetic", "up": list(up),
                "parts": [{"name": p.name, "kind": p.kind, "arrays": {}, "meta": p.meta} for p in parts]}
    return manifest, parts


def run(n_points: int, n_tris: int, n_classes: int, repeats: int = 3) -> dict:
    import bpy

    from blender_addon.blender.importer import import_parts

    manifest, parts = synthetic_result(n_points, n_tris, n_classes)
    times, builds, links = [], [], []
    res = None
    for _ in range(repeats):
        bpy.ops.wm.read_homefile(use_empty=True)
        t0 = time.perf_counter()
        res = import_parts(bpy.context.scene, manifest, parts)
        times.append(time.perf_counter() - t0)
        builds.append(res.build_s)
        links.append(res.link_s)
    return {
        "import_s": float(np.median(times)),
        "import_s_all": times,
        "build_s": float(np.median(builds)),
        "link_s": float(np.median(links)),
        "n_points": res.n_points,
        "n_faces": res.n_faces,
        "n_classes": len(res.classes),
        "n_objects": len(res.objects),
        "n_cameras": res.n_cameras,
        "class_points": int(sum(c.n_points for c in res.classes)),
        "class_faces": int(sum(c.n_faces for c in res.classes)),
        "blender": bpy.app.version_string,
        "native_pointcloud": bpy.app.version >= (5, 0, 0),
    }


def run_stream(n_points: int, n_tris: int, n_classes: int, timeout: float = 600.0) -> dict:
    """The add-on's own path over the wire: a real backend.serve (repo .venv) whose job writes the synthetic
    result, the client thread, and ``session.tick`` pumped like Blender's timer (50 ms budget per tick).
    ``import_s`` is from the moment the final ``done`` message is dequeued (every result byte has arrived) to
    every object linked; parts are built while the stream is still arriving, as in Blender."""
    import bpy

    from blender_addon.blender import session as sess
    from blender_addon.core import client

    from ._addon_job import submitted_job

    with submitted_job(8, {"points": n_points, "tris": n_tris, "classes": n_classes, "steps": 2,
                           "step_s": 0.01}) as (s, scene, t_submit):
        t_done = None
        ticks, max_tick = 0, 0.0
        real_get = None
        while s.job.phase not in ("done", "failed", "cancelled"):
            if time.perf_counter() - t_submit > timeout:
                raise TimeoutError("stream benchmark timed out")
            if t_done is None and s.conn is not None and real_get is None:
                real_get = s.conn.events.get_nowait

                def get_nowait(_get=real_get):
                    nonlocal t_done
                    msg = _get()
                    if isinstance(msg, client.Done):
                        t_done = time.perf_counter()
                    return msg

                s.conn.events.get_nowait = get_nowait
            t0 = time.perf_counter()
            sess.tick(s)
            dt = time.perf_counter() - t0
            ticks += 1
            max_tick = max(max_tick, dt)
            if s.importer is None or not s.importer.pending_units:
                time.sleep(0.005)
        t_end = time.perf_counter()
        if s.job.phase != "done":
            raise RuntimeError(f"job ended {s.job.phase}: {s.job.error}")
        res = s.last_import
        s.close()
        return {
            "import_s": t_end - t_done, "total_s": t_end - t_submit, "ticks": ticks, "max_tick_s": max_tick,
            "n_points": res.n_points, "n_faces": res.n_faces, "n_classes": len(res.classes),
            "n_objects": len(res.objects), "mode": "stream", "blender": bpy.app.version_string,
        }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="AlignGS add-on import benchmark")
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--tris", type=int, default=200_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--stream", action="store_true",
                    help="measure over a real backend.serve (needs the repo's .venv) instead of in memory")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="aligngs-bench-"))
    if args.stream:
        out = run_stream(args.points, args.tris, args.classes)
    else:
        out = run(args.points, args.tris, args.classes, args.repeats)
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
