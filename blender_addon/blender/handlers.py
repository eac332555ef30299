"""What the session does with each message of the connection: a table from message class to handler, plus the
steps that end a job (fail, finish the import). Runs on Blender's main thread, from ``session.tick``."""
from __future__ import annotations

import logging
import time

import bpy

from .._vendor.wire import ACTIVE_STATES, ResultFormatError
from ..core import client
from ..core.fileparts import save_file_part
from ..core.jobstore import JobEntry
from ..core.jobview import apply_progress
from . import classes, preview
from .importer import ROOT_PREFIX, ImportOptions, SceneImport
from .settings import sync_settings

log = logging.getLogger(__name__)


def handle(session, msg) -> None:
    handler = HANDLERS.get(type(msg))
    if handler is not None:
        handler(session, msg)


def _connected(session, msg: client.Connected) -> None:
    session.status = "connected"
    session.status_text = f"Connected to {msg.address}"


def _server_info(session, msg: client.ServerInfo) -> None:
    session.info = msg
    for scene in bpy.data.scenes:  # the Advanced settings follow the server's configuration and presets
        sync_settings(scene.aligngs, msg)
    session.status = "connected"
    session.status_text = f"Connected to {msg.address}"
    if session.test_seq is not None:
        session.test_seq = None
        session.report("INFO", f"AlignGS server {msg.server} at {msg.address} ({msg.device}), "
                               f"{msg.queue_length} job(s) queued or running")


def _disconnected(session, msg: client.Disconnected) -> None:
    if msg.reason == "closed" or session.status == "error":
        return  # our own close, or the error that caused it says more
    session.status = "disconnected"
    session.status_text = f"{msg.address}: {msg.reason}"


def _error(session, msg: client.Error) -> None:
    j = session.job
    text = msg.text()
    if msg.code in ("unreachable", "auth") and msg.job is None:
        session.status, session.status_text = "error", text
        session.test_seq = None
        if msg.re is not None and msg.re == session.list_seq:
            session.list_seq = None
        if j.follows(msg.job, msg.re):
            fail(session, text)
        else:
            session.report("ERROR", text)
    elif msg.re is not None and msg.re == session.list_seq:
        session.list_seq = None
        session.report("ERROR", text)
    elif j.follows(msg.job, msg.re):
        if msg.code == "unreachable" and j.phase in ("queued", "running"):
            session.status, session.status_text = "error", text  # keep following; zmq reconnects
        else:
            fail(session, text)
    else:
        session.report("ERROR", text)


def _accepted(session, msg: client.Accepted) -> None:
    j = session.job
    if msg.re == j.request_seq and j.phase == "submitting":
        j.job, j.phase, j.position = msg.job, msg.state, msg.position
        j.stage_text = "Queued" if msg.state == "queued" else "Starting…"
        scene = bpy.data.scenes.get(j.scene)
        if scene is not None:
            s = scene.aligngs
            s.job_id, s.job_address, s.job_name, s.job_state = msg.job, session.conn.address, j.name, msg.state
        if session.jobstore is not None:
            session.jobstore.add(JobEntry(msg.job, session.conn.address, j.name, j.scene,
                                          bpy.data.filepath, time.time(), msg.state))


def _job_status(session, msg: client.JobStatus) -> None:
    j = session.job
    if j.follows(msg.job, msg.re) and msg.subscribed:
        state = msg.record.get("state", "")
        if state in ACTIVE_STATES:
            j.phase = state
            j.position = msg.record.get("position")
            apply_progress(j, msg.record.get("progress"))
        set_scene_state(session, state)


def _job_list(session, msg: client.JobList) -> None:
    if msg.re == session.list_seq:
        session.list_seq = None
        session.server_jobs = msg.jobs


def _progress(session, msg: client.Progress) -> None:
    j = session.job
    if j.follows(msg.job, None):
        if j.phase in ("queued", "attaching"):
            j.phase = "running"
        apply_progress(j, msg)
        scene = bpy.data.scenes.get(j.scene)
        if msg.points is not None and scene is not None and scene.aligngs.show_preview:
            preview.update(scene, msg.points, msg.job, scene.aligngs.preview_color)


def remove_preview(session) -> None:
    scene = bpy.data.scenes.get(session.job.scene)
    if scene is not None:
        preview.remove(scene)


def _result_started(session, msg: client.ResultStarted) -> None:
    j = session.job
    if not j.follows(msg.job, msg.re):
        return
    scene = bpy.data.scenes.get(j.scene)
    if scene is None:
        fail(session, f"the scene {j.scene!r} for job {msg.job} no longer exists; use Re-import")
        return
    drop_importer(session)
    try:
        # name the collection after the job as submitted (a server job's manifest names its input folder)
        name = f"{ROOT_PREFIX}{j.name}" if j.name else None
        session.importer = SceneImport(scene, msg.manifest, ImportOptions(collection_name=name))
    except ResultFormatError as e:
        fail(session, f"The server's result cannot be imported: {e}")
        return
    j.phase, j.parts_total, j.parts_done, j.total, j.received = "receiving", msg.n_parts, 0, msg.nbytes, 0
    j.stage_text = "Receiving the result…"


