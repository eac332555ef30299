"""The Advanced settings come from the server, reach the job, and the 3DGS PLY is asked for only when wanted.

Args: --address host:port, --images DIR (a folder whose job also writes a 3DGS PLY), --splat-dir DIR, --timeout S.
Reports facts for pytest.
"""
from __future__ import annotations

import time

from _common import MODULE, TimerCapture, bpy, install, parse, sub, write

args = parse({"--address": {"required": True}, "--images": {"required": True}, "--splat-dir": {"required": True},
              "--timeout": {"type": float, "default": 120.0}})
install(args.zip)
timers = TimerCapture()
runtime = sub("blender.runtime")
settings = sub("blender.settings")
client = sub("core.client")
prefs = bpy.context.preferences.addons[MODULE].preferences
prefs.address = args.address
prefs.timeout_s = 10.0
st = bpy.context.scene.aligngs
s = runtime.get_session()
facts: dict = {}


def leaves(d, prefix=""):  # the driver's own flattening of the server's configuration
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def merged(defaults, over):
    out = dict(defaults)
    for k, v in (over or {}).items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def panel_values(preset):
    info = s.info
    want = leaves(merged(info.defaults, info.presets.get(preset, {})))
    got = {it.name: settings.get_setting(st, it.name) for it in st.settings}
    return want, got


# -- 1. before the server has answered, there is nothing to show; after welcome, every field is there
facts["before"] = len(st.settings)
bpy.ops.aligngs.test_connection()
timers.pump(until=lambda: s.info is not None or s.status == "error", timeout=30)
want, got = panel_values(s.info.default_preset)
facts["welcome"] = {
    "default_preset": s.info.default_preset, "n_fields": len(want), "n_settings": len(got),
    "missing": sorted(set(want) - set(got)), "extra": sorted(set(got) - set(want)),
    "different": sorted(p for p in want if p in got and got[p] != want[p]),
    "groups": [g for g, _ in settings.groups(st)],
    "changed": [it.name for it in st.settings if settings.is_changed(it)],
}
# -- the teacher settings are drop-downs of the server's teachers
teacher = st.settings["train.semantics.teacher"]
facts["teacher"] = {"choices": settings.setting_choices(teacher), "teachers": s.info.teachers.get("semantic"),
                    "draw": settings.draw_prop(teacher), "draw_iterations": settings.draw_prop(st.settings["train.iterations"])}
before = teacher.str_value
teacher.choice = "none"
facts["teacher"]["set"] = teacher.str_value
teacher.str_value = before

# -- 2. another preset: the settings follow it (none counts as changed)
st.preset = "fast"
want, got = panel_values("fast")
facts["fast"] = {"different": sorted(p for p in want if got.get(p) != want[p]),
                 "changed": [it.name for it in st.settings if settings.is_changed(it)],
                 "iterations": st.iterations, "want_iterations": want["train.iterations"]}

# -- 3. set the Pearson depth weight through the panel's property and reconstruct
item = st.settings["train.loss.depth_pearson"]
facts["pearson_default"] = item.float_value
item.float_value = 0.123
st.use_advanced = True
st.image_dir = args.images
facts["overrides"] = settings.overrides_from_settings(st)


def reconstruct():
    timers.callbacks.clear()
    t0 = time.time()
    op = bpy.ops.aligngs.reconstruct()
    timers.pump(until=lambda: s.job.phase in ("done", "failed", "cancelled"), timeout=args.timeout)
    with client.Client(args.address, timeout_s=10.0) as c:
        record = c.status(st.job_id)
    return {"op": list(op), "phase": s.job.phase, "error": s.job.error, "seconds": time.time() - t0,
            "parts_received": s.job.parts_done, "record_parts": record.get("parts"),
            "pearson": record["settings"]["train"]["loss"]["depth_pearson"],
            "iterations": record["settings"]["train"]["iterations"], "n_points": s.last_import.n_points}


import os  # noqa: E402

facts["without_splat"] = reconstruct()
facts["without_splat"]["saved"] = sorted(os.listdir(args.splat_dir))
prefs.splat_dir = args.splat_dir
facts["with_splat"] = reconstruct()
facts["with_splat"]["saved"] = sorted(os.listdir(args.splat_dir))
ply = os.path.join(args.splat_dir, "gaussians.ply")
facts["with_splat"]["ply_hex"] = open(ply, "rb").read().hex() if os.path.isfile(ply) else None
runtime.close_session()
timers.restore()
write(args.out, facts)
