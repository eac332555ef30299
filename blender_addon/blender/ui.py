"""View3D > Sidebar > AlignGS panels. Drawing only reads state; it never touches the network."""
from __future__ import annotations

import time

import bpy

from ..core.address import normalize_address, online_block_reason
from ..core.errors import AddressError
from ..core.jobview import ACTIVE_PHASES
from .actions import reconstruct_block_reason
from .props import preferences
from .runtime import get_session
from .settings import draw_prop, groups, is_changed

CATEGORY = "AlignGS"


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s left"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s left"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min left"


def _wrap(layout, text: str, width: int = 42, icon: str = "NONE") -> None:
    """Multi-line label (panels do not wrap text)."""
    words, line, first = text.split(), "", True
    col = layout.column(align=True)
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            col.label(text=line, icon=icon if first else "BLANK1")
            line, first = w, False
        else:
            line = f"{line} {w}" if line else w
    if line:
        col.label(text=line, icon=icon if first else "BLANK1")


class _Base:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY


class AGS_PT_main(_Base, bpy.types.Panel):
    bl_idname = "AGS_PT_main"
    bl_label = "AlignGS"

    def draw(self, context):
        prefs = preferences(context)
        s = get_session()
        layout = self.layout
        if prefs is None:
            layout.label(text="Enable the AlignGS add-on", icon="ERROR")
            return
        box = layout.box()
        box.label(text="Server", icon="WORLD")
        row = box.row(align=True)
        block = None
        try:
            block = online_block_reason(normalize_address(prefs.address), bool(bpy.app.online_access))
        except AddressError as e:
            block = str(e)
        row.prop(prefs, "address", text="")
        sub = row.row(align=True)
        sub.enabled = block is None
        sub.operator("aligngs.test_connection", text="", icon="FILE_REFRESH")
        if block:
            col = box.column()
            col.active = False
            _wrap(col, block, icon="INFO")
        icon = {"connected": "CHECKMARK", "connecting": "SORTTIME", "error": "ERROR"}.get(s.status, "UNLINKED")
        _wrap(box, s.status_text, icon=icon)
        if s.info is not None and s.status == "connected":
            col = box.column(align=True)
            col.label(text=f"Server {s.info.server} · {s.info.device}")
            q = s.info.queue
            col.label(text=f"Queue: {q.get('queued', 0)} waiting, {q.get('running', 0)} running"
                           + (" · encrypted" if s.info.curve else ""))


class AGS_PT_input(_Base, bpy.types.Panel):
    bl_idname = "AGS_PT_input"
    bl_label = "Reconstruct"
    bl_parent_id = "AGS_PT_main"

    def draw(self, context):
        layout = self.layout
        st = context.scene.aligngs
        s = get_session()
        layout.prop(st, "image_dir")
        count = s.image_counts.count(bpy.path.abspath(st.image_dir)) if st.image_dir else "no image folder chosen"
        if isinstance(count, int):
            layout.label(text=f"{count} image{'s' if count != 1 else ''}", icon="IMAGE_DATA")
        layout.row().prop(st, "preset_choice", expand=True)

        j = s.job
        if j.phase in ACTIVE_PHASES:
            _draw_running(layout, j)
            row = layout.row(align=True)
            row.prop(st, "show_preview", toggle=True, icon="HIDE_OFF" if st.show_preview else "HIDE_ON")
            sub = row.row(align=True)
            sub.active = st.show_preview
            sub.prop(st, "preview_color", expand=True)
        else:
            reason = reconstruct_block_reason(s, preferences(context), st)
            col = layout.column()
            col.scale_y = 1.4
            col.enabled = reason is None
            col.operator("aligngs.reconstruct", icon="SCENE_DATA")
            if reason:
                sub = layout.column()
                sub.active = False
                _wrap(sub, reason, icon="INFO")
            if j.phase == "failed" and j.error:
                box = layout.box()
                box.alert = True
                _wrap(box, j.error, icon="ERROR")
            elif j.phase == "done":
                layout.label(text="Last job imported", icon="CHECKMARK")
            elif j.phase == "cancelled":
                layout.label(text="Cancelled", icon="CANCEL")


def _draw_running(layout, j):
    col = layout.column(align=True)
    if j.phase == "receiving" and j.total:
        factor = j.received / max(1, j.total)
        text = f"{j.stage_text} {j.received / 2**20:.0f}/{j.total / 2**20:.0f} MiB"
    else:
        factor, text = j.overall, j.stage_text or j.phase.capitalize()
    if j.phase == "queued" and j.position is not None:
        text = f"Queued (position {j.position + 1})"
    if hasattr(col, "progress"):
        col.progress(factor=float(factor), type="BAR", text=text)
    else:
        col.label(text=f"{text} ({100 * factor:.0f}%)")
    eta = format_eta(j.eta_s) if j.phase == "running" else ""
    if eta:
        col.label(text=eta, icon="TIME")
    elif j.phase in ("running", "queued"):
        col.label(text=f"{time.time() - j.started:.0f} s elapsed", icon="TIME")
    layout.operator("aligngs.cancel", icon="CANCEL")