def _downloading(session, msg: client.Downloading) -> None:
    j = session.job
    if j.follows(msg.job, None):
        j.received, j.total = msg.received, msg.total


def _part_received(session, msg: client.PartReceived) -> None:
    j = session.job
    if session.importer is None or not j.follows(msg.job, None):
        return
    try:
        session.importer.add_part(msg)
    except ResultFormatError as e:
        fail(session, f"The server's result cannot be imported: {e}")
        return
    if msg.kind == "file" and session.splat_dir:
        try:
            path = save_file_part(msg, session.splat_dir)
            session.report("INFO", f"AlignGS: saved {path}")
        except (OSError, ValueError) as e:
            session.report("WARNING", f"could not save {msg.name} to {session.splat_dir}: {e}")
    j.parts_done += 1
    j.stage_text = f"Received {j.parts_done}/{j.parts_total} parts"


def _done(session, msg: client.Done) -> None:
    j = session.job
    if j.follows(msg.job, msg.re):
        if session.importer is None:
            fail(session, "the server finished without sending a result")
            return
        session.done = msg
        j.phase, j.stage_text, j.overall = "importing", "Building objects…", 1.0


def _cancelled(session, msg: client.Cancelled) -> None:
    j = session.job
    if j.follows(msg.job, msg.re):
        drop_importer(session)
        remove_preview(session)
        j.phase, j.stage_text = "cancelled", "Cancelled"
        set_scene_state(session, "cancelled")
        refresh_info(session)
        session.report("INFO", f"AlignGS job {msg.job} cancelled")


HANDLERS = {
    client.Connected: _connected, client.ServerInfo: _server_info, client.Disconnected: _disconnected,
    client.Error: _error, client.Accepted: _accepted, client.JobStatus: _job_status, client.JobList: _job_list,
    client.Progress: _progress, client.ResultStarted: _result_started, client.Downloading: _downloading,
    client.PartReceived: _part_received, client.Done: _done, client.Cancelled: _cancelled,
}


# ------------------------------------------------------------------------------------------------- job endings

def set_scene_state(session, state: str) -> None:
    scene = bpy.data.scenes.get(session.job.scene)
    if scene is not None and scene.aligngs.job_id == session.job.job:
        scene.aligngs.job_state = state
    if session.jobstore is not None and session.job.job:
        session.jobstore.update(session.job.job, state=state)


def refresh_info(session) -> None:
    """Ask for a fresh welcome (queue length, workers) after a job ends."""
    if session.conn is not None and session.conn.alive:
        session.hello_seq = session.conn.hello()


def fail(session, text: str) -> None:
    refresh_info(session)
    drop_importer(session)
    remove_preview(session)
    session.job.phase, session.job.error, session.job.stage_text = "failed", text, "Failed"
    set_scene_state(session, "failed")
    session.report("ERROR", text)


def drop_importer(session) -> None:
    if session.importer is not None:
        session.importer.abort()
    session.importer = None
    session.done = None


def previous_root(scene):
    """The scene's current import (replaced by the next one), if it is still there."""
    old = scene.aligngs.root
    if old is None:
        return None
    try:
        return old if old.name in bpy.data.collections else None
    except ReferenceError:
        return None


def finish_import(session) -> None:
    j = session.job
    scene = bpy.data.scenes.get(j.scene)
    imp, done = session.importer, session.done
    session.importer, session.done = None, None
    if scene is None:
        imp.abort()
        fail(session, f"the scene {j.scene!r} no longer exists; use Re-import")
        return
    session.last_summary = done.summary if done is not None else {}
    preview.remove(scene)  # the result replaces the live preview
    result = imp.finish(replace=previous_root(scene))
    classes.fill_class_list(scene, result)
    session.last_import = result
    j.phase, j.stage_text = "done", "Done"
    set_scene_state(session, "done")
    refresh_info(session)
    if not bpy.app.background:
        # one undo step, so Ctrl+Z takes the import back. A background Blender (scripts, the demo, CI) has nobody to
        # press it, and there the push would only serialise the whole scene into a memfile (hundreds of thousands
        # of faces) from a timer: Blender 5.0 crashes semi-randomly around undo pushes in background runs
        # (blender#149890); the demo's Blender died once with SIGSEGV in CI between "Building objects" and this
        # function's report (the exact call is unknown; the demo session now enables faulthandler).
        try:
            bpy.ops.ed.undo_push(message="AlignGS Import")
        except RuntimeError as e:
            session.report("WARNING", f"AlignGS: the import is not on the undo stack ({e})")
    msg = (f"AlignGS: imported {result.n_points:,} points, {result.n_faces:,} faces, {len(result.classes)} classes"
           f", {result.n_cameras} cameras")
    for w in result.warnings:
        session.report("WARNING", w)
    session.report("INFO", msg)
    if done is not None and done.summary.get("warnings"):
        for w in done.summary["warnings"][:5]:
            session.report("WARNING", f"server: {w}")
