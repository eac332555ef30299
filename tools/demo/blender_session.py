"""The demo's Blender side: install the extension, Reconstruct Scene through the add-on, save and render.

Runs as a script under Blender-as-a-module (``.venv-blender/bin/python``: bpy, numpy, pyzmq; no torch, nothing from
``aligngs``), started by ``tools.demo.blender_run`` with ``BLENDER_USER_RESOURCES`` already set. Progress goes to
stdout as lines starting with ``PROGRESS_PREFIX`` (the parent echoes them); the outcome is written as JSON to
``--report`` (``{"ok": true, ...}`` or ``{"ok": false, "stage": ..., "error": ...}``), and the exit code is 0 only on
success.

Headless Blender never fires ``bpy.app.timers`` callbacks, so the add-on's timer (``session.tick``) is captured at
registration and called here, as Blender's event loop would.
"""
from __future__ import annotations

import argparse
import faulthandler
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

import bpy
from mathutils import Vector

from semantic_views import render_semantic_views  # (this script's folder is on sys.path)

MODULE = "bl_ext.user_default.aligngs"
PROGRESS_PREFIX = "aligngs-demo:"
FINAL_PHASES = ("done", "failed", "cancelled")


class DemoError(Exception):
    """A step of the Blender session failed; ``stage`` names it."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


def say(text: str) -> None:
    sys.stdout.write(f"{PROGRESS_PREFIX} {text}\n")
    sys.stdout.flush()


class TimerPump:
    """Stands in for ``bpy.app.timers``: captures registered callbacks and calls them on ``pump()``."""

    def __init__(self):
        self.callbacks: list = []
        self._orig = bpy.app.timers.register
        bpy.app.timers.register = self._register

    def _register(self, fn, first_interval=0.0, persistent=False):
        if fn not in self.callbacks:
            self.callbacks.append(fn)

    def pump_once(self) -> None:
        for fn in list(self.callbacks):
            if fn() is None:
                self.callbacks.remove(fn)

    def pump_until(self, done, timeout_s: float, sleep_s: float = 0.02, on_tick=None) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if done():
                return True
            self.pump_once()
            if on_tick is not None:
                on_tick()
            time.sleep(sleep_s)
        return bool(done())

    def restore(self) -> None:
        bpy.app.timers.register = self._orig


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zip", required=True, help="the extension zip (build_addon.py)")
    ap.add_argument("--address", required=True, help="backend host:port")
    ap.add_argument("--images", required=True, help="the folder to reconstruct")
    ap.add_argument("--report", required=True, help="JSON outcome is written here")
    ap.add_argument("--blend", required=True, help="the .blend to save")
    ap.add_argument("--png", default=None, help="render the scene to this PNG (omit: no render)")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--iterations", type=int, default=None, help="with --resolution: the add-on's Advanced settings")
    ap.add_argument("--resolution", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the reconstruction")
    ap.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel")
    ap.add_argument("--size", type=int, default=480, help="the render's longest side in px")
    return ap.parse_args(argv)


# --------------------------------------------------------------------------------------------------- steps

def install_addon(zip_path: str):
    res = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    if res != {"FINISHED"}:
        raise DemoError("install", f"installing {zip_path} returned {sorted(res)}")
    if MODULE not in bpy.context.preferences.addons:
        raise DemoError("install", f"{zip_path} installed but the add-on is not enabled (wrong platform zip?)")
    return importlib.import_module(MODULE)


def connect(pump: TimerPump, runtime, session_mod, prefs, timeout_s: float = 30.0) -> dict:
    s = runtime.get_session()
    bpy.ops.aligngs.test_connection()
    pump.pump_until(lambda: s.info is not None or s.status == "error", timeout_s)
    if s.info is None:
        raise DemoError("connect", f"cannot reach the backend at {prefs.address}: {s.status_text}")
    return {"server": s.info.server, "device": s.info.device}


def reconstruct(pump: TimerPump, runtime, session_mod, prefs, args) -> dict:
    scene = bpy.context.scene
    st = scene.aligngs
    st.image_dir = str(Path(args.images).resolve())
    st.preset = args.preset
    if args.iterations is not None or args.resolution is not None:
        if args.iterations is None or args.resolution is None:
            raise DemoError("settings", "--iterations and --resolution go together (the add-on sends both)")
        st.use_advanced = True
        st.iterations = args.iterations
        st.resolution = args.resolution
    s = runtime.get_session()
    reason = session_mod.reconstruct_block_reason(s, prefs, st)
    if reason:
        raise DemoError("submit", f"Reconstruct Scene is disabled: {reason}")
    t0 = time.monotonic()
    op = bpy.ops.aligngs.reconstruct()
    if op != {"FINISHED"}:
        raise DemoError("submit", f"Reconstruct Scene returned {sorted(op)}: {s.reports[-1:] or s.job.error}")
    last = [""]

    def show_progress():
        text = s.job.stage_text or s.job.phase
        if text != last[0]:
            last[0] = text
            say(f"{s.job.phase}: {text}")

    finished = pump.pump_until(lambda: s.job.phase in FINAL_PHASES, args.timeout, on_tick=show_progress)
    if not finished:
        raise DemoError("reconstruct", f"no result after {args.timeout:.0f} s (phase {s.job.phase}: "
                                       f"{s.job.stage_text}); the job keeps its id {st.job_id}")
    if s.job.phase != "done" or s.last_import is None:
        raise DemoError("reconstruct", f"the job ended {s.job.phase}: {s.job.error or 'no result imported'}")
    res = s.last_import
    return {
        "seconds": time.monotonic() - t0,
        "job_id": st.job_id,
        "root": res.collection.name,
        "n_points": res.n_points,
        "n_faces": res.n_faces,
        "n_cameras": res.n_cameras,
        "classes": [{"name": c.name, "class_id": c.class_id, "n_points": c.n_points, "n_faces": c.n_faces,
                     "instances": c.instances} for c in res.classes],
        "warnings": list(res.warnings),
        "summary": s.last_summary,
    }


def _root_mesh(root):
    meshes = [o for o in root.objects if o.type == "MESH" and len(o.data.polygons) > 0]
    if not meshes:
        raise DemoError("render", f"the import {root.name!r} has no mesh with faces to frame")
    return max(meshes, key=lambda o: len(o.data.polygons))


def _bbox(obj) -> tuple[Vector, Vector]:
    pts = [obj.matrix_world @ Vector(c) for c in obj.bound_box]
    lo = Vector((min(p.x for p in pts), min(p.y for p in pts), min(p.z for p in pts)))
    hi = Vector((max(p.x for p in pts), max(p.y for p in pts), max(p.z for p in pts)))
    return lo, hi


def pick_camera(root, mesh):
    """The imported camera that sees most of the room: far from the mesh centre and looking at it."""
    cams = root.children["Cameras"].objects if "Cameras" in root.children else []
    cams = [c for c in cams if c.type == "CAMERA"]
    if not cams:
        raise DemoError("render", "the import has no cameras")
    lo, hi = _bbox(mesh)
    centre = (lo + hi) / 2

    def score(cam):
        to_centre = centre - cam.matrix_world.translation
        forward = (cam.matrix_world.to_3x3() @ Vector((0.0, 0.0, -1.0))).normalized()
        return forward.dot(to_centre.normalized()) * to_centre.length

    return max(cams, key=score)


def _world_light(scene, strength: float, backdrop=(0.05, 0.05, 0.05)) -> None:
    """A uniform white sky that lights the room, seen by the camera as a dark backdrop (holes stay readable)."""
    world = bpy.data.worlds.new("AlignGS Demo World")
    world.use_nodes = True
    nt = world.node_tree
    nt.nodes.clear()
    light = nt.nodes.new("ShaderNodeBackground")
    light.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    light.inputs["Strength"].default_value = strength
    back = nt.nodes.new("ShaderNodeBackground")
    back.inputs["Color"].default_value = (*backdrop, 1.0)
    path = nt.nodes.new("ShaderNodeLightPath")
    mix = nt.nodes.new("ShaderNodeMixShader")
    out = nt.nodes.new("ShaderNodeOutputWorld")
    nt.links.new(path.outputs["Is Camera Ray"], mix.inputs["Fac"])
    nt.links.new(light.outputs["Background"], mix.inputs[1])
    nt.links.new(back.outputs["Background"], mix.inputs[2])
    nt.links.new(mix.outputs["Shader"], out.inputs["Surface"])
    scene.world = world


def setup_render(scene, mesh, camera, samples: int, long_side: int) -> dict:
    """Cycles on the CPU from ``camera``: sky light plus a soft headlight, the images' aspect at ``long_side`` px."""
    scene.camera = camera
    lo, hi = _bbox(mesh)
    size = max((hi - lo).length, 1e-3)
    light_data = bpy.data.lights.new("AlignGS Demo Light", "POINT")
    light_data.energy = 4.0 * size * size  # ~ the same brightness whatever the reconstruction's scale
    light_data.shadow_soft_size = 0.05 * size
    light = bpy.data.objects.new("AlignGS Demo Light", light_data)
    light.location = camera.matrix_world.translation + camera.matrix_world.to_3x3() @ Vector((0.0, 0.05 * size, 0.0))
    scene.collection.objects.link(light)
    _world_light(scene, strength=1.0)
    r = scene.render
    w, h = max(r.resolution_x, 1), max(r.resolution_y, 1)  # the importer set the cameras' image size
    scale = long_side / max(w, h)
    r.resolution_x, r.resolution_y = max(1, round(w * scale)), max(1, round(h * scale))
    r.resolution_percentage = 100
    r.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = True
    scene.cycles.use_denoising = True
    scene.view_settings.view_transform = "Standard"  # keep the reconstruction's colours (AgX would dull them)
    r.image_settings.file_format = "PNG"
    r.image_settings.color_mode = "RGB"
    r.film_transparent = False
    return {"camera": camera.name, "light": light.name, "resolution": [r.resolution_x, r.resolution_y],
            "samples": samples}