class AGS_PT_advanced(_Base, bpy.types.Panel):
    bl_idname = "AGS_PT_advanced"
    bl_label = "Advanced"
    bl_parent_id = "AGS_PT_input"
    bl_options = {"DEFAULT_CLOSED"}

    def draw_header(self, context):
        self.layout.prop(context.scene.aligngs, "use_advanced", text="")

    def draw(self, context):
        st = context.scene.aligngs
        layout = self.layout
        layout.use_property_split = True
        layout.active = st.use_advanced
        if not len(st.settings):
            _wrap(layout, "Connect to the server (Test Connection) to list its settings.", icon="INFO")
            return
        layout.prop(st, "iterations")
        layout.prop(st, "resolution")
        layout.operator("aligngs.reset_settings", icon="LOOP_BACK")
        for group, items in groups(st):
            header, body = layout.panel(f"aligngs_settings_{group}", default_closed=True)
            n_changed = sum(1 for it in items if is_changed(it))
            header.label(text=group + (f"  ({n_changed} changed)" if n_changed else ""))
            if body is None:
                continue
            for it in items:
                body.prop(it, draw_prop(it), text=it.name.rpartition(".")[2])


class AGS_UL_classes(bpy.types.UIList):
    bl_idname = "AGS_UL_classes"

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        row = layout.row(align=True)
        sw = row.row()
        sw.ui_units_x = 1.2
        sw.prop(item, "color", text="")
        row.label(text=item.name)
        counts = []
        if item.n_points:
            counts.append(f"{item.n_points:,} pts")
        if item.n_faces:
            counts.append(f"{item.n_faces:,} faces")
        if item.instances > 1:
            counts.append(f"×{item.instances}")
        sub = row.row()
        sub.alignment = "RIGHT"
        sub.label(text=" · ".join(counts))
        row.prop(item, "visible", text="", emboss=False, icon="HIDE_OFF" if item.visible else "HIDE_ON")


class AGS_UL_instances(bpy.types.UIList):
    """The active class's named instances (objects from the identity encodings), each with its eye toggle."""

    bl_idname = "AGS_UL_instances"

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        row = layout.row(align=True)
        row.label(text=item.name)
        row.prop(item, "visible", text="", emboss=False, icon="HIDE_OFF" if item.visible else "HIDE_ON")


class AGS_PT_results(_Base, bpy.types.Panel):
    bl_idname = "AGS_PT_results"
    bl_label = "Results"
    bl_parent_id = "AGS_PT_main"

    def draw(self, context):
        layout = self.layout
        st = context.scene.aligngs
        if st.root is None and not len(st.classes):
            layout.label(text="No result in this scene yet")
        if len(st.classes):
            layout.label(text=f"{len(st.classes)} classes found")
            layout.template_list("AGS_UL_classes", "", st, "classes", st, "active_class", rows=6)
            row = layout.row(align=True)
            row.operator("aligngs.class_visibility", text="Show All", icon="HIDE_OFF").action = "SHOW_ALL"
            row.operator("aligngs.class_visibility", text="Hide All", icon="HIDE_ON").action = "HIDE_ALL"
            row.operator("aligngs.class_visibility", text="Isolate", icon="SOLO_ON").action = "ISOLATE"
            if 0 <= st.active_class < len(st.classes) and len(st.classes[st.active_class].instance_items):
                active = st.classes[st.active_class]
                layout.label(text=f"{active.name}: {len(active.instance_items)} objects")
                layout.template_list("AGS_UL_instances", "", active, "instance_items", active, "active_instance",
                                     rows=3)
        row = layout.row(align=True)
        sub = row.row(align=True)
        sub.enabled = bool(st.job_id or st.result_dir)
        sub.operator("aligngs.reimport", icon="IMPORT")
        row.operator("aligngs.import_result", text="", icon="FILEBROWSER")


class AGS_PT_jobs(_Base, bpy.types.Panel):
    bl_idname = "AGS_PT_jobs"
    bl_label = "Jobs"
    bl_parent_id = "AGS_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        s = get_session()
        st = context.scene.aligngs
        if st.job_id:
            box = layout.box()
            box.label(text=f"This scene: {st.job_name or 'job'} ({st.job_state or '?'})", icon="SCENE_DATA")
            row = box.row(align=True)
            op = row.operator("aligngs.attach_job", text="Re-attach", icon="LINKED")
            op.job = st.job_id
        layout.operator("aligngs.refresh_jobs", icon="FILE_REFRESH")
        local = {e.job: e for e in (s.jobstore.load() if s.jobstore is not None else [])}
        shown = set()
        for rec in s.server_jobs[::-1][:20]:
            job = rec.get("job", "")
            shown.add(job)
            name = rec.get("name") or (local[job].name if job in local else "") or "job"
            _job_row(layout, job, name, rec.get("state", "?"), job in local)
        for job, e in list(local.items())[:20]:
            if job not in shown:
                _job_row(layout, job, e.name or "job", e.state or "?", True)


def _job_row(layout, job, name, state, local):
    row = layout.row(align=True)
    icon = "CHECKMARK" if state == "done" else "ERROR" if state in ("failed", "interrupted") else "SORTTIME"
    row.label(text=f"{name} · {state}", icon=icon)
    op = row.operator("aligngs.attach_job", text="", icon="LINKED")
    op.job = job
    if state in ("failed", "cancelled", "interrupted"):
        row.operator("aligngs.resubmit_job", text="", icon="LOOP_BACK").job = job
    if local:
        row.operator("aligngs.forget_job", text="", icon="X").job = job


CLASSES = (AGS_UL_classes, AGS_UL_instances, AGS_PT_main, AGS_PT_input, AGS_PT_advanced, AGS_PT_results, AGS_PT_jobs)


_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def register():
    _register_classes()


def unregister():
    _unregister_classes()
