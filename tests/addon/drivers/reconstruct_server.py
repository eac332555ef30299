"""Drive Reconstruct Scene against a running backend.serve: the operator, the captured timer, the panels.

Args: --address host:port, --images DIR (a folder to reconstruct), optional --slow DIR (a long job to cancel),
--bad DIR (a job that fails), --timeout S. Reports facts for pytest.
"""
from __future__ import annotations

import json
import os
import tempfile
import time


from _common import MODULE, TimerCapture, bpy, install, parse, sub, write

args = parse({"--address": {"required": True}, "--images": {"required": True}, "--slow": {"default": None},
              "--bad": {"default": None}, "--timeout": {"type": float, "default": 120.0},
              "--skip-extras": {"action": "store_true"}, "--iterations": {"type": int, "default": 55},
              "--resolution": {"type": int, "default": 64}})
install(args.zip)
timers = TimerCapture()
runtime = sub("blender.runtime")
session = sub("blender.actions")
ui = sub("blender.ui")
prefs = bpy.context.preferences.addons[MODULE].preferences
prefs.address = args.address
prefs.timeout_s = 10.0
scene = bpy.context.scene
st = scene.aligngs
facts: dict = {"draw_errors": []}


class FakeLayout:
    """Records panel drawing (headless has no regions to draw in)."""

    def __init__(self, log):
        self._log = log

    def __getattr__(self, name):
        def call(*a, **kw):
            if name == "panel":  # a layout panel: (header, body)
                return FakeLayout(self._log), FakeLayout(self._log)
            if name in ("label", "operator", "prop", "progress", "template_list"):
                self._log.append((name, kw.get("text", a[1] if name == "prop" and len(a) > 1 else "")))
            return FakeLayout(self._log)

        return call

    def __setattr__(self, key, value):
        object.__setattr__(self, key, value)


def draw_panels(tag):
    log = []
    for cls in (ui.AGS_PT_main, ui.AGS_PT_input, ui.AGS_PT_advanced, ui.AGS_PT_results, ui.AGS_PT_jobs):
        try:
            cls.draw(type("P", (), {"layout": FakeLayout(log)})(), bpy.context)
        except Exception as e:  # noqa: BLE001 - report any draw failure to pytest
            facts["draw_errors"].append(f"{tag} {cls.__name__}: {type(e).__name__}: {e}")
    return [t for kind, t in log if kind in ("label", "progress") and t]


s = runtime.get_session()
n_images = len([f for f in os.listdir(args.images) if f.endswith(".png")])

# -- 1. Test Connection
bpy.ops.aligngs.test_connection()
timers.pump(until=lambda: s.info is not None or s.status == "error", timeout=30)
facts["connection"] = {"status": s.status, "server": s.info and s.info.server, "device": s.info and s.info.device,
                       "panel": draw_panels("connected")}

# -- 2. Reconstruct Scene through the operator, timers pumped by hand
st.image_dir = args.images
st.preset = "fast"
st.use_advanced = True
st.iterations = args.iterations
st.resolution = args.resolution
phases, stage_texts = [], []


def watch():
    if not phases or phases[-1] != s.job.phase:
        phases.append(s.job.phase)
    if s.job.stage_text and (not stage_texts or stage_texts[-1] != s.job.stage_text):
        stage_texts.append(s.job.stage_text)
    return s.job.phase in ("done", "failed", "cancelled")


facts["poll_before"] = bpy.ops.aligngs.reconstruct.poll()
t0 = time.time()
op = bpy.ops.aligngs.reconstruct()
running_panel = None
while not watch() and time.time() - t0 < args.timeout:
    timers.pump(until=watch, timeout=0.05)
    if s.job.phase in ("running", "receiving") and running_panel is None:
        running_panel = draw_panels("running")
res = s.last_import
facts["reconstruct"] = {
    "op": list(op), "phases": phases, "stage_texts": stage_texts[:30], "error": s.job.error,
    "seconds": time.time() - t0, "max_tick_s": timers.max_tick_s, "ticks": timers.ticks,
    "job_id": st.job_id, "job_state": st.job_state, "job_name": st.job_name,
    "running_panel": running_panel, "done_panel": draw_panels("done"),
    "reports": s.reports[-5:],
    "summary_timings": s.last_summary.get("timings"), "summary_keys": sorted(s.last_summary),
}
if res is not None:
    cams = res.collection.children["Cameras"].objects if "Cameras" in res.collection.children else []
    facts["reconstruct"].update({
        "root": res.collection.name, "n_points": res.n_points, "n_faces": res.n_faces,
        "n_cameras": len(cams), "n_images": n_images, "classes": [c.name for c in st.classes],
        "in_scene": res.collection.name in scene.collection.children,
        "datablocks": [len(bpy.data.objects), len(bpy.data.meshes), len(getattr(bpy.data, "pointclouds", []))],
    })