def render_png(scene, root, mesh, path: str) -> float:
    """Render ``scene`` to ``path`` showing only ``mesh`` (the per-class copies and points hidden, this run only)."""
    hidden = [o for o in root.all_objects if o is not mesh and o.type != "CAMERA" and not o.hide_render]
    for o in hidden:
        o.hide_render = True
    try:
        return render_still(scene, path)
    finally:
        for o in hidden:
            o.hide_render = False


def render_still(scene, path: str) -> float:
    """Render what the scene shows to ``path`` (PNG); seconds taken."""
    t0 = time.monotonic()
    scene.render.filepath = path
    try:
        bpy.ops.render.render(write_still=True)
    except RuntimeError:
        scene.cycles.use_denoising = False  # a wheel built without OpenImageDenoise
        bpy.ops.render.render(write_still=True)
    if not Path(path).is_file():
        raise DemoError("render", f"Cycles finished but wrote no {path}")
    return time.monotonic() - t0


# --------------------------------------------------------------------------------------------------- main

def run(args: argparse.Namespace) -> dict:
    t = {}
    t0 = time.monotonic()
    bpy.ops.wm.read_homefile(use_empty=True)  # no default cube / light / camera in the demo's scene
    say("installing the extension")
    install_addon(args.zip)
    t["install"] = time.monotonic() - t0
    runtime = importlib.import_module(f"{MODULE}.blender.runtime")
    session_mod = importlib.import_module(f"{MODULE}.blender.actions")
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.address = args.address
    prefs.timeout_s = 30.0
    pump = TimerPump()
    try:
        out = {"connection": connect(pump, runtime, session_mod, prefs)}
        say(f"connected to backend.serve {out['connection']['server']} ({out['connection']['device']})")
        t0 = time.monotonic()
        out["reconstruct"] = reconstruct(pump, runtime, session_mod, prefs, args)
        t["reconstruct_and_import"] = time.monotonic() - t0
        scene = bpy.context.scene
        root = scene.aligngs.root or bpy.data.collections[out["reconstruct"]["root"]]
        mesh = _root_mesh(root)
        camera = pick_camera(root, mesh)
        out["render"] = setup_render(scene, mesh, camera, args.samples, args.size)
        t0 = time.monotonic()
        Path(args.blend).parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(args.blend).resolve()))
        t["save"] = time.monotonic() - t0
        say(f"saved {args.blend}")
        if args.png:
            say(f"rendering {args.png} from camera {camera.name} (Cycles CPU, {args.samples} spp)")
            t["render"] = render_png(scene, root, mesh, str(Path(args.png).resolve()))
            base = Path(args.png).resolve()
            say("rendering the class colours and the view with one class collection hidden")
            t0 = time.monotonic()
            try:
                out["semantic"] = render_semantic_views(
                    scene, root, mesh, lambda p: render_still(scene, p),
                    str(base.with_name(base.stem + "_classes.png")), str(base.with_name(base.stem + "_hidden.png")))
            except RuntimeError as e:
                raise DemoError("render", f"semantic views: {e}") from e
            t["render_semantic"] = time.monotonic() - t0
    finally:
        pump.restore()
        runtime.close_session()
    out["blender_timings"] = t
    return out


def main(argv: list[str] | None = None) -> int:
    # a crash inside Blender (SIGSEGV and the like) leaves no report; this puts the Python stack of every thread in
    # the log the parent quotes
    faulthandler.enable(all_threads=True)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    report = Path(args.report)
    try:
        out = run(args)
    except DemoError as e:
        report.write_text(json.dumps({"ok": False, "stage": e.stage, "error": str(e)}))
        return 1
    except Exception as e:  # noqa: BLE001 - anything else: hand the traceback to the parent
        report.write_text(json.dumps({"ok": False, "stage": "blender", "error": f"{type(e).__name__}: {e}",
                                      "traceback": traceback.format_exc()}))
        return 1
    report.write_text(json.dumps({"ok": True, **out}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
