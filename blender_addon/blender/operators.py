"""Operators: thin wrappers around ``actions`` functions (operators cannot be instantiated in tests)."""

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..core.errors import UserError
from . import actions as sess
from . import classes
from .props import preferences
from .runtime import get_session
from .settings import reset_settings


def _prefs(context):
    return preferences(context)


def _scene(context):
    return context.scene


class AGS_OT_test_connection(bpy.types.Operator):
    bl_idname = "aligngs.test_connection"
    bl_label = "Test Connection"
    bl_description = "Contact the AlignGS server and show its version, device and queue"

    def execute(self, context):
        try:
            sess.test_connection(get_session(), _prefs(context))
        except UserError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        return {"FINISHED"}


class AGS_OT_reconstruct(bpy.types.Operator):
    bl_idname = "aligngs.reconstruct"
    bl_label = "Reconstruct Scene"
    bl_description = "Send the image folder to the AlignGS server and import the reconstruction when it is done"
    bl_options = {"REGISTER", "UNDO"}

    wait: BoolProperty(name="Wait", default=False, options={"SKIP_SAVE"},
                       description="Block until the result is imported (for scripts and background mode)")
    timeout: FloatProperty(name="Timeout", default=0.0, min=0.0, options={"SKIP_SAVE"},
                           description="With Wait: give up after this many seconds (0 = never)")

    @classmethod
    def poll(cls, context):
        prefs = _prefs(context)
        reason = sess.reconstruct_block_reason(get_session(), prefs, context.scene.aligngs)
        if reason:
            cls.poll_message_set(reason)
            return False
        return True

    def execute(self, context):
        scene = _scene(context)
        try:
            if self.wait:
                res = sess.reconstruct_blocking(scene, _prefs(context), timeout_s=self.timeout or None)
                self.report({"INFO"}, f"AlignGS: imported {res.n_points:,} points, {res.n_faces:,} faces, "
                                      f"{len(res.classes)} classes")
            else:
                sess.start_reconstruction(get_session(), scene, _prefs(context))
        except UserError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        return {"FINISHED"}


class AGS_OT_cancel(bpy.types.Operator):
    bl_idname = "aligngs.cancel"
    bl_label = "Cancel"
    bl_description = "Cancel the running reconstruction on the server"

    def execute(self, context):
        try:
            sess.cancel_job(get_session())
        except UserError as e:
            self.report({"WARNING"}, str(e))
            return {"CANCELLED"}
        return {"FINISHED"}


class AGS_OT_class_visibility(bpy.types.Operator):
    bl_idname = "aligngs.class_visibility"
    bl_label = "Class Visibility"
    bl_description = "Show all classes, hide all, or show only the selected class"
    bl_options = {"REGISTER", "UNDO"}

    action: EnumProperty(items=[("SHOW_ALL", "Show All", "Show every class"),
                                ("HIDE_ALL", "Hide All", "Hide every class"),
                                ("ISOLATE", "Isolate", "Show only the selected class (again: show all)")])
    index: IntProperty(default=-1, options={"SKIP_SAVE"})

    def execute(self, context):
        scene = context.scene
        if self.action == "SHOW_ALL":
            classes.set_all_visible(scene, True)
        elif self.action == "HIDE_ALL":
            classes.set_all_visible(scene, False)
        else:
            classes.isolate(scene, self.index if self.index >= 0 else scene.aligngs.active_class)
        return {"FINISHED"}


class AGS_OT_reimport(bpy.types.Operator):
    bl_idname = "aligngs.reimport"
    bl_label = "Re-import"
    bl_description = "Import this scene's result again (from the server job, else from the result folder)"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        try:
            how = sess.reimport(get_session(), context.scene, _prefs(context))
        except UserError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        if how == "folder":
            self.report({"INFO"}, "AlignGS: result re-imported")
        return {"FINISHED"}


class AGS_OT_import_result(bpy.types.Operator):
    bl_idname = "aligngs.import_result"
    bl_label = "Import Result Folder"
    bl_description = "Import an AlignGS result folder (manifest.json + .npy arrays) without a server"
    bl_options = {"REGISTER", "UNDO"}

    directory: StringProperty(subtype="DIR_PATH")

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        try:
            res = sess.import_folder(get_session(), context.scene, bpy.path.abspath(self.directory))
        except UserError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"AlignGS: imported {res.n_points:,} points, {res.n_faces:,} faces, "
                              f"{len(res.classes)} classes")
        return {"FINISHED"}


class AGS_OT_refresh_jobs(bpy.types.Operator):
    bl_idname = "aligngs.refresh_jobs"
    bl_label = "Refresh Jobs"
    bl_description = "List the server's jobs"

    def execute(self, context):
        try:
            sess.refresh_jobs(get_session(), _prefs(context))
        except UserError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        return {"FINISHED"}


class AGS_OT_attach_job(bpy.types.Operator):
    bl_idname = "aligngs.attach_job"
    bl_label = "Attach"
    bl_description = "Follow this job in the current scene: its progress, then import its result"

    job: StringProperty(options={"SKIP_SAVE"})
    fetch: BoolProperty(default=False, options={"SKIP_SAVE"})

    def execute(self, context):
        job = self.job or context.scene.aligngs.job_id
        if not job:
            self.report({"ERROR"}, "no job id given")
            return {"CANCELLED"}
        try:
            sess.attach_job(get_session(), context.scene, _prefs(context), job, fetch=self.fetch)
        except UserError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        return {"FINISHED"}


class AGS_OT_resubmit_job(bpy.types.Operator):
    bl_idname = "aligngs.resubmit_job"
    bl_label = "Resubmit"
    bl_description = "Run this failed, cancelled or interrupted job again (same inputs and settings) for this scene"

    job: StringProperty(options={"SKIP_SAVE"})

    def execute(self, context):
        try:
            sess.resubmit_job(get_session(), context.scene, _prefs(context), self.job)
        except UserError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        return {"FINISHED"}


class AGS_OT_forget_job(bpy.types.Operator):
    bl_idname = "aligngs.forget_job"
    bl_label = "Forget Job"
    bl_description = "Remove this job from the local list (it stays on the server)"

    job: StringProperty(options={"SKIP_SAVE"})

    def execute(self, context):
        s = get_session()
        if s.jobstore is not None:
            s.jobstore.remove(self.job)
        return {"FINISHED"}


class AGS_OT_show_report(bpy.types.Operator):
    """Shows a message from the background (timer) in Blender's status bar and Info log."""

    bl_idname = "aligngs.show_report"
    bl_label = "AlignGS Message"
    bl_options = {"INTERNAL"}

    level: StringProperty(default="INFO")
    message: StringProperty()

    def execute(self, context):
        level = self.level if self.level in {"INFO", "WARNING", "ERROR"} else "INFO"
        self.report({level}, self.message)
        return {"FINISHED"}


class AGS_OT_reset_settings(bpy.types.Operator):
    bl_idname = "aligngs.reset_settings"
    bl_label = "Reset to Preset"
    bl_description = "Set every Advanced setting back to the chosen preset's value"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        reset_settings(context.scene.aligngs)
        return {"FINISHED"}


CLASSES = (AGS_OT_reset_settings, AGS_OT_test_connection, AGS_OT_reconstruct, AGS_OT_cancel, AGS_OT_class_visibility, AGS_OT_reimport,
           AGS_OT_import_result, AGS_OT_refresh_jobs, AGS_OT_attach_job, AGS_OT_resubmit_job, AGS_OT_forget_job,
           AGS_OT_show_report)


_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def register():
    _register_classes()


def unregister():
    _unregister_classes()