store = json.loads(open(runtime.jobstore_path()).read())
facts["jobstore"] = [j["job"] for j in store["jobs"]]

# -- 3. save, reopen (as after a restart), re-attach from the saved job id
blend = os.path.join(tempfile.mkdtemp(), "scene.blend")
bpy.ops.wm.save_as_mainfile(filepath=blend)
job_id = st.job_id
runtime.close_session()  # a fresh session, as in a new Blender
bpy.ops.wm.open_mainfile(filepath=blend)
scene = bpy.context.scene
st = scene.aligngs
s = runtime.get_session()
timers.callbacks.clear()
facts["reopened"] = {"job_id": st.job_id, "roots": [c.name for c in scene.collection.children],
                     "n_classes": len(st.classes), "phase": s.job.phase}
op = bpy.ops.aligngs.attach_job()
# hold the timer back until the whole result is queued (as when Blender is busy for a while): the drain must
# still show every phase, one tick each, rather than jump from attaching to done
client = sub("core.client")
t_wait = time.time()
while time.time() - t_wait < args.timeout and not any(isinstance(m, client.Done) for m in list(s.conn.events.queue)):
    time.sleep(0.02)
burst_queued = len(s.conn.events.queue)
attach_phases = [s.job.phase]


def watch_attach():
    if attach_phases[-1] != s.job.phase:
        attach_phases.append(s.job.phase)
    return s.job.phase in ("done", "failed")


timers.pump(until=watch_attach, timeout=args.timeout)
facts["reattach"] = {"op": list(op), "phase": s.job.phase, "error": s.job.error,
                     "burst_queued": burst_queued, "phases": attach_phases,
                     "roots": [c.name for c in scene.collection.children],
                     "objects": len(scene.aligngs.root.all_objects) if scene.aligngs.root else 0,
                     "n_classes": len(st.classes),
                     "datablocks": [len(bpy.data.objects), len(bpy.data.meshes),
                                    len(getattr(bpy.data, "pointclouds", []))]}
op = bpy.ops.aligngs.reimport()
timers.pump(until=lambda: s.job.phase in ("done", "failed") and s.importer is None, timeout=args.timeout)
facts["reimport"] = {"op": list(op), "phase": s.job.phase, "roots": [c.name for c in scene.collection.children],
                     "datablocks": [len(bpy.data.objects), len(bpy.data.meshes),
                                    len(getattr(bpy.data, "pointclouds", []))]}

if not args.skip_extras:
    # -- 4. a setting the server rejects: readable error in the panel
    st.image_dir = args.images
    st.use_advanced = True
    st.resolution = 8  # the server requires >= 16
    bpy.ops.aligngs.reconstruct()
    timers.pump(until=lambda: s.job.phase in ("failed", "done"), timeout=60)
    facts["rejected"] = {"phase": s.job.phase, "error": s.job.error, "panel": draw_panels("failed")}
    st.resolution = 64

    # -- 5. a job that fails on the server
    if args.bad:
        st.image_dir = args.bad
        bpy.ops.aligngs.reconstruct()
        timers.pump(until=lambda: s.job.phase in ("failed", "done"), timeout=60)
        facts["failed_job"] = {"phase": s.job.phase, "error": s.job.error, "state": st.job_state}
        failed_id = st.job_id
        op = bpy.ops.aligngs.resubmit_job(job=failed_id)
        timers.pump(until=lambda: s.job.phase in ("failed", "done"), timeout=60)
        facts["resubmit"] = {"op": list(op), "phase": s.job.phase, "error": s.job.error, "same_id": s.job.job == failed_id,
                             "scene_job": st.job_id == failed_id}

    # -- 6. cancel a running job
    if args.slow:
        st.image_dir = args.slow
        bpy.ops.aligngs.reconstruct()
        timers.pump(until=lambda: s.job.phase == "running", timeout=60)
        phase_before = s.job.phase
        op = bpy.ops.aligngs.cancel()
        timers.pump(until=lambda: s.job.phase in ("cancelled", "failed", "done"), timeout=60)
        facts["cancel"] = {"before": phase_before, "op": list(op), "phase": s.job.phase, "state": st.job_state}

    # -- 7. the blocking path for scripts
    st.image_dir = args.images
    t0 = time.time()
    op = bpy.ops.aligngs.reconstruct(wait=True, timeout=args.timeout)
    facts["blocking"] = {"op": list(op), "seconds": time.time() - t0, "job_state": st.job_state,
                         "roots": [c.name for c in scene.collection.children], "n_classes": len(st.classes)}

    # -- 8. jobs list
    bpy.ops.aligngs.refresh_jobs()
    timers.pump(until=lambda: s.list_seq is None, timeout=30)
    facts["jobs"] = {"server": [j.get("state") for j in s.server_jobs], "panel": draw_panels("jobs")}

timers.restore()
runtime.close_session()
write(args.out, facts)
